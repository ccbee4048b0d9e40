--- :SwarmChat — a scratch buffer that streams answers from `swarm/chat`.
---
--- Each answer is written as deltas arrive (`$/progress` reports on the request's token); the
--- request's result carries the whole text, which then replaces the streamed part (so a lost
--- notification never leaves a wrong answer). Fires `User SwarmChatDelta` and
--- `User SwarmChatDone` autocmds.
local client_mod = require('swarm_lsp.client')
local config = require('swarm_lsp.config')

local M = {}

M.BUFNAME = 'swarm://chat'
M.MAX_HISTORY = 12

---@type integer?
M.bufnr = nil
---@type { role: string, content: string }[]
M.history = {}
--- The answer being streamed, if any: { start = row, count = n, text = '', request_id, client }
M.active = nil

local function valid(bufnr)
  return bufnr ~= nil and vim.api.nvim_buf_is_valid(bufnr)
end

--- The chat buffer, created on first use.
---@return integer
function M.buffer()
  if valid(M.bufnr) then
    return M.bufnr --[[@as integer]]
  end
  local bufnr = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(bufnr, M.BUFNAME)
  vim.bo[bufnr].buftype = 'nofile'
  vim.bo[bufnr].bufhidden = 'hide'
  vim.bo[bufnr].swapfile = false
  vim.bo[bufnr].filetype = 'markdown'
  vim.keymap.set('n', '<CR>', function()
    M.prompt()
  end, { buffer = bufnr, desc = 'swarm_lsp: ask the chat' })
  vim.keymap.set('n', '<C-c>', function()
    M.cancel()
  end, { buffer = bufnr, desc = 'swarm_lsp: stop the answer' })
  M.bufnr = bufnr
  return bufnr
end

--- Show the chat buffer in a window (reusing one that shows it) without leaving the current one.
---@return integer window
function M.open()
  local bufnr = M.buffer()
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(win) == bufnr then
      return win
    end
  end
  local where = config.options.chat.open
  local current = vim.api.nvim_get_current_win()
  if where == 'current' then
    vim.api.nvim_win_set_buf(current, bufnr)
    return current
  end
  if where == 'tab' then
    vim.cmd.tabnew()
  else
    vim.cmd(where == 'split' and 'split' or 'vsplit')
  end
  local win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, bufnr)
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  if where ~= 'tab' then
    vim.api.nvim_set_current_win(current)
  end
  return win
end

local function line_count(bufnr)
  return vim.api.nvim_buf_line_count(bufnr)
end

--- Append lines at the end (the first write replaces the empty line of a new buffer).
local function append(bufnr, lines)
  local count = line_count(bufnr)
  local empty = count == 1 and vim.api.nvim_buf_get_lines(bufnr, 0, 1, false)[1] == ''
  if empty then
    vim.api.nvim_buf_set_lines(bufnr, 0, 1, false, lines)
  else
    vim.api.nvim_buf_set_lines(bufnr, count, count, false, lines)
  end
end

local function follow(bufnr)
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_buf(win) == bufnr then
      vim.api.nvim_win_set_cursor(win, { line_count(bufnr), 0 })
    end
  end
end

local function fire(event, data)
  vim.api.nvim_exec_autocmds('User', { pattern = event, modeline = false, data = data })
end

--- Start an answer block under a "## You" block; returns the answer state.
---@param heading string
---@param user_text string
local function begin_answer(heading, user_text)
  local bufnr = M.buffer()
  local lines = { '## You' }
  vim.list_extend(lines, vim.split(user_text, '\n', { plain = true }))
  vim.list_extend(lines, { '', '## ' .. heading, '' })
  append(bufnr, lines)
  local answer = { bufnr = bufnr, start = line_count(bufnr) - 1, count = 1, text = '' }
  follow(bufnr)
  return answer
end

--- Rewrite the answer's lines with `text`.
local function render(answer, text)
  if not valid(answer.bufnr) then
    return
  end
  local lines = vim.split(text, '\n', { plain = true })
  vim.api.nvim_buf_set_lines(answer.bufnr, answer.start, answer.start + answer.count, false, lines)
  answer.count = #lines
  follow(answer.bufnr)
end

--- Add a delta to the streamed answer.
function M._delta(answer, delta)
  if type(delta) ~= 'string' or delta == '' or answer.done then
    return
  end
  answer.text = answer.text .. delta
  answer.deltas = (answer.deltas or 0) + 1
  render(answer, answer.text)
  fire('SwarmChatDelta', { delta = delta, text = answer.text })
end

--- Settle the answer with its final text (authoritative) and an optional footer.
function M._finish(answer, text, footer)
  answer.done = true
  render(answer, text)
  local tail = { '' }
  if footer then
    tail = { '', footer, '' }
  end
  vim.api.nvim_buf_set_lines(answer.bufnr, answer.start + answer.count, answer.start + answer.count, false, tail)
  follow(answer.bufnr)
