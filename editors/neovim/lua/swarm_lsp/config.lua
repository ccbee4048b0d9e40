--- Options for require('swarm_lsp').setup{} and how they become a vim.lsp.Config.
local M = {}

---@class swarm_lsp.InlineOptions
---@field enabled boolean show inline (ghost-text) completions
---@field debounce_ms integer wait this long after typing before asking (0.11 fallback)
---@field accept string|false insert-mode key that accepts the suggestion
---@field dismiss string|false insert-mode key that hides the suggestion (0.11 fallback)

---@class swarm_lsp.Options
---@field cmd? string[] full server command; default { 'swarm-lsp', 'serve' }
---@field python? string interpreter with swarm-lsp installed: runs `python -m swarm_lsp.cli serve`
---@field args string[] extra arguments after `serve`
---@field filetypes? string[] replaces the filetypes in lsp/swarm_lsp.lua
---@field settings table server settings: { models = {}, context = {}, swarm = {}, research = {} }
---@field inline swarm_lsp.InlineOptions
---@field completion { autotrigger: boolean } use Neovim's built-in LSP completion as you type
---@field chat { open: 'vsplit'|'split'|'tab'|'current' } where :SwarmChat opens its buffer
---@field enable boolean call vim.lsp.enable('swarm_lsp') in setup()

---@type swarm_lsp.Options
M.defaults = {
  cmd = nil,
  python = nil,
  args = {},
  filetypes = nil,
  settings = {},
  inline = { enabled = true, debounce_ms = 150, accept = '<M-l>', dismiss = '<M-h>' },
  completion = { autotrigger = false },
  chat = { open = 'vsplit' },
  enable = true,
}

---@type swarm_lsp.Options
M.options = vim.deepcopy(M.defaults)

local SECTIONS = { models = true, context = true, swarm = true, research = true }

--- Check user options; returns (ok, message).
---@param opts table
---@return boolean, string?
function M.validate(opts)
  return pcall(function()
    vim.validate('cmd', opts.cmd, 'table', true)
    vim.validate('python', opts.python, 'string', true)
    vim.validate('args', opts.args, 'table', true)
    vim.validate('filetypes', opts.filetypes, 'table', true)
    vim.validate('settings', opts.settings, 'table', true)
    vim.validate('inline', opts.inline, 'table', true)
    vim.validate('completion', opts.completion, 'table', true)
    vim.validate('chat', opts.chat, 'table', true)
    vim.validate('enable', opts.enable, 'boolean', true)
    for key in pairs(opts.settings or {}) do
      if not SECTIONS[key] then
        error(('settings.%s: unknown section (expected models, context, swarm or research)'):format(key))
      end
    end
    if opts.chat and opts.chat.open then
      local allowed = { vsplit = true, split = true, tab = true, current = true }
      if not allowed[opts.chat.open] then
        error(('chat.open: expected vsplit, split, tab or current, got %s'):format(opts.chat.open))
      end
    end
  end)
end

--- Merge user options over the defaults. Lists (cmd, args, filetypes) are replaced, not merged.
---@param opts? table
---@return swarm_lsp.Options
function M.resolve(opts)
  opts = opts or {}
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  for _, list in ipairs({ 'cmd', 'args', 'filetypes' }) do
    if opts[list] ~= nil then
      merged[list] = vim.deepcopy(opts[list])
    end
  end
  return merged
end

--- Apply options; returns them. Raises with a readable message on bad options.
---@param opts? table
---@return swarm_lsp.Options
function M.setup(opts)
  local ok, err = M.validate(opts or {})
  if not ok then
    error('swarm_lsp.setup: ' .. tostring(err), 2)
  end
  M.options = M.resolve(opts)
  return M.options
end

--- The server command line for these options.
---@param options? swarm_lsp.Options
---@return string[]
function M.server_cmd(options)
  options = options or M.options
  local cmd
  if options.cmd then
    cmd = vim.deepcopy(options.cmd)
  elseif options.python then
    cmd = { options.python, '-m', 'swarm_lsp.cli', 'serve' }
  else
    cmd = { 'swarm-lsp', 'serve' }
  end
  vim.list_extend(cmd, options.args or {})
  return cmd
end

--- Overrides for vim.lsp.config('swarm_lsp', ...): only what the options change.
---@param options? swarm_lsp.Options
---@return vim.lsp.Config
function M.lsp_overrides(options)
  options = options or M.options
  local overrides = { cmd = M.server_cmd(options) }
  if options.filetypes then
    overrides.filetypes = vim.deepcopy(options.filetypes)
  end
  if next(options.settings or {}) ~= nil then
    overrides.init_options = vim.deepcopy(options.settings)
    -- workspace/configuration for section "swarm", and the didChangeConfiguration Neovim sends
    -- after initialize, carry the same object.
    overrides.settings = { swarm = vim.deepcopy(options.settings) }
  end
  return overrides
end

return M
