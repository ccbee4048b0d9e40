-- The swarm's code actions in Neovim: the list on a range, then "Swarm: Refactor…" through
-- vim.lsp.buf.code_action (codeAction/resolve → WorkspaceEdit) edits the buffer, and
-- :SwarmExplain puts the explanation in the chat buffer.
return function(H, args)
  H.setup()
  local notes = H.capture_notifications()
  H.answer_questions(args.choose)
  local bufnr, client = H.open_and_attach(args.file, 45000)
  local caps = client.server_capabilities
  H.record('code_action_provider', caps.codeActionProvider ~= nil)
  if not caps.codeActionProvider then
    return
  end

  local range = args.range -- 0-based LSP range of the method to refactor
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = range,
    context = { diagnostics = {}, triggerKind = 1 },
  }
  local response = client:request_sync('textDocument/codeAction', params, 20000, bufnr)
  local listed = {}
  for _, action in ipairs(response and response.result or {}) do
    table.insert(listed, { title = action.title, kind = action.kind or vim.NIL })
  end
  H.record('actions', listed)

  local before = H.text(bufnr)
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      return action.title == 'Swarm: Refactor…'
    end,
    range = {
      start = { range.start.line + 1, range.start.character },
      ['end'] = { range['end'].line + 1, range['end'].character },
    },
  })
  local ok, err = pcall(H.wait, args.timeout_ms, function()
    return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick or H.first_error(notes)
  end, 'the refactor edit')
  ok = ok and vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
  H.record('edited', ok)
  H.record('wait_error', ok and vim.NIL or tostring(err))
  H.record('before', before)
  H.record('after', H.text(bufnr))
  H.record('notes', notes)

  -- :SwarmExplain on the same lines: the Markdown lands in the chat buffer.
  vim.api.nvim_set_current_buf(bufnr)
  local chat = require('swarm_lsp.chat')
  vim.cmd(('%d,%dSwarmExplain'):format(range.start.line + 1, range['end'].line))
  local explained = pcall(H.wait, args.timeout_ms, function()
    return chat.bufnr and H.text(chat.bufnr):find('## Explain', 1, true)
  end, 'the explanation')
  H.record('explained', explained)
  H.record('chat', chat.bufnr and H.text(chat.bufnr) or vim.NIL)
end
