-- :checkhealth swarm_lsp output and the help file's tags (args.doc: a copy of doc/).
return function(H, args)
  H.setup({ enable = false })
  vim.cmd('checkhealth swarm_lsp')
  H.record('health', vim.api.nvim_buf_get_lines(0, 0, -1, false))
  vim.cmd.helptags(vim.fn.fnameescape(args.doc))
  vim.opt.runtimepath:append(vim.fs.dirname(args.doc))
  vim.cmd.help('swarm_lsp')
  H.record('help_buffer', vim.fn.expand('%:t'))
  local found = {}
  for _, tag in ipairs(args.tags) do
    found[tag] = pcall(vim.cmd.help, tag)
  end
  H.record('tags', found)
end
