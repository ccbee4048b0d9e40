-- :SwarmChat against the real server: the answer streams into the scratch buffer.
return function(H, args)
  H.setup()
  local bufnr = H.open_and_attach(args.file, 45000)
  vim.api.nvim_win_set_cursor(0, { 19, 8 })
  local chat = require('swarm_lsp.chat')
  local snapshots, done = {}, nil
  vim.api.nvim_create_autocmd('User', {
    pattern = 'SwarmChatDelta',
    callback = function(ev)
      table.insert(snapshots, { text = ev.data.text, buffer = H.text(chat.bufnr) })
    end,
  })
  vim.api.nvim_create_autocmd('User', {
    pattern = 'SwarmChatDone',
    callback = function(ev)
      done = ev.data
    end,
  })
  -- Straight after attaching: the server is still loading its models.
  vim.cmd('SwarmChat ' .. args.prompt)
  H.record('chat_window_open', vim.fn.bufwinid(chat.bufnr) ~= -1)
  H.record('current_buffer_kept', vim.api.nvim_get_current_buf() == bufnr)
  H.wait(80000, function()
    return done
  end, 'the chat answer')
  H.record('done', {
    text = done.text,
    deltas = done.deltas or vim.NIL,
    error = done.error or vim.NIL,
    model = done.result and done.result.model or vim.NIL,
  })
  H.record('snapshots', snapshots)
  H.record('buffer', vim.api.nvim_buf_get_lines(chat.bufnr, 0, -1, false))
  H.record('buffer_name', vim.api.nvim_buf_get_name(chat.bufnr))
  H.record('buftype', vim.bo[chat.bufnr].buftype)
  H.record('history', chat.history)

  -- Stop the next answer after its first piece; the server keeps serving.
  local before = #snapshots
  done = nil
  vim.cmd('SwarmChat ' .. args.second_prompt)
  H.wait(80000, function()
    return #snapshots > before or done
  end, 'the second answer to start')
  chat.cancel()
  H.record('after_cancel', vim.api.nvim_buf_get_lines(chat.bufnr, -3, -1, false))
  H.record('history_after_cancel', #chat.history)
  H.record('active_after_cancel', chat.active == nil)
  done = nil
  vim.cmd('SwarmChat ' .. args.third_prompt)
  H.wait(80000, function()
    return done
  end, 'the third answer')
  H.record('third', { text = done.text, error = done.error or vim.NIL })
  H.record('history_after_third', #chat.history)
end
