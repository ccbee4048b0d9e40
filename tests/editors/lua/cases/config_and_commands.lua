-- The plugin's config, commands, option checks and pure helpers; no server is started.
return function(H, args)
  H.setup({ enable = false })
  local cfg = vim.lsp.config.swarm_lsp
  H.record('cmd', cfg.cmd)
  H.record('init_options', cfg.init_options)
  H.record('settings', cfg.settings)
  H.record('has_python_ft', vim.tbl_contains(cfg.filetypes, 'python'))
  H.record('inline_cap', cfg.capabilities.textDocument.inlineCompletion ~= nil)
  local names = {}
  for name in pairs(vim.api.nvim_get_commands({})) do
    if name:match('^Swarm') then
      table.insert(names, name)
    end
  end
  table.sort(names)
  H.record('commands', names)
  H.record('refactor_range', vim.api.nvim_get_commands({}).SwarmRefactor.range)

  local ok, err = pcall(require('swarm_lsp').setup, { settings = { bogus = {} } })
  H.record('bad_settings', { ok = ok, err = tostring(err) })
  ok, err = pcall(require('swarm_lsp').setup, { chat = { open = 'sideways' } })
  H.record('bad_chat', { ok = ok, err = tostring(err) })

  local config = require('swarm_lsp.config')
  H.record('default_cmd', config.server_cmd(config.resolve({})))
  H.record('args_cmd', config.server_cmd(config.resolve({ args = { '--log-level', 'DEBUG' } })))
  H.record('explicit_cmd', config.server_cmd(config.resolve({ cmd = { '/opt/swarm-lsp', 'serve' } })))

  local status = require('swarm_lsp.status')
  local st = status.normalize({
    state = 'ready',
    coordinator = '127.0.0.1:50051',
    queueDepth = 2,
    running = 1,
    machines = {
      { id = 'w1', host = '127.0.0.1', roles = { 'refactor' }, load = 1, capacity = 2, alive = true },
      { id = 'w2', host = '10.0.0.2', roles = { 'test' }, load = 0, capacity = 1, alive = false },
    },
    recent = { { id = 't1', type = 'test', state = 'done' } },
  })
  H.record('status_short', status.short(st))
  H.record('status_lines', status.lines(st))
  H.record('status_garbage', status.short(status.normalize('nope')))
  H.record('status_garbage_lines', status.lines(status.normalize('nope')))
  H.record('status_mesh_lines', status.lines(status.normalize({
    state = 'ready',
    coordinator = '10.0.0.1:50051',
    machines = {},
    peers = {
      { address = '10.0.0.1:50051', id = 'p1', roles = {}, rttMs = 3.26, current = true, running = 2, capacity = 4 },
      { address = '10.0.0.3:50051', id = 'p3', roles = { 'echo' }, rttMs = 1, current = false, error = 'refused' },
      { id = 'no address' },
    },
    tasks = { { id = 't-7', type = 'research', state = 'RUNNING', owner = '10.0.0.1:50051', worker = 'p2' } },
  })))
  H.record('status_dispatch_shape', status.short(status.normalize({
    coordinator = '127.0.0.1:40000',
    machines = {
      { workerId = 'w-1', name = 'thinker', host = '127.0.0.1', roles = { 'refactor' }, capacity = 2, running = 1 },
      { workerId = 'w-2', name = 'tester', host = '127.0.0.1', roles = { 'test' }, capacity = 1, running = 0 },
    },
    queueDepth = 4,
    recent = { { taskId = 't-9', type = 'test', state = 'SUCCEEDED' } },
  })))

  -- The server's own shapes (tests/fixtures/protocol, also checked against the server).
  local function fixture(name)
    return vim.json.decode(table.concat(vim.fn.readfile(args.fixtures .. '/' .. name), '\n'))
  end
  H.record('status_fixture', status.short(status.normalize(fixture('status.json'))))
  local client_mod = require('swarm_lsp.client')
  local shapes = fixture('result.json')
  local delivered = {}
  for _, key in ipairs({ 'finished', 'failed' }) do
    local done = shapes[key]
    client_mod.pending[done.taskId] = {
      on_result = function(err, result)
        delivered[key] = { err = err and err.message or vim.NIL, result = result or vim.NIL }
      end,
    }
    client_mod.on_result(done)
  end
  H.record('started_is_started', client_mod.is_started(shapes.started))
  H.record('results_delivered', delivered)
  H.record('pending_left', vim.tbl_count(client_mod.pending))

  local inline = require('swarm_lsp.inline')
  local typed = { start = { line = 0, character = 4 }, ['end'] = { line = 0, character = 6 } }
  H.record('visible_plain', inline.visible_text({ insertText = 'ea(self):' }, 'def ar', 0, 6, 'utf-16'))
  H.record(
    'visible_ranged',
    inline.visible_text({ insertText = 'area(self):', range = typed }, 'def ar', 0, 6, 'utf-16')
  )
  H.record(
    'visible_mismatch',
    inline.visible_text({ insertText = 'zzz', range = typed }, 'def ar', 0, 6, 'utf-16') or vim.NIL
  )
  H.record('snippet_text', inline.item_text({ insertText = { kind = 'snippet', value = 'x()' } }))

  -- The swarm/status handler of the LSP config stores the status and fires User SwarmStatus.
  local fired = nil
  vim.api.nvim_create_autocmd('User', {
    pattern = 'SwarmStatus',
    callback = function(ev)
      fired = ev.data
    end,
  })
  cfg.handlers['swarm/status'](nil, { state = 'degraded', machines = {}, queueDepth = 5 }, { client_id = 42 })
  H.record('status_event', fired)
  H.record('status_stored', status.short(status.last[42]))

  local commands = require('swarm_lsp.commands')

  -- Ranges for :SwarmRefactor and friends: charwise Visual, linewise Visual, plain line range.
  local buf = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'def f(x):', '    y = x * 2', '    return y + 1', '' })
  vim.cmd('normal! 2G4|vj7|\27')
  H.record('range_charwise', commands.command_range({ line1 = 2, line2 = 3, range = 2 }, buf, 'utf-16'))
  vim.cmd('normal! 1GVj\27')
  H.record('range_linewise', commands.command_range({ line1 = 1, line2 = 2, range = 2 }, buf, 'utf-16'))
  H.record('range_line', commands.command_range({ line1 = 3, line2 = 3, range = 0 }, buf, 'utf-16'))
  local fake_client = { offset_encoding = 'utf-16' }
  local args_by_command = {}
  vim.api.nvim_win_set_cursor(0, { 2, 4 })
  for _, spec in ipairs(commands.CODE_COMMANDS) do
    local a = commands.arguments(spec, { line1 = 3, line2 = 3, range = 1 }, buf, fake_client, 'inline y')
    a[1] = vim.startswith(a[1], 'file://') and 'URI' or a[1]
    args_by_command[spec.server] = a
  end
  H.record('args_by_command', args_by_command)
  H.record('answer', commands.format_answer({
    answer = 'In geometry.py.',
    citations = { { path = 'shapes/geometry.py', line = 19 } },
  }, '/proj'))
  H.record('qflist', vim.fn.getqflist())
  H.record('answer_listing_sources', commands.format_answer({
    answer = 'See shapes/geometry.py:19.',
    citations = { { path = 'shapes/geometry.py', line = 19 } },
  }, '/proj'))
  H.record('describe', {
    explain = commands.describe({ markdown = '**x**', model = 'm' }),
    refactor = commands.describe({ applied = true, summary = 'Refactor: applied', diff = '...' }),
    research = commands.describe({ answer = 'a', citations = { { path = 'p.py', line = 2 } }, markdown = 'm' }, '/r'),
    nothing = commands.describe({ applied = false }) or vim.NIL,
  })
end
