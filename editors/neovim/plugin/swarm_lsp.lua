-- swarm-lsp for Neovim 0.11+: user commands and attach hook only; everything else loads on use.
if vim.g.loaded_swarm_lsp then
  return
end
vim.g.loaded_swarm_lsp = true

require('swarm_lsp.commands').create()

vim.api.nvim_create_autocmd('LspAttach', {
  group = vim.api.nvim_create_augroup('swarm_lsp_attach', { clear = true }),
  desc = 'swarm-lsp: inline completion and buffer setup',
  callback = function(args)
    local client = vim.lsp.get_client_by_id(args.data.client_id)
    if client and client.name == 'swarm_lsp' then
      require('swarm_lsp').on_attach(client, args.buf)
    end
  end,
})
