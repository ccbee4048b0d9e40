--- Swarm health from the `swarm/status` notification, for :SwarmStatus and statuslines.
local M = {}

---@type table<integer, table> last status per client id
M.last = {}

local ICONS = { starting = '…', ready = '✓', degraded = '!', down = '✗' }

local function count(value)
  return (type(value) == 'number' and value > 0) and math.floor(value) or 0
end

local function text(value)
  return (type(value) == 'string' and value ~= '') and value or nil
end

--- One machine in either shape the server may send: `{ id, host, roles, load, capacity, alive }`
--- or the dispatch client's `{ workerId, name, host, roles, capacity, running, load, ... }`. A
--- listed machine without `alive` is alive (the coordinator lists live workers).
local function machine(raw)
  if type(raw) ~= 'table' then
    return nil
  end
  local id = text(raw.id) or text(raw.name) or text(raw.workerId)
  if not id then
    return nil
  end
  local roles = {}
  for _, role in ipairs(type(raw.roles) == 'table' and raw.roles or {}) do
    if type(role) == 'string' then
      table.insert(roles, role)
    end
  end
  return {
    id = id,
    host = text(raw.host) or '?',
    roles = roles,
    load = type(raw.running) == 'number' and count(raw.running) or count(raw.load),
    capacity = count(raw.capacity),
    alive = type(raw.alive) == 'boolean' and raw.alive or (raw.alive == nil),
  }
end

--- Keep what looks like a status; anything malformed is "down".
---@param raw any
---@return table
function M.normalize(raw)
  if type(raw) ~= 'table' then
    return { state = 'down', machines = {}, recent = {}, queueDepth = 0, running = 0 }
  end
  local machines = {}
  for _, m in ipairs(type(raw.machines) == 'table' and raw.machines or {}) do
    table.insert(machines, machine(m))
  end
  local coordinator = text(raw.coordinator)
  local state = 'down'
  if ICONS[raw.state] then
    state = raw.state
  elseif coordinator then
    -- No explicit state: a coordinator that answered is up; without machines it cannot work.
    state = 'degraded'
    for _, m in ipairs(machines) do
      if m.alive then
        state = 'ready'
      end
    end
  end
  local running = 0
  if type(raw.running) == 'number' then
    running = count(raw.running)
  else
    for _, m in ipairs(machines) do
      running = running + m.load
    end
  end
  local recent = {}
  for _, task in ipairs(type(raw.recent) == 'table' and raw.recent or {}) do
    if type(task) == 'table' then
      table.insert(recent, {
        id = text(task.id) or text(task.taskId) or '?',
        type = text(task.type) or '?',
        state = text(task.state) or '?',
      })
    end
  end
  -- A mesh: its live peers as the server sees them, and the owner of each task in flight.
  local peers = {}
  for _, p in ipairs(type(raw.peers) == 'table' and raw.peers or {}) do
    if type(p) == 'table' and text(p.address) then
      local roles = {}
      for _, role in ipairs(type(p.roles) == 'table' and p.roles or {}) do
        if type(role) == 'string' then
          table.insert(roles, role)
        end
      end
      table.insert(peers, {
        address = p.address,
        id = text(p.id) or p.address,
        roles = roles,
        rttMs = type(p.rttMs) == 'number' and p.rttMs or 0,
        current = p.current == true,
        running = count(p.running),
        capacity = count(p.capacity),
        error = text(p.error),
      })
    end
  end
  local tasks = {}
  for _, t in ipairs(type(raw.tasks) == 'table' and raw.tasks or {}) do
    if type(t) == 'table' then
      table.insert(tasks, {
        id = text(t.id) or text(t.taskId) or '?',
        type = text(t.type) or '?',
        state = text(t.state) or '?',
        owner = text(t.owner) or '?',
        worker = text(t.worker) or '',
      })
    end
  end
  return {
    state = state,
    coordinator = coordinator,
    machines = machines,
    queueDepth = count(raw.queueDepth),
    running = running,
    recent = recent,
    peers = peers,
    tasks = tasks,
  }
end

--- Short text for a statusline: "Swarm ✓ 2/3 ⟳1 ≡4".
---@param status table normalized
---@return string
function M.short(status)
  local alive = 0
  for _, machine in ipairs(status.machines) do
    if machine.alive then
      alive = alive + 1
    end
  end
  local parts = { 'Swarm ' .. ICONS[status.state] }
  if status.state ~= 'starting' and status.state ~= 'down' then
    table.insert(parts, ('%d/%d'):format(alive, #status.machines))
  end
  if status.running > 0 then
    table.insert(parts, '⟳' .. status.running)
  end
  if status.queueDepth > 0 then
    table.insert(parts, '≡' .. status.queueDepth)
  end
  return table.concat(parts, ' ')
end

--- Lines for :SwarmStatus.
---@param status table normalized
---@return string[]
function M.lines(status)
  local lines = {
    ('Swarm: %s'):format(status.state),
    ('Coordinator: %s'):format(status.coordinator or 'none'),
    ('Tasks: %d running, %d queued'):format(status.running, status.queueDepth),
  }
  if #status.machines > 0 then
    table.insert(lines, 'Machines:')
    for _, m in ipairs(status.machines) do
      local roles = type(m.roles) == 'table' and table.concat(m.roles, ', ') or ''
      table.insert(
        lines,
        ('  %s %s on %s  [%s]  load %s/%s'):format(
          m.alive and '✓' or '✗',
          tostring(m.id),
          tostring(m.host or '?'),
          roles,
          tostring(m.load or 0),
          tostring(m.capacity or 0)
        )
      )
    end
  else
    table.insert(lines, 'Machines: none')
  end
  local peers = status.peers or {}
  if #peers > 0 then
    table.insert(lines, ('Mesh peers: %d'):format(#peers))
    for _, p in ipairs(peers) do
      local state = p.error and ('unreachable: ' .. p.error)
        or ('load %d/%d, %.1f ms'):format(p.running, p.capacity, p.rttMs)
      table.insert(
        lines,
        ('  %s %s %s  [%s]  %s'):format(
          p.current and '*' or ' ',
          p.id,
          p.address,
          table.concat(p.roles, ', '),
          state
        )
      )
    end
    if #(status.tasks or {}) > 0 then
      table.insert(lines, 'In flight:')
      for _, t in ipairs(status.tasks) do
        local on = t.worker ~= '' and (' on ' .. t.worker) or ''
        table.insert(lines, ('  %s %s: %s%s, owned by %s'):format(t.type, t.id, t.state, on, t.owner))
      end
    end
  end
  if #status.recent > 0 then
    table.insert(lines, 'Recent tasks:')
    for i, task in ipairs(status.recent) do
      if i > 8 then
        break
      end
      if type(task) == 'table' then
        table.insert(
          lines,
          ('  %s %s: %s'):format(tostring(task.type), tostring(task.id), tostring(task.state))
        )
      end
    end
  end
  return lines
end

--- Handler for the `swarm/status` notification.
function M.on_notification(params, ctx)
  M.last[ctx.client_id] = M.normalize(params)
  vim.api.nvim_exec_autocmds('User', {
    pattern = 'SwarmStatus',
    modeline = false,
    data = { client_id = ctx.client_id, status = M.last[ctx.client_id] },
  })
  vim.cmd.redrawstatus({ bang = true })
end

--- Statusline component: the last status of the buffer's client, or ''.
---@return string
function M.statusline()
  local client = require('swarm_lsp.client').get()
  if not client then
    return ''
  end
  local status = M.last[client.id]
  return status and M.short(status) or 'Swarm'
end

return M
