-- Test harness for headless Neovim: runs a test body in a coroutine (so it can sleep while
-- Neovim's loop handles LSP messages and typed keys), records results and errors as JSON in
-- $SWARM_TEST_RESULT, then quits.
local H = {}

H.results = {}

local function write_result(payload)
  local path = assert(vim.env.SWARM_TEST_RESULT, 'SWARM_TEST_RESULT is not set')
  local file = assert(io.open(path, 'w'))
  file:write(vim.json.encode(payload))
  file:close()
end

--- Record a named value for the Python side (a copy: later changes do not leak in).
function H.record(name, value)
  H.results[name] = type(value) == 'table' and vim.deepcopy(value) or value
end

--- Pause the test body for `ms`, letting Neovim run.
function H.sleep(ms)
  local co = assert(coroutine.running(), 'H.sleep outside a test body')
  vim.defer_fn(function()
    local ok, err = coroutine.resume(co)
    if not ok then
      H.fail(err)
    end
  end, ms)
  coroutine.yield()
end

--- Sleep until `cond()` is truthy; error with `what` after `timeout_ms`.
function H.wait(timeout_ms, cond, what)
  local waited = 0
  while true do
    local value = cond()
    if value then
      return value
    end
    if waited >= timeout_ms then
      error(('timed out after %d ms waiting for %s'):format(timeout_ms, what), 2)
    end
    H.sleep(50)
    waited = waited + 50
  end
end

--- The LSP log's tail, for failures.
local function lsp_log_tail()
  local ok, path = pcall(vim.lsp.log.get_filename)
  if not ok or vim.fn.filereadable(path) ~= 1 then
    return ''
  end
  local lines = vim.fn.readfile(path)
  return table.concat(vim.list_slice(lines, math.max(1, #lines - 40)), '\n')
end

local finished = false

function H.fail(err)
  if finished then
    return
  end
  finished = true
  write_result({ ok = false, error = tostring(err), results = H.results, lsp_log = lsp_log_tail() })
  vim.cmd('qa!')
end

--- Run `body` as the test; quits Neovim when it returns or fails.
function H.run(body)
  local co = coroutine.create(function()
    local ok, err = xpcall(body, debug.traceback)
    if finished then
      return
    end
    if not ok then
      H.fail(err)
      return
    end
    finished = true
    write_result({ ok = true, results = H.results })
    vim.cmd('qa!')
  end)
  vim.schedule(function()
    local ok, err = coroutine.resume(co)
    if not ok then
      H.fail(err)
    end
  end)
end

--- The plugin set up for tests: the real server through this Python, short generations.
function H.setup(extra)
  local opts = vim.tbl_deep_extend('force', {
    python = vim.env.SWARM_TEST_PYTHON,
    settings = vim.json.decode(vim.env.SWARM_TEST_SETTINGS or '{}'),
  }, extra or {})
  require('swarm_lsp').setup(opts)
end

--- Open `path` and wait until the swarm_lsp client is attached and initialized.
function H.open_and_attach(path, timeout_ms)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  local client = H.wait(timeout_ms or 30000, function()
    local c = vim.lsp.get_clients({ name = 'swarm_lsp', bufnr = bufnr })[1]
    return c and c.initialized and c
  end, 'the swarm_lsp client to attach')
  return bufnr, client
end

--- Wait until the server has loaded its models. Workaround, to drop when the server keeps its
--- protocol channel off fd 1: while llama.cpp loads a model it points fd 1 at /dev/null, and
--- whatever the server writes then (a response, an applyEdit, a question) is lost. The
--- start-up warm-up loads the completion model, then the chat model; once a chat request (which
--- needs the chat model) is answered, both are loaded. A lost answer is simply asked again.
function H.settle(client, bufnr)
  for _ = 1, 6 do
    local answered = false
    client:request('swarm/chat', { prompt = 'Say ok.' }, function()
      answered = true
    end, bufnr)
    if pcall(H.wait, 20000, function()
      return answered
    end, 'an answer') then
      return
    end
  end
  error('the server never answered a chat request')
end

--- Run tests/editors/lua/cases/<name>.lua (a function(H, args)) with args from the test.
function H.run_case(name)
  local case = dofile(vim.env.SWARM_TEST_LUA .. '/cases/' .. name .. '.lua')
  local args = vim.json.decode(vim.env.SWARM_TEST_ARGS or '{}')
  H.run(function()
    case(H, args)
  end)
end

--- Keep every vim.notify message (headless Neovim would only print them).
function H.capture_notifications()
  local notes = {}
  vim.notify = function(message, level)
    table.insert(notes, { message = tostring(message), level = level or vim.log.levels.INFO })
  end
  return notes
end

--- The first captured notification at ERROR level, if any.
function H.first_error(notes)
  for _, note in ipairs(notes) do
    if note.level >= vim.log.levels.ERROR then
      return note.message
    end
  end
end

--- Answer vim.ui.select (window/showMessageRequest, code action menus) with the first item
--- whose text matches one of `patterns`, else the first item; the questions are recorded.
function H.answer_questions(patterns)
  local asked = {}
  H.record('questions', asked)
  vim.ui.select = function(items, opts, on_choice)
    local texts = {}
    for i, item in ipairs(items) do
      texts[i] = opts and opts.format_item and opts.format_item(item) or tostring(item)
    end
    table.insert(asked, { prompt = opts and opts.prompt or '', items = texts })
    H.results.questions = vim.deepcopy(asked)
    for _, pattern in ipairs(patterns or {}) do
      for i, text in ipairs(texts) do
        if text:find(pattern) then
          return on_choice(items[i], i)
        end
      end
    end
    on_choice(items[1], 1)
  end
  return asked
end

--- Lines of a buffer as one string.
function H.text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
end

return H
