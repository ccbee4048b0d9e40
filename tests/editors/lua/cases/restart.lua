-- :SwarmRestart stops the client and starts a new one for the same buffer and root.
return function(H, args)
  H.setup()
  local bufnr, first = H.open_and_attach(args.file, 45000)
  H.record('first_root', first.root_dir or vim.NIL)
  vim.cmd('SwarmRestart')
  local second = H.wait(30000, function()
    local c = vim.lsp.get_clients({ name = 'swarm_lsp', bufnr = bufnr })[1]
    return c and c.id ~= first.id and c.initialized and c
  end, 'a new client')
  H.record('first_stopped', first:is_stopped())
  H.record('second_root', second.root_dir or vim.NIL)
  H.record('clients', #vim.lsp.get_clients({ name = 'swarm_lsp' }))
end
