-- init.lua for the headless tests: the plugin from this checkout on the runtimepath, nothing
-- from the user's configuration (nvim runs with --clean and isolated XDG folders).
local plugin = assert(vim.env.SWARM_TEST_PLUGIN, 'SWARM_TEST_PLUGIN is not set')
vim.opt.runtimepath:prepend(plugin)
package.path = vim.env.SWARM_TEST_LUA .. '/?.lua;' .. package.path
vim.o.swapfile = false
vim.o.shada = ''
vim.o.more = false
vim.lsp.log.set_level(vim.env.SWARM_TEST_LSP_LOG or vim.log.levels.WARN)
