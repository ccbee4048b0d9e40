--- :checkhealth swarm_lsp
local M = {}

local health = vim.health

local function run(cmd, timeout_ms)
  local ok, proc = pcall(vim.system, cmd, { text = true })
  if not ok then
    return nil, tostring(proc)
  end
  local result = proc:wait(timeout_ms)
  if result.code == 124 then
    return nil, ('timed out after %d ms'):format(timeout_ms)
  end
  return result, nil
end

--- The server command without `serve` and its arguments: what to call `--version` and `doctor` on.
local function base_command(cmd)
  local base = {}
  for _, part in ipairs(cmd) do
    if part == 'serve' then
      break
    end
    table.insert(base, part)
  end
  return base
end

local function check_neovim()
  health.start('swarm_lsp: Neovim')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()))
  else
    health.error('Neovim 0.11 or newer is needed (vim.lsp.config / vim.lsp.enable)')
  end
  if require('swarm_lsp.inline').native() then
    health.ok('inline completion: Neovim shows it itself (vim.lsp.inline_completion)')
  else
    health.info('inline completion: shown as virtual text by swarm_lsp (Neovim 0.12 has it built in)')
  end
end

local function check_doctor(base)
  health.start('swarm_lsp: swarm-lsp doctor')
  local cmd = vim.list_extend(vim.deepcopy(base), { 'doctor', '--json' })
  local result, err = run(cmd, 30000)
  if not result then
    health.warn('`' .. table.concat(cmd, ' ') .. '` did not finish: ' .. tostring(err))
    return
  end
  if result.code == 2 then
    health.info('`swarm-lsp doctor --json` is not available in this build')
    return
  end
  local ok, report = pcall(vim.json.decode, result.stdout or '')
  if not ok or type(report) ~= 'table' then
    local first = vim.split(vim.trim((result.stderr or '') .. (result.stdout or '')), '\n')[1] or ''
    health.warn(('`swarm-lsp doctor --json` exited %d: %s'):format(result.code, first))
    return
  end
  local checks = report.checks or report
  if vim.islist(checks) then
    for _, check in ipairs(checks) do
      if type(check) == 'table' then
        local name = tostring(check.name or check.check or '?')
        local detail = tostring(check.detail or check.message or '')
        local state = check.status or (check.ok == true and 'ok') or (check.ok == false and 'error') or 'info'
        local line = detail ~= '' and (name .. ': ' .. detail) or name
        local advice = (type(check.fix) == 'string' and check.fix ~= '') and { check.fix } or nil
        if state == 'ok' or state == 'pass' then
          health.ok(line)
        elseif state == 'warn' or state == 'warning' then
          health.warn(line, advice)
        elseif state == 'error' or state == 'fail' then
          health.error(line, advice)
        else
          health.info(line)
        end
      end
    end
  else
    for name, value in pairs(checks) do
      health.info(('%s: %s'):format(name, vim.inspect(value)))
    end
  end
end

local function check_server()
  health.start('swarm_lsp: server')
  local lsp_config = vim.lsp.config.swarm_lsp
  if not lsp_config or type(lsp_config.cmd) ~= 'table' then
    health.error('no `swarm_lsp` LSP config: is editors/neovim on the runtimepath?')
    return
  end
  local cmd = lsp_config.cmd
  health.info('command: `' .. table.concat(cmd, ' ') .. '`')
  local exe = cmd[1]
  if vim.fn.executable(exe) ~= 1 then
    health.error(('`%s` is not executable'):format(exe), {
      'Install the server: pip install swarm-lsp',
      "Or point to it: require('swarm_lsp').setup({ cmd = { '/path/to/swarm-lsp', 'serve' } })",
      "Or use an interpreter: require('swarm_lsp').setup({ python = '/path/to/.venv/bin/python' })",
    })
    return
  end
  health.ok(('`%s` found: %s'):format(exe, vim.fn.exepath(exe)))
  local base = base_command(cmd)
  local result, err = run(vim.list_extend(vim.deepcopy(base), { '--version' }), 15000)
  if result and result.code == 0 then
    health.ok('version: ' .. vim.trim(result.stdout ~= '' and result.stdout or result.stderr))
  else
    health.error('`--version` failed: ' .. (err or vim.trim(result and result.stderr or '')))
    return
  end
  check_doctor(base)
end

local function check_clients()
  health.start('swarm_lsp: clients')
  local enabled = vim.lsp.is_enabled and vim.lsp.is_enabled('swarm_lsp')
  if enabled ~= nil then
    if enabled then
      health.ok("enabled (vim.lsp.enable('swarm_lsp'))")
    else
      health.warn("not enabled: call require('swarm_lsp').setup{} or vim.lsp.enable('swarm_lsp')")
    end
  end
  local clients = vim.lsp.get_clients({ name = 'swarm_lsp' })
  if #clients == 0 then
    health.info('no swarm_lsp client is running (open a supported file to start one)')
    return
  end
  local status = require('swarm_lsp.status')
  for _, client in ipairs(clients) do
    local caps = client.server_capabilities or {}
    local features = {}
    for name, cap in pairs({
      completion = caps.completionProvider,
      inlineCompletion = caps.inlineCompletionProvider,
      codeAction = caps.codeActionProvider,
      executeCommand = caps.executeCommandProvider,
    }) do
      if cap then
        table.insert(features, name)
      end
    end
    table.sort(features)
    health.ok(('client %d: root %s; %s'):format(client.id, client.root_dir or '(single file)', table.concat(features, ', ')))
    local last = status.last[client.id]
    if last then
      local line = 'swarm: ' .. status.short(last)
      if last.state == 'ready' then
        health.ok(line)
      elseif last.state == 'down' then
        health.error(line)
      else
        health.warn(line)
      end
    else
      health.info('no swarm/status received yet')
    end
  end
end

function M.check()
  check_neovim()
  check_server()
  check_clients()
end

return M
