-- :SwarmIndex, then :SwarmAsk: the answer streams into the chat buffer with its sources, and
-- the cited places go to the quickfix list.
return function(H, args)
  H.setup()
  local notes = H.capture_notifications()
  H.answer_questions(args.choose)
  local bufnr, client = H.open_and_attach(args.file, 45000)
  H.settle(client, bufnr)
  local provider = client.server_capabilities.executeCommandProvider
  local commands = provider and provider.commands or {}
  H.record('execute_commands', commands)
  if not vim.tbl_contains(commands, 'swarm.ask') then
    return
  end

  local function note_matching(pattern)
    for _, note in ipairs(notes) do
      if note.message:find(pattern) then
        return note.message
      end
    end
  end
  vim.cmd('SwarmIndex')
  local indexed = pcall(H.wait, args.timeout_ms, function()
    return #notes >= 2 or H.first_error(notes)
  end, 'the index')
  indexed = indexed and note_matching('indexed') ~= nil
  H.record('indexed', indexed)
  H.record('notes_after_index', vim.deepcopy(notes))

  local chat = require('swarm_lsp.chat')
  local done
  vim.api.nvim_create_autocmd('User', {
    pattern = 'SwarmChatDone',
    callback = function(ev)
      done = ev.data
    end,
  })
  local deltas = 0
  vim.api.nvim_create_autocmd('User', {
    pattern = 'SwarmChatDelta',
    callback = function()
      deltas = deltas + 1
    end,
  })
  vim.cmd('SwarmAsk ' .. args.question)
  H.wait(args.timeout_ms, function()
    return done
  end, 'the answer')
  H.record('done', { text = done.text, error = done.error or vim.NIL })
  H.record('deltas', deltas)
  H.record('chat', H.text(chat.bufnr))
  local qf = {}
  for _, item in ipairs(vim.fn.getqflist()) do
    table.insert(qf, { file = vim.fs.basename(vim.api.nvim_buf_get_name(item.bufnr)), lnum = item.lnum })
  end
  H.record('quickfix', qf)
  H.record('notes', notes)
end
