-- :SwarmRunTests runs the project's tests on the swarm's test worker: failures arrive as
-- diagnostics with source "swarm"; after the bug is fixed and saved, a new run clears them.
-- :SwarmStatus then shows the swarm.
return function(H, args)
  H.setup()
  local notes = H.capture_notifications()
  H.answer_questions(args.choose)
  local bufnr, client = H.open_and_attach(args.file, 45000)
  H.settle(client, bufnr)
  local provider = client.server_capabilities.executeCommandProvider
  local commands = provider and provider.commands or {}
  H.record('execute_commands', commands)
  if not vim.tbl_contains(commands, 'swarm.runTests') then
    return
  end

  local function swarm_diagnostics()
    local found = {}
    for _, d in ipairs(vim.diagnostic.get(nil)) do
      if d.source == 'swarm' then
        table.insert(found, {
          file = vim.fs.basename(vim.api.nvim_buf_get_name(d.bufnr)),
          lnum = d.lnum,
          severity = d.severity,
          message = d.message,
        })
      end
    end
    return found
  end

  vim.cmd('SwarmRunTests')
  local ok, err = pcall(H.wait, args.timeout_ms, function()
    return #swarm_diagnostics() > 0 or H.first_error(notes)
  end, 'swarm diagnostics')
  ok = ok and #swarm_diagnostics() > 0
  H.record('diagnostics_arrived', ok)
  H.record('wait_error', ok and vim.NIL or tostring(err))
  H.record('diagnostics', swarm_diagnostics())
  if not ok then
    H.record('notes', notes)
    return
  end

  -- Fix the bug the sample project carries on purpose, save, run again.
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  for i, line in ipairs(lines) do
    if line:find(args.bug, 1, true) then
      vim.api.nvim_buf_set_lines(bufnr, i - 1, i, false, { (line:gsub(vim.pesc(args.bug), args.fix)) })
    end
  end
  vim.cmd.write()
  vim.cmd('SwarmRunTests')
  local cleared = pcall(H.wait, args.timeout_ms, function()
    return #swarm_diagnostics() == 0 or H.first_error(notes)
  end, 'the diagnostics to clear')
  cleared = cleared and #swarm_diagnostics() == 0
  H.record('cleared', cleared)
  H.record('diagnostics_after_fix', swarm_diagnostics())

  vim.cmd('SwarmStatus')
  H.wait(20000, function()
    for _, note in ipairs(notes) do
      if note.message:find('Coordinator:', 1, true) then
        return true
      end
    end
  end, 'the status')
  H.record('notes', notes)
end
