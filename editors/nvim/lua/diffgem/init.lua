-- diffgem for Neovim: setup() enables the `diffgem` LSP config (lsp/diffgem.lua) and wires the editor side:
-- inline completion (0.12+ native, 0.11 via lua/diffgem/ghost.lua), completion popup, commands, keymaps.
local M = {}

local defaults = {
  -- Path to diffgem-lsp; nil = vim.g.diffgem_server_path, .venv/bin/diffgem-lsp above cwd, PATH.
  server_path = nil,
  -- Server settings passed as initializationOptions (camelCase keys, see editors/README.md).
  settings = {},
  -- Inline (ghost text) completion: native vim.lsp.inline_completion on 0.12+, extmarks on 0.11.
  inline = true,
  -- 0.11 ghost text: ask as you type (after the server's debounce) instead of only on the keymap.
  auto_ghost = false,
  -- Completion popup through vim.lsp.completion (0.11 fallback, also useful on 0.12).
  completion = true,
  -- Suggested keymaps; set to false to define your own (see editors/README.md).
  keymaps = {
    accept = '<Tab>', -- insert mode: accept the ghost text (falls through to <Tab> otherwise)
    suggest = '<M-]>', -- insert mode: ask for a suggestion now; again: the next candidate
    dismiss = '<M-[>', -- insert mode: dismiss it
    complete = '<C-Space>', -- insert mode: completion popup
    rewrite = '<leader>dr', -- visual mode: "Rewrite selection"
    instruct = '<leader>di', -- visual mode: "Rewrite selection…" (asks for an instruction; chat models)
  },
}

M.config = vim.deepcopy(defaults)

--- The current worker state as a short string for a statusline, e.g. "diffgem: ready".
function M.statusline()
  local status = vim.g.diffgem_status
  if not status then
    return ''
  end
  return 'diffgem: ' .. (status.state or '?')
end

function M.client(bufnr)
  return vim.lsp.get_clients({ name = 'diffgem', bufnr = bufnr })[1]
end

--- Resolved server command (same order as lsp/diffgem.lua).
function M.server_path()
  if M.config.server_path then
    return vim.fs.normalize(M.config.server_path)
  end
  local cfg = vim.lsp.config.diffgem
  return cfg and cfg.cmd and cfg.cmd[1] or 'diffgem-lsp'
end

local function execute(command, on_result)
  local client = M.client()
  if not client then
    vim.notify('diffgem: the server is not running in this buffer', vim.log.levels.WARN)
    return
  end
  client:exec_cmd({ title = command, command = command, arguments = {} }, { bufnr = 0 }, function(err, result)
    if err then
      vim.notify(('diffgem: %s failed: %s'):format(command, err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif on_result then
      on_result(result)
    end
  end)
end

function M.status()
  execute('diffgem.status', function(result)
    local last = vim.g.diffgem_status or {}
    local state = result and result.state or last.state or '?'
    local model = result and result.model or last.model or '?'
    local detail = last.message and last.message ~= '' and last.message ~= model and (' (' .. last.message .. ')') or ''
    vim.notify(('diffgem: %s, model %s%s'):format(state, model, detail))
  end)
end

function M.restart()
  vim.notify('diffgem: restarting the model worker')
  execute('diffgem.restartWorker', function(result)
    vim.notify('diffgem: worker ' .. ((result and result.state) or 'restarted'))
  end)
end

--- textDocument/codeAction params for the visual selection, or `range` ({start={row,col},
--- ['end']={row,col}}, 1-based rows, 0-based byte columns), or the cursor; leaves visual mode.
local function selection_params(client, bufnr, range)
  local params
  if range then
    params = vim.lsp.util.make_given_range_params(range.start, range['end'], bufnr, client.offset_encoding)
  else
    local mode = vim.api.nvim_get_mode().mode
    if mode == 'v' or mode == 'V' or mode == '\22' then
      local a, b = vim.fn.getpos('v'), vim.fn.getpos('.')
      if a[2] > b[2] or (a[2] == b[2] and a[3] > b[3]) then
        a, b = b, a
      end
      local last = vim.fn.getline(b[2])
      -- make_given_range_params takes the last selected column (0-based, inclusive) and adds one
      -- (runtime/lua/vim/lsp/util.lua): pass the last byte of the last character, not the one after.
      local char = vim.fn.strcharpart(last:sub(b[3]), 0, 1)
      local end_col = mode == 'V' and #last or math.max(b[3] - 2 + #char, a[3] - 1)
      params = vim.lsp.util.make_given_range_params({ a[2], mode == 'V' and 0 or a[3] - 1 }, { b[2], end_col }, bufnr, client.offset_encoding)
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<Esc>', true, false, true), 'n', false)
    else
      params = vim.lsp.util.make_range_params(0, client.offset_encoding)
    end
  end
  params.context = { diagnostics = {}, only = { 'refactor.rewrite' } }
  return params
end

--- Ask the server for its rewrite actions on the visual selection (or `range`); call
--- `on_actions(client, bufnr, err, find)`, where find(pred) is the first action pred accepts.
local function with_rewrite_actions(range, on_actions)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    vim.notify('diffgem: the server is not running in this buffer', vim.log.levels.WARN)
    return
  end
  local params = selection_params(client, bufnr, range)
  client:request('textDocument/codeAction', params, function(err, actions)
    local function find(pred)
      return not err and actions and vim.iter(actions):find(pred) or nil
    end
    on_actions(client, bufnr, err, find)
  end, bufnr)
end

--- Run "Rewrite selection" on the visual selection (or `range`, as selection_params reads it) and apply
--- the edit. Unlike a bare vim.lsp.buf.code_action(), this tells the user when the model kept the text
--- as it is (the server answers with a disabled action).
function M.rewrite(range)
  with_rewrite_actions(range, function(client, bufnr, err, find)
    local action = find(function(a)
      return a.title == 'Rewrite selection'
    end)
    if not action then
      vim.notify('diffgem: nothing to rewrite here' .. (err and (': ' .. err.message) or ''), vim.log.levels.WARN)
      return
    end
    -- The client's request wrapper (explain_resolve below) says "rewriting…" and, when the server
    -- keeps the text, why; here only the edit is applied.
    client:request('codeAction/resolve', action, function(rerr, resolved)
      if rerr then
        return
      elseif resolved and resolved.edit then
        vim.lsp.util.apply_workspace_edit(resolved.edit, client.offset_encoding)
      elseif resolved and resolved.command then
        client:exec_cmd(resolved.command, { bufnr = bufnr })
      end
    end, bufnr)
  end)
end

local INSTRUCTION_COMMAND = 'diffgem.rewriteWithInstruction'
local INSTRUCTION_TITLE = 'Rewrite selection…'

--- Ask for the instruction (vim.ui.input) and run the server's command on `target` ({uri, range,
--- version}) with it. The server applies the edit (workspace/applyEdit) or shows why not; an empty
--- answer or <Esc> cancels. Sent as a request: client:exec_cmd would come back to the handler below.
local function ask_instruction(client, bufnr, target)
  vim.ui.input({ prompt = 'diffgem instruction: ' }, function(instruction)
    if not instruction or vim.trim(instruction) == '' then
      return
    end
    vim.cmd.redraw()
    vim.notify('diffgem: rewriting…')
    local args = vim.tbl_extend('force', target, { instruction = instruction })
    client:request('workspace/executeCommand', { command = INSTRUCTION_COMMAND, arguments = { args } }, function(err)
      if err then
        vim.notify('diffgem: rewrite failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      end
    end, bufnr)
  end)
end

--- "Rewrite selection…" picked in `gra` (vim.lsp.buf.code_action runs the action's command): the
--- server lists it only for a model that follows instructions and a client that set the
--- `instructionPrompt` capability (setup() below), and leaves the asking to the editor.
local function instruction_command(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  local target = command.arguments and command.arguments[1]
  if client and type(target) == 'table' then
    ask_instruction(client, ctx.bufnr, target)
  end
end

--- "Rewrite selection…" on the visual selection (or `range`): ask for an instruction and rewrite the
--- selection as it says. Only for a model that follows instructions (a chat checkpoint); otherwise
--- the server does not offer it and this says so.
function M.rewrite_with_instruction(range)
  with_rewrite_actions(range, function(client, bufnr, err, find)
    local action = find(function(a)
      return a.title == INSTRUCTION_TITLE and type(a.command) == 'table'
    end)
    if action then
      ask_instruction(client, bufnr, action.command.arguments[1])
    elseif err then
      vim.notify('diffgem: nothing to rewrite here: ' .. err.message, vim.log.levels.WARN)
    elseif vim.g.diffgem_status and vim.g.diffgem_status.instructions == false then
      vim.notify('diffgem: this model does not take instructions: use Rewrite selection', vim.log.levels.WARN)
    else
      vim.notify('diffgem: nothing to rewrite here', vim.log.levels.WARN)
    end
  end)
end

--- The message for a resolved "Rewrite selection" that carries no edit: the server's reason (the same
--- words in every editor, e.g. "the model kept the selection as it is").
function M.rewrite_outcome(resolved)
  local reason = resolved and resolved.disabled and resolved.disabled.reason
  return 'diffgem: ' .. (reason or 'the model kept the selection as it is')
end

-- Neovim 0.11's code-action client (`gra`, vim.lsp.buf.code_action) resolves the picked action and
-- applies `edit`/`command`; an action the server answers with `disabled` (the model kept the text, or
-- its rewrite was dropped) is silently ignored there (runtime/lua/vim/lsp/buf.lua, on_user_choice). So
-- every codeAction/resolve of this client goes through here: "rewriting…" when it starts, the server's
-- reason when it ends without an edit, the error when it fails. The caller's handler still runs.
local function explain_resolve(client)
  if client._diffgem_explains then
    return
  end
  client._diffgem_explains = true
  local request = client.request
  client.request = function(self, method, params, handler, bufnr)
    -- A command-only action ("Rewrite selection…") resolves to itself: no model run, nothing to say.
    if method ~= 'codeAction/resolve' or type(params) ~= 'table' or type(params.title) ~= 'string' or params.data == nil then
      return request(self, method, params, handler, bufnr)
    end
    -- After `gra`'s inputlist the message area still holds the menu: redraw first, or this line
    -- would stack under it behind a hit-enter prompt (which also holds back the answer's message).
    vim.cmd.redraw()
    -- Every diffgem action runs the model on resolve ("Rewrite selection", "Fill the holes", ...).
    vim.notify(params.title == 'Rewrite selection' and 'diffgem: rewriting…' or ('diffgem: ' .. params.title:lower() .. '…'))
    return request(self, method, params, function(err, result, ctx, config)
      if err then
        vim.notify('diffgem: rewrite failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      elseif not (result and (result.edit or result.command)) then
        vim.notify(M.rewrite_outcome(result))
      end
      if handler then
        return handler(err, result, ctx, config)
      end
    end, bufnr)
  end
end

--- Completion items' documentation is the fill itself; the popup's preview shows `info` as raw text,
--- so a markdown code fence would appear literally around it (vim.lsp.completion get_doc()).
local function plain_preview(item)
  local doc = item.documentation
  local text = type(doc) == 'table' and doc.value or doc
  if type(text) ~= 'string' then
    return {}
  end
  local fenced = text:match('^```[%w_+-]*\n(.*)\n```%s*$')
  return { info = fenced or text }
end

local function set_keymaps(client, bufnr)
  local keys = M.config.keymaps
  if not keys then
    return
  end
  local ghost = require('diffgem.ghost')
  local native = vim.lsp.inline_completion ~= nil
  if keys.accept then
    vim.keymap.set('i', keys.accept, function()
      if native then
        if vim.lsp.inline_completion.get() then
          return ''
        end
      elseif ghost.accept(bufnr) then
        return ''
      end
      return vim.api.nvim_replace_termcodes(keys.accept, true, false, true)
    end, { buffer = bufnr, expr = true, desc = 'diffgem: accept suggestion' })
  end
  if keys.suggest then
    vim.keymap.set('i', keys.suggest, function()
      if native then
        vim.lsp.inline_completion.select({ count = 1 })
      elseif not ghost.cycle(bufnr, 1) then
        ghost.request(bufnr, client.id, 'invoked')
      end
    end, { buffer = bufnr, desc = 'diffgem: suggest, or the next candidate' })
  end
  if keys.dismiss and not native then
    vim.keymap.set('i', keys.dismiss, function()
      ghost.clear(bufnr)
    end, { buffer = bufnr, desc = 'diffgem: dismiss suggestion' })
  end
  if keys.complete and M.config.completion then
    vim.keymap.set('i', keys.complete, vim.lsp.completion.get, { buffer = bufnr, desc = 'diffgem: completion popup' })
  end
  if keys.rewrite then
    vim.keymap.set('x', keys.rewrite, function()
      M.rewrite()
    end, { buffer = bufnr, desc = 'diffgem: rewrite selection' })
  end
  if keys.instruct then
    vim.keymap.set('x', keys.instruct, function()
      M.rewrite_with_instruction()
    end, { buffer = bufnr, desc = 'diffgem: rewrite selection with an instruction' })
  end
end

local function on_attach(client, bufnr)
  if M.config.inline then
    if vim.lsp.inline_completion then -- Neovim 0.12+
      vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    else
      require('diffgem.ghost').attach(bufnr, client.id, { auto = M.config.auto_ghost })
    end
  end
  if M.config.completion then
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = false, convert = plain_preview })
  end
  explain_resolve(client)
  set_keymaps(client, bufnr)
end

function M.setup(opts)
  if vim.fn.has('nvim-0.11') == 0 then
    vim.notify('diffgem: needs Neovim 0.11 or newer', vim.log.levels.ERROR)
    return
  end
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  if opts and opts.keymaps == false then
    M.config.keymaps = false
  end
  if M.config.server_path then
    vim.g.diffgem_server_path = M.config.server_path
    vim.lsp.config('diffgem', { cmd = { vim.fs.normalize(M.config.server_path) } })
  end
  -- "Rewrite selection…": this client asks for the instruction (capabilities.experimental, read by the
  -- server's diffgem_lsp/instructions.py) and answers the action's command itself.
  vim.lsp.config('diffgem', {
    capabilities = { experimental = { diffgem = { instructionPrompt = true } } },
    commands = { [INSTRUCTION_COMMAND] = instruction_command },
  })
  if next(M.config.settings) ~= nil then -- an empty table would reach the server as a JSON array
    vim.lsp.config('diffgem', { init_options = M.config.settings })
  end

  -- One clear message instead of an error every time a buffer opens.
  local path = M.server_path()
  if vim.fn.executable(path) == 0 then
    vim.notify(
      ('diffgem: server %q not found or not executable; set server_path in require("diffgem").setup() '
        .. 'or install diffgem-lsp (see :checkhealth diffgem)'):format(path),
      vim.log.levels.ERROR
    )
    return
  end

  local group = vim.api.nvim_create_augroup('diffgem', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == 'diffgem' then
        on_attach(client, args.buf)
      end
    end,
  })
  vim.lsp.enable('diffgem')
end

return M
