-- :checkhealth diffgem — is the server found, does it load its model (`diffgem-lsp --check`), is it attached?
local M = {}

function M.check()
  local health = vim.health
  health.start('diffgem')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()))
  else
    health.error('Neovim 0.11 or newer is required (vim.lsp.config / vim.lsp.enable)')
    return
  end
  if vim.lsp.inline_completion then
    health.ok('native inline completion (vim.lsp.inline_completion)')
  else
    health.info('Neovim 0.11: ghost text through diffgem extmarks, plus the completion popup')
  end

  local path = require('diffgem').server_path()
  if vim.fn.executable(path) == 0 then
    health.error(('server %q not found or not executable'):format(path), {
      'pip install diffgem-lsp (or `make venv` in the repository)',
      'or require("diffgem").setup({ server_path = "/path/to/diffgem-lsp" })',
    })
    return
  end
  health.ok('server: ' .. vim.fn.exepath(path))

  local version = vim.system({ path, '--version' }, { text = true }):wait(10000)
  if version.code == 0 then
    health.ok(vim.trim(version.stdout ~= '' and version.stdout or version.stderr))
  else
    health.error('`diffgem-lsp --version` failed: ' .. vim.trim(version.stderr or ''))
  end

  local settings = (vim.lsp.config.diffgem or {}).init_options or {}
  local check_cmd = { path, '--check' }
  if type(settings.modelPath) == 'string' and settings.modelPath ~= '' then
    vim.list_extend(check_cmd, { '--model-path', settings.modelPath })
  end
  local check = vim.system(check_cmd, { text = true }):wait(300000)
  local line = vim.trim(check.stdout or '')
  local ok, report = pcall(vim.json.decode, line)
  if check.code == 0 and ok and type(report) == 'table' and report.ok then
    health.ok('model loads: ' .. tostring(report.model))
  else
    local reason = ok and type(report) == 'table' and report.error or (line ~= '' and line or check.stderr)
    health.error('`diffgem-lsp --check` failed: ' .. vim.trim(tostring(reason or ('exit ' .. check.code))))
  end

  local clients = vim.lsp.get_clients({ name = 'diffgem' })
  if #clients > 0 then
    local status = vim.g.diffgem_status
    health.ok(('attached (%d client%s), worker %s'):format(#clients, #clients > 1 and 's' or '', status and status.state or 'state unknown'))
  else
    health.info('not attached to any buffer yet (open a Python, JS/TS, Go or Rust file)')
  end
end

return M
