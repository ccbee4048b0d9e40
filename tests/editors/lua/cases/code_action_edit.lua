-- The swarm's code actions in Neovim: the list on a range; "Swarm: Refactor…" through
-- vim.lsp.buf.code_action (codeAction/resolve → WorkspaceEdit) edits the buffer; after undo,
-- :SwarmRefactor (swarm.refactor → "Apply?" → workspace/applyEdit) edits it again; and
-- :SwarmExplain puts the explanation in the chat buffer.
return function(H, args)
  H.setup()
  local notes = H.capture_notifications()
  H.answer_questions(args.choose)
  local bufnr, client = H.open_and_attach(args.file, 45000)
  H.settle(client, bufnr)
  H.record('code_action_provider', client.server_capabilities.codeActionProvider ~= nil)
  if not client.server_capabilities.codeActionProvider then
    return
  end

  local range = args.range -- 0-based LSP range of the method to refactor
  local response = client:request_sync('textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = range,
    context = { diagnostics = {}, triggerKind = 1 },
  }, 20000, bufnr)
  local listed = {}
  for _, action in ipairs(response and response.result or {}) do
    table.insert(listed, { title = action.title, kind = action.kind or vim.NIL })
  end
  H.record('actions', listed)

  local function wait_for_edit(tick, what)
    local ok, err = pcall(H.wait, args.timeout_ms, function()
      return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick or H.first_error(notes)
    end, what)
    return ok and vim.api.nvim_buf_get_changedtick(bufnr) ~= tick, ok and vim.NIL or tostring(err)
  end

  local before = H.text(bufnr)
  H.record('before', before)
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      return action.title == 'Swarm: Refactor…'
    end,
    range = {
      start = { range.start.line + 1, range.start.character },
      ['end'] = { range['end'].line, 0 },
    },
  })
  local edited, err = wait_for_edit(tick, 'the code action edit')
  H.record('code_action_edited', edited)
  H.record('code_action_error', err)
  H.record('after_code_action', H.text(bufnr))
  if not edited then
    H.record('notes', notes)
    return
  end

  -- Undo, then the same through the command: the server asks before it applies.
  vim.cmd('silent undo')
  H.record('undone', H.text(bufnr) == before)
  tick = vim.api.nvim_buf_get_changedtick(bufnr)
  vim.cmd(('%d,%dSwarmRefactor %s'):format(range.start.line + 1, range['end'].line, args.instruction))
  edited, err = wait_for_edit(tick, 'the command edit')
  H.record('command_edited', edited)
  H.record('command_error', err)
  H.record('after_command', H.text(bufnr))

  -- :SwarmExplain on the same lines: the Markdown lands in the chat buffer.
  local chat = require('swarm_lsp.chat')
  vim.cmd(('%d,%dSwarmExplain'):format(range.start.line + 1, range['end'].line))
  local explained = pcall(H.wait, args.timeout_ms, function()
    return (chat.bufnr and H.text(chat.bufnr):find('## Explain', 1, true)) or H.first_error(notes)
  end, 'the explanation')
  H.record('explained', explained and chat.bufnr ~= nil)
  H.record('chat', chat.bufnr and H.text(chat.bufnr) or vim.NIL)
  H.record('notes', notes)
end