end

local function footer_for(result)
  if type(result) ~= 'table' then
    return nil
  end
  local parts = {}
  if type(result.model) == 'string' and result.model ~= '' then
    table.insert(parts, result.model)
  end
  if type(result.elapsedMs) == 'number' then
    table.insert(parts, ('%.1f s'):format(result.elapsedMs / 1000))
  end
  return #parts > 0 and ('_' .. table.concat(parts, ' · ') .. '_') or nil
end

--- Pull the text out of a result (chat: text; ask: answer; or a bare string).
---@param result any
---@return string
function M.result_text(result)
  if type(result) == 'string' then
    return result
  end
  if type(result) == 'table' then
    for _, field in ipairs({ 'text', 'answer', 'message', 'markdown' }) do
      if type(result[field]) == 'string' then
        return result[field]
      end
    end
  end
  return ''
end

--- Run a streamed request into a new answer block.
---@param opts { heading: string, user_text: string, client: vim.lsp.Client, method: string, params: table, bufnr?: integer, format?: fun(result: any): string, on_done?: fun(text: string, result: any) }
function M.run(opts)
  if M.active and not M.active.done then
    M.cancel()
  end
  M.open()
  local answer = begin_answer(opts.heading, opts.user_text)
  answer.client = opts.client
  M.active = answer
  local format = opts.format or M.result_text
  answer.request_id = client_mod.stream(opts.client, opts.method, opts.params, {
    on_progress = function(value)
      if value.kind == 'report' then
        M._delta(answer, value.message)
      end
    end,
    on_started = function(started)
      answer.task_id = started.taskId
    end,
    on_result = function(err, result)
      if M.active == answer then
        M.active = nil
      end
      if answer.done then
        return
      end
      if err then
        local message = client_mod.error_message(err)
        M._finish(answer, answer.text, '_error: ' .. message .. '_')
        fire('SwarmChatDone', { error = message, text = answer.text })
        return
      end
      local text = format(result)
      M._finish(answer, text, footer_for(result))
      if opts.on_done then
        opts.on_done(text, result)
      end
      fire('SwarmChatDone', { text = text, deltas = answer.deltas or 0, result = result })
    end,
  }, opts.bufnr)
  return answer
end

--- Send one chat prompt with the history so far and the source buffer's cursor position.
---@param prompt string
---@param source_buf? integer buffer the prompt is about (default: current)
function M.send(prompt, source_buf)
  source_buf = source_buf or vim.api.nvim_get_current_buf()
  if source_buf == M.bufnr then
    source_buf = vim.fn.bufnr('#') > 0 and vim.fn.bufnr('#') or source_buf
  end
  local client = client_mod.require(source_buf)
  if not client then
    return nil
  end
  local params = { prompt = prompt, history = vim.deepcopy(M.history) }
  if source_buf ~= M.bufnr and vim.lsp.buf_is_attached(source_buf, client.id) then
    params.uri = vim.uri_from_bufnr(source_buf)
    local win = vim.fn.bufwinid(source_buf)
    if win ~= -1 then
      local pos = vim.lsp.util.make_position_params(win, client.offset_encoding)
      params.position = pos.position
    end
  end
  return M.run({
    heading = 'Swarm',
    user_text = prompt,
    client = client,
    method = 'swarm/chat',
    params = params,
    bufnr = source_buf,
    on_done = function(text)
      table.insert(M.history, { role = 'user', content = prompt })
      table.insert(M.history, { role = 'assistant', content = text })
      while #M.history > M.MAX_HISTORY do
        table.remove(M.history, 1)
      end
    end,
  })
end

--- Ask for a prompt with vim.ui.input, then send it.
function M.prompt()
  local source = vim.api.nvim_get_current_buf()
  vim.ui.input({ prompt = 'Swarm> ' }, function(input)
    if input and vim.trim(input) ~= '' then
      M.send(input, source)
    end
  end)
end

--- Stop the answer being streamed.
function M.cancel()
  local answer = M.active
  if not answer or answer.done then
    return
  end
  if answer.client and answer.task_id then
    client_mod.cancel_task(answer.client, answer.task_id)
  elseif answer.client and answer.request_id then
    answer.client:cancel_request(answer.request_id)
  end
  M._finish(answer, answer.text, '_cancelled_')
  M.active = nil
end

--- Forget the conversation and empty the buffer.
function M.clear()
  M.cancel()
  M.history = {}
  if valid(M.bufnr) then
    vim.api.nvim_buf_set_lines(M.bufnr, 0, -1, false, {})
  end
end

--- Show a finished result (an explanation, a review) as an answer.
---@param heading string
---@param user_text string
---@param text string
function M.show(heading, user_text, text)
  M.open()
  local answer = begin_answer(heading, user_text)
  M._finish(answer, text, nil)
end

return M
