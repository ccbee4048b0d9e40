-- swarm-lsp: a strictly local AI coding assistant (completions, inline completions, chat, and
-- refactor / research / test work on a swarm of machines you own).
--
-- Enable with `vim.lsp.enable('swarm_lsp')`, or `require('swarm_lsp').setup{}` which also
-- applies your options. Override any field with `vim.lsp.config('swarm_lsp', { ... })`.

---@type vim.lsp.Config
return {
  cmd = { 'swarm-lsp', 'serve' },
  filetypes = {
    'c',
    'cpp',
    'cs',
    'go',
    'java',
    'javascript',
    'javascriptreact',
    'kotlin',
    'lua',
    'php',
    'python',
    'ruby',
    'rust',
    'sh',
    'swift',
    'typescript',
    'typescriptreact',
    'zig',
  },
  -- swarm.toml marks a project configured for swarm-lsp; otherwise the usual VCS / project
  -- roots. With none of them the server still starts, for the single file.
  root_markers = {
    { 'swarm.toml' },
    { '.git', '.hg', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod' },
  },
  -- initializationOptions: { models = {...}, context = {...}, swarm = {...}, research = {...} }
  -- with camelCase keys, e.g. { models = { completionMaxTokens = 32 } }. Sent only when set, so
  -- the server's defaults and swarm.toml apply otherwise.
  init_options = vim.empty_dict(),
  capabilities = {
    textDocument = {
      -- LSP 3.18; Neovim 0.11 does not advertise it itself. The plugin shows the suggestions
      -- (natively on 0.12+, as virtual text on 0.11).
      inlineCompletion = { dynamicRegistration = false },
    },
    window = { workDoneProgress = true },
  },
  handlers = {
    -- Chat and ask answers stream as `$/progress` deltas on tokens the plugin created; the
    -- plugin takes those and passes every other progress message to Neovim's handler.
    ['$/progress'] = function(err, params, ctx, config)
      return require('swarm_lsp.progress').handler(err, params, ctx, config)
    end,
    ['swarm/status'] = function(_, params, ctx)
      require('swarm_lsp.status').on_notification(params, ctx)
    end,
    -- Commands that start swarm work answer at once; their results arrive here.
    ['swarm/result'] = function(_, params)
      require('swarm_lsp.client').on_result(params)
    end,
  },
}
