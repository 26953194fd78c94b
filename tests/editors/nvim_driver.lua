-- Drives a headless Neovim (started with -u editors/nvim/minimal_init.lua) through diffgem and writes
-- what it observed as JSON to $DIFFGEM_NVIM_OUT; tests/editors/test_neovim.py asserts on it.
--   DIFFGEM_NVIM_CASE: "session" (completion, inline completion, ghost text, rewrite) or "startup"
--   (only record notifications: for a bad server path / a server that exits at start), "drafts"
--   (streamDrafts), "actions" (the diffusion-native actions, DIFFGEM_ACTIONS).
--   DIFFGEM_HOLE: "line,col" (0-based line, byte column) of the hole in the opened file.
--   DIFFGEM_REWRITES: JSON list of {text, start = {line, col}, end = {line, col}} (0-based): each text
--   replaces the buffer and "Rewrite selection" runs on that selection.
local out = { notifications = {}, steps = {} }
local function note(step)
  out.steps[#out.steps + 1] = step
end

local orig_notify = vim.notify
vim.notify = function(msg, level, opts)
  out.notifications[#out.notifications + 1] = { msg = msg, level = level or vim.log.levels.INFO }
  return orig_notify(msg, level, opts)
end

local function finish()
  local f = assert(io.open(vim.env.DIFFGEM_NVIM_OUT, 'w'))
  f:write(vim.json.encode(out))
  f:close()
  vim.cmd('qall!')
end

local function lines(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n') .. '\n'
end

-- After a code action started (at changedtick `tick`, `seen` notifications): until the buffer changes or
-- a message other than the progress one ("diffgem: rewriting…", "diffgem: fill the holes…") says why
-- not; then the buffer and the messages since, into `rec`.
local function await_outcome(buf, tick, seen, rec)
  vim.wait(90000, function()
    if vim.b[buf].changedtick ~= tick then
      return true
    end
    for i = seen + 1, #out.notifications do
      if not out.notifications[i].msg:match('…$') then
        return true
      end
    end
    return false
  end, 20)
  vim.wait(200)
  rec.after = lines(buf)
  rec.notifications = vim.list_slice(out.notifications, seen + 1)
end

-- The diffgem client attached to `buf`, once initialised.
local function attached_client(buf)
  local client
  vim.wait(30000, function()
    client = vim.lsp.get_clients({ name = 'diffgem', bufnr = buf })[1]
    return client ~= nil and client.initialized
  end, 20)
  assert(client and client.initialized, 'diffgem client did not initialize')
  return client
end

-- Until the server says its model is ready (diffgem/status).
local function wait_model_ready()
  vim.wait(60000, function()
    return vim.g.diffgem_status and vim.g.diffgem_status.state == 'ready'
  end, 20)
end

local function ready_client(buf)
  local client = attached_client(buf)
  wait_model_ready()
  return client
end

-- streamDrafts on: ghost text requested at the hole; every diffgem/draft the plugin draws is recorded
-- (what the extmarks showed right after it), then the final answer and its acceptance.
local function run_drafts(buf)
  local client = ready_client(buf)
  local ghost = require('diffgem.ghost')
  out.draft_marks = {}
  local draw = ghost.draft
  ghost.draft = function(params)
    draw(params)
    out.draft_marks[#out.draft_marks + 1] = { params_text = params.text, marks = ghost.marks(buf) }
  end
  local hl, hc = vim.env.DIFFGEM_HOLE:match('(%d+),(%d+)')
  vim.o.virtualedit = 'onemore'
  vim.api.nvim_win_set_cursor(0, { tonumber(hl) + 1, tonumber(hc) })
  ghost.request(buf, client.id, 'invoked')
  vim.wait(60000, function()
    return ghost.current(buf) ~= nil
  end, 20)
  out.final_marks = ghost.marks(buf)
  out.ghost = ghost.current(buf) and ghost.current(buf).text or nil
  local before = lines(buf)
  out.ghost_accepted = ghost.accept(buf)
  vim.wait(2000, function()
    return lines(buf) ~= before
  end, 20)
  out.before_accept = before
  out.after_accept = lines(buf)
end

-- Open `file` and run the code action `title` at (line, character) the way `gra` does
-- (vim.lsp.buf.code_action: list, resolve, apply), until the buffer changes or a message explains.
local function run_code_action(spec, rec)
  vim.cmd.edit(vim.fn.fnameescape(spec.file))
  local buf = vim.api.nvim_get_current_buf()
  ready_client(buf)
  rec.before = lines(buf)
  if spec.title == 'Repair syntax' then
    -- The user sees the syntax error first: the server's diagnostic, published on didOpen.
    vim.wait(60000, function()
      return #vim.diagnostic.get(buf) > 0
    end, 20)
    rec.diagnostics = vim.tbl_map(function(d)
      return { lnum = d.lnum, source = d.source, message = d.message }
    end, vim.diagnostic.get(buf))
  end
  vim.api.nvim_win_set_cursor(0, { spec.line + 1, spec.character })
  local tick = vim.b[buf].changedtick
  local seen = #out.notifications
  vim.lsp.buf.code_action({
    apply = true,
    context = { only = { spec.title == 'Repair syntax' and 'quickfix' or 'refactor.rewrite' } },
    filter = function(action)
      return action.title == spec.title
    end,
  })
  await_outcome(buf, tick, seen, rec)
end

-- Open the candidates file, ask at the hole (<M-]>), then cycle through the candidates (<M-]> again)
-- recording each ghost, and accept the second one (<Tab>).
local function run_candidates(spec, rec)
  vim.cmd.edit(vim.fn.fnameescape(spec.file))
  local buf = vim.api.nvim_get_current_buf()
  local client = ready_client(buf)
  rec.before = lines(buf)
  vim.o.virtualedit = 'onemore'
  vim.api.nvim_win_set_cursor(0, { spec.line + 1, spec.character })
  local ghost = require('diffgem.ghost')
  ghost.request(buf, client.id, 'invoked')
  vim.wait(90000, function()
    return ghost.current(buf) ~= nil
  end, 20)
  local first = ghost.current(buf)
  rec.count = first and first.count or 0
  rec.shown = {}
  for i = 1, rec.count + 1 do -- once around, back to the first
    local current = ghost.current(buf)
    rec.shown[#rec.shown + 1] = { text = current.text, index = current.index, marks = ghost.marks(buf) }
    if i <= rec.count then
      rec.cycled = ghost.cycle(buf, 1)
    end
  end
  ghost.cycle(buf, 1) -- the second candidate
  rec.accepted_index = ghost.current(buf).index
  rec.accepted = ghost.accept(buf)
  vim.wait(2000, function()
    return lines(buf) ~= rec.before
  end, 20)
  rec.after = lines(buf)
end

local function run_actions()
  local specs = vim.json.decode(vim.env.DIFFGEM_ACTIONS)
  out.actions = {}
  for _, name in ipairs({ 'holes', 'repair' }) do
    out.actions[name] = {}
    run_code_action(specs[name], out.actions[name])
  end
  out.actions.candidates = {}
  run_candidates(specs.candidates, out.actions.candidates)
end

local function run()
  local buf = vim.api.nvim_get_current_buf()
  out.filetype = vim.bo[buf].filetype
  if vim.env.DIFFGEM_NVIM_CASE == 'startup' then
    vim.wait(8000, function()
      local errors = vim.tbl_filter(function(n)
        return n.level == vim.log.levels.ERROR
      end, out.notifications)
      return #errors > 0 or vim.api.nvim_exec2('messages', { output = true }).output ~= ''
    end, 50)
    vim.wait(1500) -- a crash loop would show up as more messages here
    out.clients = #vim.lsp.get_clients({ name = 'diffgem' })
    out.messages = vim.api.nvim_exec2('messages', { output = true }).output
    return
  end

  if vim.env.DIFFGEM_NVIM_CASE == 'drafts' then
    return run_drafts(buf)
  end
  if vim.env.DIFFGEM_NVIM_CASE == 'actions' then
    return run_actions()
  end

  local t0 = vim.uv.hrtime()
  local function ms()
    return math.floor((vim.uv.hrtime() - t0) / 1e6)
  end
  local client = attached_client(buf)
  out.attached_ms = ms()
  out.server_cmd = client.config.cmd
  out.capabilities = {
    inline = client.server_capabilities.inlineCompletionProvider ~= nil,
    completion = client.server_capabilities.completionProvider ~= nil,
    code_action = client.server_capabilities.codeActionProvider ~= nil,
  }
  wait_model_ready()
  out.status = vim.g.diffgem_status
  out.ready_ms = ms()

  -- Completion and inline completion at the hole.
  local hl, hc = vim.env.DIFFGEM_HOLE:match('(%d+),(%d+)')
  -- A hole at the end of a line is past the last character: allowed in insert mode, and in normal
  -- mode only with virtualedit=onemore (else Neovim clamps the cursor one character left).
  vim.o.virtualedit = 'onemore'
  vim.api.nvim_win_set_cursor(0, { tonumber(hl) + 1, tonumber(hc) })
  out.cursor = vim.api.nvim_win_get_cursor(0)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local resp = vim.lsp.buf_request_sync(buf, 'textDocument/completion', params, 60000)
  local r = resp and resp[client.id]
  out.completion = r and (r.result and (r.result.items or r.result)) or nil
  out.completion_error = r and r.err or nil
  out.completion_ms = ms()

  params.context = { triggerKind = 1 }
  resp = vim.lsp.buf_request_sync(buf, 'textDocument/inlineCompletion', params, 60000)
  r = resp and resp[client.id]
  out.inline = r and (r.result and (r.result.items or r.result)) or nil
  out.inline_error = r and r.err or nil
  out.inline_ms = ms()
  note('inline requested')

  -- Ghost text as a user sees it (0.11: lua/diffgem/ghost.lua), then accept it like <Tab> does.
  local before = lines(buf)
  local ghost = require('diffgem.ghost')
  ghost.request(buf, client.id, 'invoked')
  vim.wait(60000, function()
    return ghost.current(buf) ~= nil
  end, 20)
  local current = ghost.current(buf)
  out.ghost = current and current.text or nil
  out.ghost_extmarks = #vim.api.nvim_buf_get_extmarks(buf, vim.api.nvim_create_namespace('diffgem.ghost'), 0, -1, { details = true })
  out.ghost_accepted = ghost.accept(buf)
  vim.wait(2000, function()
    return lines(buf) ~= before
  end, 20)
  out.after_ghost = lines(buf)
  out.cursor_after_ghost = vim.api.nvim_win_get_cursor(0)
  out.ghost_ms = ms()

  -- Each rewrite sample in turn: replace the text, then "Rewrite selection" through the plugin's
  -- rewrite() (what :DiffgemRewrite and the visual mapping call) on the exact selection.
  vim.o.selection = 'exclusive' -- make_given_range_params then sends the end as given (LSP: exclusive)
  out.rewrites = {}
  for _, sample in ipairs(vim.json.decode(vim.env.DIFFGEM_REWRITES)) do
    local rec = {}
    out.rewrites[#out.rewrites + 1] = rec
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(sample.text:gsub('\n$', ''), '\n'))
    rec.before = lines(buf)
    -- 1-based rows, 0-based byte columns (the samples are ASCII: bytes == UTF-16 code units).
    local range = { start = { sample.start[1] + 1, sample.start[2] }, ['end'] = { sample['end'][1] + 1, sample['end'][2] } }
    local range_params = vim.lsp.util.make_given_range_params(range.start, range['end'], buf, client.offset_encoding)
    rec.range = range_params.range
    range_params.context = { diagnostics = {}, only = { 'refactor.rewrite' } }
    resp = vim.lsp.buf_request_sync(buf, 'textDocument/codeAction', range_params, 10000)
    r = resp and resp[client.id]
    rec.code_actions = r and r.result or nil
    -- What the server answers for that action (tells "the model kept the text" from "not applied").
    if rec.code_actions and rec.code_actions[1] then
      resp = vim.lsp.buf_request_sync(buf, 'codeAction/resolve', rec.code_actions[1], 90000)
      r = resp and resp[client.id]
      rec.resolved = r and r.result or nil
    end
    local tick = vim.b[buf].changedtick
    local seen = #out.notifications
    require('diffgem').rewrite(range)
    -- rewrite() resolves the action and applies its edit, or says why there is none.
    await_outcome(buf, tick, seen, rec)
  end
  out.rewrite_ms = ms()
end

vim.schedule(function()
  local ok, err = xpcall(run, debug.traceback)
  if not ok then
    out.error = err
  end
  finish()
end)
