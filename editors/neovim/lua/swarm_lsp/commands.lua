--- User commands. Defined at startup (plugin/swarm_lsp.lua); their modules load on first use.
local M = {}

local function lazy(name)
  return setmetatable({}, {
    __index = function(_, key)
      return require(name)[key]
    end,
  })
end

local chat = lazy('swarm_lsp.chat')
local client_mod = lazy('swarm_lsp.client')
local status = lazy('swarm_lsp.status')

--- The LSP range of a command's range: the last visual selection when the command was run on
--- it (charwise / linewise), else whole lines line1..line2.
---@param opts table user command opts
---@param bufnr integer
---@param encoding string
---@return lsp.Range
function M.command_range(opts, bufnr, encoding)
  local line1, line2 = opts.line1, opts.line2
  local start_mark = vim.api.nvim_buf_get_mark(bufnr, '<')
  local end_mark = vim.api.nvim_buf_get_mark(bufnr, '>')
  local mode = vim.fn.visualmode()
  if opts.range == 2 and mode == 'v' and start_mark[1] == line1 and end_mark[1] == line2 then
    local last = vim.api.nvim_buf_get_lines(bufnr, end_mark[1] - 1, end_mark[1], false)[1] or ''
    -- '> may sit past the end of the line (v$); clamp to the last character.
    local end_col = math.min(end_mark[2], math.max(#last - 1, 0))
    return vim.lsp.util.make_given_range_params(
      start_mark,
      { end_mark[1], end_col },
      bufnr,
      encoding
    ).range
  end
  local last = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ''
  local end_char = vim.lsp.util.character_offset(bufnr, line2 - 1, #last, encoding)
  return {
    start = { line = line1 - 1, character = 0 },
    ['end'] = { line = line2 - 1, character = end_char },
  }
end

--- Run a server command with progress shown through Neovim's own progress (LspProgress).
---@param client vim.lsp.Client
---@param command string
---@param arguments any[]
---@param bufnr integer
---@param on_result fun(result: any)
local function execute(client, command, arguments, bufnr, on_result)
  client_mod.execute(client, command, arguments, {
    forward = true,
    on_result = function(err, result)
      if err then
        vim.notify(
          ('swarm_lsp: %s failed: %s'):format(command, client_mod.error_message(err)),
          vim.log.levels.ERROR
        )
        return
      end
      on_result(result)
    end,
  }, bufnr)
end

--- The text a code-action command returned, or nil when it only edited or diagnosed. An answer
--- with citations (research) lists them and puts them in the quickfix list.
---@param result any
---@param root? string workspace root for relative citation paths
---@return string?
function M.describe(result, root)
  if type(result) == 'string' then
    return result ~= '' and result or nil
  end
  if type(result) ~= 'table' then
    return nil
  end
  if type(result.answer) == 'string' and type(result.citations) == 'table' and #result.citations > 0 then
    return M.format_answer(result, root)
  end
  local text = chat.result_text(result)
  if text ~= '' then
    return text
  end
  if type(result.summary) == 'string' then
    return result.summary
  end
  return nil
end

--- swarm.ask's answer with its citations; citations also go to the quickfix list.
---@param result any
---@param root? string
---@return string
function M.format_answer(result, root)
  if type(result) ~= 'table' then
    return chat.result_text(result)
  end
  local answer = type(result.answer) == 'string' and result.answer or chat.result_text(result)
  local citations = type(result.citations) == 'table' and result.citations or {}
  if #citations == 0 then
    return answer
  end
  local lines = { answer, '', 'Sources:' }
  local items = {}
  -- The server may already list its sources in the answer; then they are not repeated.
  local listed_in_answer = true
  for _, c in ipairs(citations) do
    if type(c) == 'table' and type(c.path) == 'string' then
      local line = type(c.line) == 'number' and c.line or 1
      listed_in_answer = listed_in_answer and answer:find(c.path, 1, true) ~= nil
      table.insert(lines, ('- %s:%d'):format(c.path, line))
      local filename = c.path
      if root and not vim.startswith(filename, '/') then
        filename = vim.fs.joinpath(root, filename)
      end
      table.insert(items, { filename = filename, lnum = line, text = 'swarm: cited' })
    end
  end
  if #items > 0 then
    vim.fn.setqflist({}, ' ', { title = 'Swarm: sources', items = items })
  end
  if listed_in_answer then
    return answer
  end
  return table.concat(lines, '\n')
end

local function with_client(bufnr)
  return client_mod.require(bufnr)
end

-- Code-action commands: name, server command, what they need, where the result goes.
M.CODE_COMMANDS = {
  { name = 'SwarmRefactor', server = 'swarm.refactor', target = 'range', instruction = true },
  { name = 'SwarmExplain', server = 'swarm.explain', target = 'range', to_chat = 'Explain' },
  { name = 'SwarmReview', server = 'swarm.review', target = 'range', to_chat = 'Review' },
  { name = 'SwarmGenerateTests', server = 'swarm.generateTests', target = 'range' },
  { name = 'SwarmResearch', server = 'swarm.research', target = 'position', to_chat = 'Research' },
  { name = 'SwarmRunTests', server = 'swarm.runTests', target = 'file' },
}

--- Arguments for a code-action command, as the server's contract lists them.
---@param spec table one of CODE_COMMANDS
---@param opts table user command opts
---@param bufnr integer
---@param client vim.lsp.Client
---@param instruction? string
---@return any[]
function M.arguments(spec, opts, bufnr, client, instruction)
  local uri = vim.uri_from_bufnr(bufnr)
  if spec.target == 'file' then
    return { uri }
  end
  if spec.target == 'position' then
    local win = vim.fn.bufwinid(bufnr)
    return { uri, vim.lsp.util.make_position_params(win ~= -1 and win or 0, client.offset_encoding).position }
  end
  local range = M.command_range(opts, bufnr, client.offset_encoding)
  if spec.instruction then
    return { uri, range, instruction or '' }
  end
  return { uri, range }
end

local function run_code_command(spec, opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = with_client(bufnr)
  if not client then
    return
  end
  local function go(instruction)
    local arguments = M.arguments(spec, opts, bufnr, client, instruction)
    execute(client, spec.server, arguments, bufnr, function(result)
      local text = M.describe(result, client.root_dir)
      if not text then
        return
      end
      if spec.to_chat then
        chat.show(spec.to_chat, ('%s %s'):format(spec.to_chat, vim.fn.bufname(bufnr)), text)
      else
        vim.notify('swarm_lsp: ' .. text, vim.log.levels.INFO)
      end
    end)
  end
  if spec.instruction then
    local given = vim.trim(opts.args or '')
    if given ~= '' then
      go(given)
    else
      vim.ui.input({ prompt = 'Refactor: ' }, function(input)
        if input and vim.trim(input) ~= '' then
          go(input)
        end
      end)
    end
  else
    go(nil)
  end
end

function M.ask(question)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = with_client(bufnr)
  if not client then
    return
  end
  local function go(q)
    chat.run({
      heading = 'Swarm (ask)',
      user_text = q,
      client = client,
      method = 'workspace/executeCommand',
      params = { command = 'swarm.ask', arguments = { q } },
      bufnr = bufnr,
      format = function(result)
        return M.format_answer(result, client.root_dir)
      end,
    })
  end
  if question and vim.trim(question) ~= '' then
    go(question)
  else
    vim.ui.input({ prompt = 'Ask the workspace: ' }, function(input)
      if input and vim.trim(input) ~= '' then
        go(input)
      end
    end)
  end
end

function M.status()
  local client = with_client()
  if not client then
    return
  end
  local function show(st)
    vim.notify(table.concat(status.lines(st), '\n'), vim.log.levels.INFO, { title = 'swarm_lsp' })
  end
  client:request('workspace/executeCommand', { command = 'swarm.status', arguments = {} }, function(err, result)
    if err then
      local last = status.last[client.id]
      if last then
        show(last)
      else
        vim.notify('swarm_lsp: swarm.status failed: ' .. client_mod.error_message(err), vim.log.levels.WARN)
      end
      return
    end
    local st = status.normalize(result)
    status.last[client.id] = st
    show(st)
  end)
end

function M.index()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = with_client(bufnr)
  if not client then
    return
  end
  vim.notify('swarm_lsp: indexing the workspace…', vim.log.levels.INFO)
  execute(client, 'swarm.index', {}, bufnr, function(result)
    vim.notify('swarm_lsp: ' .. (M.describe(result) or 'workspace indexed'), vim.log.levels.INFO)
  end)
end

--- Stop the swarm_lsp clients and start them again for the buffers they served.
function M.restart()
  local clients = vim.lsp.get_clients({ name = 'swarm_lsp' })
  local targets = {}
  for _, client in ipairs(clients) do
    for bufnr in pairs(client.attached_buffers) do
      table.insert(targets, { bufnr = bufnr, root_dir = client.root_dir })
    end
    client:stop()
  end
  local function all_stopped()
    for _, client in ipairs(clients) do
      if not client:is_stopped() then
        return false
      end
    end
    return true
  end
  local timer = assert(vim.uv.new_timer())
  local waited = 0
  timer:start(100, 100, vim.schedule_wrap(function()
    waited = waited + 100
    if not all_stopped() and waited < 5000 then
      return
    end
    timer:stop()
    timer:close()
    for _, client in ipairs(clients) do
      if not client:is_stopped() then
        client:stop(true)
      end
    end
    for _, target in ipairs(targets) do
      if vim.api.nvim_buf_is_valid(target.bufnr) then
        local cfg = vim.deepcopy(vim.lsp.config.swarm_lsp)
        cfg.root_dir = target.root_dir
        vim.lsp.start(cfg, { bufnr = target.bufnr })
      end
    end
    vim.notify('swarm_lsp: restarted', vim.log.levels.INFO)
  end))
end

--- Define every user command.
function M.create()
  local command = vim.api.nvim_create_user_command
  command('SwarmChat', function(opts)
    if vim.trim(opts.args) == '' then
      chat.open()
      chat.prompt()
    else
      chat.send(opts.args)
    end
  end, { nargs = '*', desc = 'swarm_lsp: chat with the local model (streams into a scratch buffer)' })
  command('SwarmChatClear', function()
    chat.clear()
  end, { desc = 'swarm_lsp: forget the chat' })
  command('SwarmAsk', function(opts)
    M.ask(opts.args)
  end, { nargs = '*', desc = 'swarm_lsp: ask a question about the workspace (research index)' })
  command('SwarmStatus', function()
    M.status()
  end, { desc = 'swarm_lsp: machines, queue and recent tasks' })
  command('SwarmIndex', function()
    M.index()
  end, { desc = 'swarm_lsp: index the workspace for research' })
  command('SwarmRestart', function()
    M.restart()
  end, { desc = 'swarm_lsp: restart the language server' })
  for _, spec in ipairs(M.CODE_COMMANDS) do
    command(spec.name, function(opts)
      run_code_command(spec, opts)
    end, {
      nargs = spec.instruction and '*' or 0,
      range = spec.target == 'range' or nil,
      desc = 'swarm_lsp: ' .. spec.server,
    })
  end
end

return M
