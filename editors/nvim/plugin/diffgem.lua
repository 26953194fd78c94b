-- User commands for diffgem; the LSP client itself starts from require('diffgem').setup().
if vim.g.loaded_diffgem then
  return
end
vim.g.loaded_diffgem = true

vim.api.nvim_create_user_command('DiffgemStatus', function()
  require('diffgem').status()
end, { desc = 'diffgem: worker state and model' })

vim.api.nvim_create_user_command('DiffgemRestart', function()
  require('diffgem').restart()
end, { desc = 'diffgem: restart the model worker (workspace/executeCommand diffgem.restartWorker)' })

vim.api.nvim_create_user_command('DiffgemRewrite', function(args)
  local range
  if args.range > 0 then
    range = { start = { args.line1, 0 }, ['end'] = { args.line2, #vim.fn.getline(args.line2) } }
  end
  require('diffgem').rewrite(range)
end, { range = true, desc = 'diffgem: rewrite the selected lines' })

vim.api.nvim_create_user_command('DiffgemSuggest', function()
  local client = require('diffgem').client(0)
  if client then
    require('diffgem.ghost').request(0, client.id, 'invoked')
  end
end, { desc = 'diffgem: show a suggestion at the cursor (Neovim 0.11 ghost text)' })
