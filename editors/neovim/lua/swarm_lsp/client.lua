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

--- Send `method` with a fresh workDoneToken in `params`; returns (request_id, token) or nil.
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
