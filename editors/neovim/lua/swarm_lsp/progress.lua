--- Work-done progress for streamed requests. Chat and ask answers arrive as `$/progress`
--- reports whose `message` is the next piece of text; the plugin creates the token, so it knows
--- which progress messages are its own.
local M = {}

---@type table<string, { fn: fun(value: table), forward: boolean }>
local listeners = {}
local counter = 0

--- A fresh token for one request.
---@param kind string
---@return string
function M.new_token(kind)
  counter = counter + 1
  return ('swarm-nvim-%s-%d-%d'):format(kind, vim.uv.getpid(), counter)
end

--- Call `fn(value)` for every progress value on `token` until `forget(token)`.
--- With `forward`, the message also goes to Neovim's own handler (LspProgress, statuslines).
---@param token string
---@param fn fun(value: table)
---@param forward? boolean
function M.listen(token, fn, forward)
  listeners[token] = { fn = fn, forward = forward or false }
end

---@param token string
function M.forget(token)
  listeners[token] = nil
end

--- `$/progress` handler for the swarm_lsp client (see lsp/swarm_lsp.lua).
function M.handler(err, params, ctx, config)
  local listener = params and listeners[params.token]
  if listener then
    local ok, problem = pcall(listener.fn, params.value or {})
    if not ok then
      vim.notify('swarm_lsp: progress handler failed: ' .. tostring(problem), vim.log.levels.ERROR)
    end
    if not listener.forward then
      return
    end
  end
  return vim.lsp.handlers['$/progress'](err, params, ctx, config)
end

return M
