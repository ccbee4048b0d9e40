--- Inline (ghost-text) completions from `textDocument/inlineCompletion`.
---
--- Neovim 0.12+ shows them itself (vim.lsp.inline_completion); this module only turns that on
--- and maps the accept key. On 0.11 it does the job: after typing stops for `debounce_ms`
--- (150 ms, as llama.vscode waits) in insert mode it asks the server, cancelling the request a
--- newer keystroke supersedes, and shows the first suggestion as virtual text at the cursor
--- (first line inline, the rest as virtual lines); the accept key inserts it. Typing the start
--- of the suggestion keeps the rest on screen at once (the server answers the same from its
--- typed-ahead cache). On both, entering a buffer or resting the cursor sends `swarm/warm` so
--- the server evaluates the prompt there before the first keystroke (llama.vim does the same).
local config = require('swarm_lsp.config')

local M = {}

M.ns = vim.api.nvim_create_namespace('swarm_lsp_inline')

--- Per-buffer state (0.11 fallback).
---@type table<integer, { client_id: integer, timer?: uv.uv_timer_t, request?: integer, suggestion?: table, tick?: integer }>
M.buffers = {}

--- True when this Neovim shows inline completions itself.
function M.native()
  return vim.lsp.inline_completion ~= nil and type(vim.lsp.inline_completion.enable) == 'function'
end

local function keys(key)
  return vim.api.nvim_replace_termcodes(key, true, false, true)
end

--- The text of an InlineCompletionItem (insertText is a string or a StringValue snippet).
---@param item table
---@return string?
function M.item_text(item)
  if type(item) ~= 'table' then
    return nil
  end
  local text = item.insertText
  if type(text) == 'table' then
    text = text.value
  end
  return type(text) == 'string' and text or nil
end

