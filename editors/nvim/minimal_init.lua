-- Minimal Neovim init for trying diffgem from the repository (`make nvim`) and for the end-to-end test:
--   nvim -u editors/nvim/minimal_init.lua some_file.py
-- Environment: DIFFGEM_LSP (server path; default <repo>/.venv/bin/diffgem-lsp),
--              DIFFGEM_SETTINGS (JSON object of server settings, optional).
local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
local repo = vim.fs.dirname(vim.fs.dirname(here))
vim.opt.runtimepath:prepend(here)
vim.opt.swapfile = false
vim.opt.shadafile = 'NONE'
vim.opt.number = true
vim.opt.signcolumn = 'yes'
vim.opt.completeopt = { 'menuone', 'noinsert', 'popup' }
vim.opt.statusline = "%f %m%=%{v:lua.require'diffgem'.statusline()}  %l:%c "
vim.g.mapleader = ' '

local settings = {}
if vim.env.DIFFGEM_SETTINGS and vim.env.DIFFGEM_SETTINGS ~= '' then
  settings = vim.json.decode(vim.env.DIFFGEM_SETTINGS)
end

require('diffgem').setup({
  server_path = vim.env.DIFFGEM_LSP or (repo .. '/.venv/bin/diffgem-lsp'),
  settings = settings,
  auto_ghost = vim.env.DIFFGEM_AUTO_GHOST == '1',
})
