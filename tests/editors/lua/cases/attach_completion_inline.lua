-- Attach to the real server, ask for a completion, then type in Insert mode and take the
-- inline suggestion with the accept key (Neovim 0.11: the plugin's virtual-text fallback).
return function(H, args)
  H.setup()
  local bufnr, client = H.open_and_attach(args.file, 45000)
  H.settle(client, bufnr)
  H.record('root_dir', client.root_dir or vim.NIL)
  local caps = client.server_capabilities
  H.record('caps', {
    completion = caps.completionProvider ~= nil,
    inline = caps.inlineCompletionProvider ~= nil,
  })
  H.record('sent_inline_capability', client.capabilities.textDocument.inlineCompletion ~= nil)

  -- textDocument/completion at the end of `    return `
  vim.api.nvim_win_set_cursor(0, { 5, 11 })
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local response
  client:request('textDocument/completion', params, function(err, result)
    response = { err = err and err.message or vim.NIL, result = result }
  end, bufnr)
  H.wait(40000, function()
    return response
  end, 'the completion response')
  local items = response.result and (response.result.items or response.result) or {}
  H.record('completion_error', response.err)
  H.record('completion_items', #items)
  H.record('completion_label', items[1] and items[1].label or vim.NIL)

  -- Typing in Insert mode asks for an inline completion after the debounce.
  local inline = require('swarm_lsp.inline')
  H.record('native_inline', inline.native())
  vim.api.nvim_feedkeys(vim.keycode('A2 * math.'), 'n', false)
  local suggestion = H.wait(40000, function()
    return inline.current(bufnr)
  end, 'an inline suggestion')
  H.record('mode_while_suggesting', vim.fn.mode())
  H.record('suggestion', suggestion.text)
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, inline.ns, 0, -1, { details = true })
  H.record('extmarks', #marks)
  H.record('virt_text', marks[1] and marks[1][4].virt_text[1][1] or vim.NIL)
  H.record('line_before_accept', vim.api.nvim_buf_get_lines(bufnr, 4, 5, false)[1])

  -- The accept key inserts it (scheduled: expression mappings may not edit text).
  vim.api.nvim_feedkeys(vim.keycode('<M-l>'), 'm', false)
  H.wait(5000, function()
    return not inline.current(bufnr)
  end, 'the suggestion to be taken')
  H.sleep(100)
  H.record('text_after_accept', table.concat(vim.api.nvim_buf_get_lines(bufnr, 4, -1, false), '\n'))
  H.record('extmarks_after', #vim.api.nvim_buf_get_extmarks(bufnr, inline.ns, 0, -1, {}))
  vim.cmd.stopinsert()
end
