-- diffgem-lsp for Neovim 0.11+: `vim.lsp.enable('diffgem')` with this directory on 'runtimepath'.
-- Standalone: works without lua/diffgem (which adds inline completion, commands and keymaps).
--
-- The server is found, in order: vim.g.diffgem_server_path, a .venv/bin/diffgem-lsp above the
-- current directory, then `diffgem-lsp` on PATH.

local function server_path()
  local configured = vim.g.diffgem_server_path
  if type(configured) == 'string' and configured ~= '' then
    return vim.fs.normalize(configured)
  end
  local venv = vim.fs.find('.venv', { upward = true, type = 'directory', path = vim.fn.getcwd() })[1]
  if venv and vim.fn.executable(venv .. '/bin/diffgem-lsp') == 1 then
    return venv .. '/bin/diffgem-lsp'
  end
  return 'diffgem-lsp'
end

---@type vim.lsp.Config
return {
  cmd = { server_path() },
  -- Neovim sends the filetype as the LSP languageId; these are the ids the server has grammars for.
  filetypes = { 'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust' },
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml' },
  -- Server settings (camelCase, see editors/README.md); unknown keys get one message from the server.
  init_options = vim.g.diffgem_settings, -- nil or a non-empty table ({} would encode as a JSON array)
  handlers = {
    -- Worker state: loading / ready / generating / error. Kept per client and re-broadcast as a
    -- `User DiffgemStatus` autocommand so statuslines and lua/diffgem can follow it.
    ['diffgem/status'] = function(_, params, ctx)
      vim.g.diffgem_status = params
      if params and params.state == 'error' then
        vim.notify('diffgem: ' .. (params.message or 'worker error'), vim.log.levels.ERROR)
      end
      vim.api.nvim_exec_autocmds('User', { pattern = 'DiffgemStatus', data = { client_id = ctx.client_id, status = params } })
      -- A statusline is only re-evaluated on a redraw; without this it stayed blank after the model
      -- loaded, and on "generating" after the answer, until the next keystroke.
      vim.cmd.redrawstatus({ bang = true })
    end,
    -- Intermediate canvases while the model denoises (server setting streamDrafts): drawn as dimmed
    -- ghost text by lua/diffgem/ghost.lua (0.11) when the plugin is loaded.
    ['diffgem/draft'] = function(_, params)
      local ok, ghost = pcall(require, 'diffgem.ghost')
      if ok then
        ghost.draft(params)
      end
    end,
  },
  on_exit = function(code, signal)
    -- A server that dies at start is reported once; Neovim does not restart it (no crash loop).
    if code ~= 0 then
      vim.schedule(function()
        vim.notify(
          ('diffgem: server exited (code %d, signal %d); see :checkhealth diffgem and :LspLog'):format(code, signal),
          vim.log.levels.ERROR
        )
      end)
    end
  end,
}
