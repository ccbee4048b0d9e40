--- The swarm_lsp client for a buffer, and requests that stream their progress.
local progress = require('swarm_lsp.progress')

local M = {}

M.NAME = 'swarm_lsp'

--- The client attached to `bufnr`, else any running swarm_lsp client.
---@param bufnr? integer
---@return vim.lsp.Client?
function M.get(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local attached = vim.lsp.get_clients({ name = M.NAME, bufnr = bufnr })
  if attached[1] then
    return attached[1]
  end
  return vim.lsp.get_clients({ name = M.NAME })[1]
end

--- Like get(), but tells the user what to do when there is no client.
---@param bufnr? integer
---@return vim.lsp.Client?
function M.require(bufnr)
  local client = M.get(bufnr)
  if not client then
    vim.notify(
      'swarm_lsp: the server is not running here. Open a supported file, or see :checkhealth swarm_lsp',
      vim.log.levels.WARN
    )
  end
  return client
end

---@class swarm_lsp.StreamHandlers
---@field on_progress? fun(value: table) every progress value (begin / report / end)
---@field on_result fun(err: lsp.ResponseError?, result: any)
---@field forward? boolean also show the progress through Neovim's handler
---@field on_started? fun(answer: table) the server started background work (`taskId`, `token`)

---@type table<string, { token?: string, on_result: fun(err: lsp.ResponseError?, result: any), client_id: integer }>
M.pending = {}

--- Whether a command's answer says it started background work (`{status = 'started', taskId}`).
---@param result any
---@return boolean
function M.is_started(result)
  return type(result) == 'table' and result.status == 'started' and type(result.taskId) == 'string'
end

--- Background work the server started for one of our requests: its progress moves to the
--- server's token and its result arrives as a `swarm/result` notification.
local function follow(client, result, handlers)
  if result.token then
    progress.listen(result.token, handlers.on_progress or function() end, handlers.forward)
  end
  M.pending[result.taskId] = { token = result.token, on_result = handlers.on_result, client_id = client.id }
end

--- `swarm/result` handler (see lsp/swarm_lsp.lua): finish the request that started the work.
---@param params { taskId: string, ok: boolean, result?: any, error?: string }
function M.on_result(params)
  local entry = type(params) == 'table' and M.pending[params.taskId]
  if not entry then
    return
  end
  M.pending[params.taskId] = nil
  if entry.token then
    progress.forget(entry.token)
  end
  if params.ok then
    entry.on_result(nil, params.result)
  else
    entry.on_result({ code = -32001, message = tostring(params.error or 'failed') }, nil)
  end
end

--- Cancel background work started by a request (its progress token, or swarm.cancel).
---@param client vim.lsp.Client
---@param task_id string
function M.cancel_task(client, task_id)
  local entry = M.pending[task_id]
  if entry and entry.token then
    client:notify('window/workDoneProgress/cancel', { token = entry.token })
  else
    client:request('workspace/executeCommand', { command = 'swarm.cancel', arguments = { task_id } }, function() end)
  end
end

--- Send `method` with a fresh workDoneToken in `params`; returns (request_id, token) or nil.
--- A command that starts background work calls `on_result` when its `swarm/result` arrives.
---@param client vim.lsp.Client
---@param method string
---@param params table
---@param handlers swarm_lsp.StreamHandlers
---@param bufnr? integer
---@return integer?, string?
function M.stream(client, method, params, handlers, bufnr)
  local token = progress.new_token(method:gsub('[^%a]', ''):lower())
  params = vim.tbl_extend('force', params, { workDoneToken = token })
  progress.listen(token, handlers.on_progress or function() end, handlers.forward)
  local ok, request_id = client:request(method, params, function(err, result)
    -- Reports queued before the response may still be in flight on the same pipe: they were
    -- sent first, so they have been handled by now.
    progress.forget(token)
    if not err and M.is_started(result) then
      follow(client, result, handlers)
      if handlers.on_started then
        handlers.on_started(result)
      end
      return
    end
    handlers.on_result(err, result)
  end, bufnr)
  if not ok then
    progress.forget(token)
    handlers.on_result({ code = -32603, message = 'swarm_lsp: the request could not be sent' }, nil)
    return nil, nil
  end
  return request_id, token
end

--- workspace/executeCommand with progress.
---@param client vim.lsp.Client
---@param command string
---@param arguments any[]
---@param handlers swarm_lsp.StreamHandlers
---@param bufnr? integer
function M.execute(client, command, arguments, handlers, bufnr)
  return M.stream(
    client,
    'workspace/executeCommand',
    { command = command, arguments = arguments },
    handlers,
    bufnr
  )
end

--- A readable message for an LSP error.
---@param err any
---@return string
function M.error_message(err)
  if type(err) == 'table' then
    return tostring(err.message or vim.inspect(err))
  end
  return tostring(err)
end

return M