--- What to show at the cursor for `item`: the part of its text not typed yet. An item whose
--- range starts before the cursor repeats what is typed there; that prefix is dropped, and an
--- item that disagrees with the typed text is not shown.
---@param item table
---@param line string the cursor line
---@param row integer 0-based
---@param col integer 0-based byte column of the cursor
---@param encoding string client offset encoding
---@return string?
function M.visible_text(item, line, row, col, encoding)
  local text = M.item_text(item)
  if not text or text == '' then
    return nil
  end
  local range = item.range
  if type(range) == 'table' and range.start and range.start.line == row then
    local ok, start_byte = pcall(vim.str_byteindex, line, encoding, range.start.character, false)
    if ok and start_byte < col then
      local typed = line:sub(start_byte + 1, col)
      if text:sub(1, #typed) ~= typed then
        return nil
      end
      text = text:sub(#typed + 1)
    end
  end
  return text ~= '' and text or nil
end

--- Hide the suggestion in `bufnr`.
function M.clear(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local state = M.buffers[bufnr]
  if state then
    state.suggestion = nil
  end
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

local function show(bufnr, row, col, text)
  local lines = vim.split(text, '\n', { plain = true })
  local extmark = {
    virt_text = { { lines[1], 'Comment' } },
    virt_text_pos = 'inline',
    hl_mode = 'combine',
  }
  if #lines > 1 then
    local rest = {}
    for i = 2, #lines do
      table.insert(rest, { { lines[i], 'Comment' } })
    end
    extmark.virt_lines = rest
  end
  vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  vim.api.nvim_buf_set_extmark(bufnr, M.ns, row, col, extmark)
end

--- The current suggestion in `bufnr` ({ row, col, text }) or nil.
function M.current(bufnr)
  local state = M.buffers[bufnr or vim.api.nvim_get_current_buf()]
  return state and state.suggestion or nil
end

--- Ask the server now for the cursor position in the current window's buffer.
---@param bufnr? integer
---@param on_done? fun(suggestion: table?)
function M.trigger(bufnr, on_done)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local state = M.buffers[bufnr]
  local client = state and vim.lsp.get_client_by_id(state.client_id)
  if not client then
    if on_done then
      on_done(nil)
    end
    return
  end
  if state.request then
    client:cancel_request(state.request)
    state.request = nil
  end
  local win = vim.fn.bufwinid(bufnr)
  if win == -1 then
    return
  end
  local cursor = vim.api.nvim_win_get_cursor(win)
  local row, col = cursor[1] - 1, cursor[2]
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local params = vim.lsp.util.make_position_params(win, client.offset_encoding)
  ---@diagnostic disable-next-line: inject-field
  params.context = { triggerKind = 2 } -- Automatic
  local ok, request_id = client:request('textDocument/inlineCompletion', params, function(err, result)
    state.request = nil
    local suggestion = nil
    if not err and result and vim.api.nvim_buf_is_valid(bufnr)
      and vim.api.nvim_buf_get_changedtick(bufnr) == tick
    then
      local items = result.items or result
      local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
      local text = type(items) == 'table' and items[1]
        and M.visible_text(items[1], line, row, col, client.offset_encoding)
      if text then
        suggestion = { row = row, col = col, text = text }
        state.suggestion = suggestion
        show(bufnr, row, col, text)
      end
    end
    if on_done then
      on_done(suggestion)
    end
  end, bufnr)
  if ok then
    state.request = request_id
  end
end

--- Insert the suggestion; true when there was one.
---@param bufnr? integer
---@return boolean
function M.accept(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local suggestion = M.current(bufnr)
  if not suggestion then
    return false
  end
  M.clear(bufnr)
  local lines = vim.split(suggestion.text, '\n', { plain = true })
  vim.api.nvim_buf_set_text(bufnr, suggestion.row, suggestion.col, suggestion.row, suggestion.col, lines)
  local end_row = suggestion.row + #lines
  local end_col = #lines == 1 and suggestion.col + #lines[1] or #lines[#lines]
  local win = vim.fn.bufwinid(bufnr)
  if win ~= -1 then
    vim.api.nvim_win_set_cursor(win, { end_row, end_col })
  end
  return true
end

--- The suggestion left after typing `typed` at its start, or nil when the typing left it.
---@param suggestion table { row, col, text }
---@param row integer
---@param col integer
---@param line string the cursor line now
---@return table?
function M.advance(suggestion, row, col, line)
  if not suggestion or row ~= suggestion.row or col <= suggestion.col then
    return nil
  end
  local typed = line:sub(suggestion.col + 1, col)
  local text = suggestion.text
  if typed:find('\n', 1, true) or text:sub(1, #typed) ~= typed or #typed >= #text then
    return nil
  end
  return { row = row, col = col, text = text:sub(#typed + 1) }
end

--- Ask the server to evaluate the prompt at the cursor now (a notification; no answer).
---@param bufnr integer
function M.warm(bufnr)
  local state = M.buffers[bufnr]
  local client = state and vim.lsp.get_client_by_id(state.client_id)
  local win = vim.fn.bufwinid(bufnr)
  if not client or win == -1 then
    return
  end
  client:notify('swarm/warm', vim.lsp.util.make_position_params(win, client.offset_encoding))
end

local function schedule_request(bufnr)
  local state = M.buffers[bufnr]
  if not state then
    return
  end
  state.timer = state.timer or vim.uv.new_timer()
  state.timer:stop()
  state.timer:start(config.options.inline.debounce_ms, 0, vim.schedule_wrap(function()
    if vim.api.nvim_get_current_buf() == bufnr and vim.fn.mode():sub(1, 1) == 'i' then
      M.trigger(bufnr)
    end
  end))
end

local function detach(bufnr)
  local state = M.buffers[bufnr]
  if not state then
    return
  end
  if state.timer then
    state.timer:stop()
    state.timer:close()
  end
  M.clear(bufnr)
  M.buffers[bufnr] = nil
  pcall(vim.api.nvim_del_augroup_by_name, 'swarm_lsp_inline_' .. bufnr)
end

--- Map the accept key; `accept()` returns true when it took the key.
local function map_keys(bufnr, accept)
  local inline = config.options.inline
  if inline.accept then
    vim.keymap.set('i', inline.accept, function()
      if accept() then
        return ''
      end
      return keys(inline.accept)
    end, { buffer = bufnr, expr = true, replace_keycodes = false, desc = 'swarm_lsp: accept inline completion' })
  end
end

--- Turn inline completions on for `bufnr` (called on LspAttach).
---@param client vim.lsp.Client
---@param bufnr integer
function M.attach(client, bufnr)
  if not config.options.inline.enabled or not client.server_capabilities.inlineCompletionProvider then
    return
  end
  if M.native() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    map_keys(bufnr, function()
      local ok, accepted = pcall(vim.lsp.inline_completion.get)
      return ok and accepted == true
    end)
    return
  end
  if M.buffers[bufnr] then
    return
  end
  M.buffers[bufnr] = { client_id = client.id }
  local group = vim.api.nvim_create_augroup('swarm_lsp_inline_' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ 'TextChangedI', 'TextChangedP' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      local cursor = vim.api.nvim_win_get_cursor(0)
      local row, col = cursor[1] - 1, cursor[2]
      local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
      local rest = M.advance(M.current(bufnr), row, col, line)
      if rest then
        -- Typed what was shown: keep showing the rest at once.
        M.buffers[bufnr].suggestion = rest
        show(bufnr, rest.row, rest.col, rest.text)
      else
        M.clear(bufnr)
      end
      schedule_request(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      local suggestion = M.current(bufnr)
      local cursor = vim.api.nvim_win_get_cursor(0)
      if suggestion and (cursor[1] - 1 ~= suggestion.row or cursor[2] ~= suggestion.col) then
        local line = vim.api.nvim_get_current_line()
        if not M.advance(suggestion, cursor[1] - 1, cursor[2], line) then
          M.clear(bufnr)
        end
      end
    end,
  })
  vim.api.nvim_create_autocmd({ 'BufEnter', 'CursorHold', 'InsertEnter' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.warm(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      local state = M.buffers[bufnr]
      if state and state.timer then
        state.timer:stop()
      end
      M.clear(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd('LspDetach', {
    group = group,
    buffer = bufnr,
    callback = function(args)
      if args.data.client_id == client.id then
        detach(bufnr)
      end
    end,
  })
  map_keys(bufnr, function()
    if not M.current(bufnr) then
      return false
    end
    -- Expression mappings may not change text (textlock): insert right after.
    vim.schedule(function()
      M.accept(bufnr)
    end)
    return true
  end)
  local dismiss = config.options.inline.dismiss
  if dismiss then
    vim.keymap.set('i', dismiss, function()
      if M.current(bufnr) then
        M.clear(bufnr)
        return ''
      end
      return keys(dismiss)
    end, { buffer = bufnr, expr = true, replace_keycodes = false, desc = 'swarm_lsp: dismiss inline completion' })
  end
end

return M
