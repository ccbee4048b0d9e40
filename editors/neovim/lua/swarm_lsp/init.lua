--- swarm-lsp for Neovim 0.11+.
---
---   require('swarm_lsp').setup({
---     settings = { models = { completionMaxTokens = 32 }, swarm = { coordinator = '10.0.0.2:50051' } },
---   })
---
--- See :help swarm_lsp.
local config = require('swarm_lsp.config')

local M = {}

--- Apply options, configure the `swarm_lsp` LSP config and enable it.
---@param opts? swarm_lsp.Options
function M.setup(opts)
  local options = config.setup(opts)
  vim.lsp.config('swarm_lsp', config.lsp_overrides(options))
  -- Running clients pick up new settings without a restart.
  if next(options.settings) ~= nil then
    for _, client in ipairs(vim.lsp.get_clients({ name = 'swarm_lsp' })) do
      client.settings = { swarm = vim.deepcopy(options.settings) }
      client:notify('workspace/didChangeConfiguration', { settings = client.settings })
    end
  end
  if options.enable then
    vim.lsp.enable('swarm_lsp')
  end
end

--- Buffer setup when the swarm_lsp client attaches (plugin/swarm_lsp.lua calls it).
---@param client vim.lsp.Client
---@param bufnr integer
function M.on_attach(client, bufnr)
  require('swarm_lsp.inline').attach(client, bufnr)
  if config.options.completion.autotrigger and client:supports_method('textDocument/completion') then
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true })
  end
end

--- Statusline component, e.g. `Swarm ✓ 2/3 ⟳1 ≡4` (empty when no swarm_lsp client runs).
---@return string
function M.statusline()
  return require('swarm_lsp.status').statusline()
end

--- Send a chat prompt; the answer streams into the chat buffer.
---@param prompt string
function M.chat(prompt)
  return require('swarm_lsp.chat').send(prompt)
end

return M
