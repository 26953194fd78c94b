-- Ghost text for Neovim 0.11, which has no vim.lsp.inline_completion: asks the server for
-- textDocument/inlineCompletion and shows the first item as an inline extmark; accept() inserts it,
-- cycle() shows the next candidate (an invoked request returns up to the `candidates` setting).
-- On 0.12+ lua/diffgem/init.lua uses the native client instead and this module stays unused.
local M = {}

local ns = vim.api.nvim_create_namespace('diffgem.ghost')

-- Ghost text needs its own group: `Comment` in Neovim's default colorscheme has only a gui colour, so
-- without 'termguicolors' (tmux-256color, plain xterm) a ghost looked exactly like real code. cterm 244
-- is a mid grey of the xterm-256 palette, readable on dark and light backgrounds; `default = true` lets
-- a colorscheme or the user override both. DiffgemDraft is the uncommitted canvas while the model is
-- still denoising (streamDrafts): dimmer, so the settled suggestion stands out when it arrives.
function M.define_highlights()
  vim.api.nvim_set_hl(0, 'DiffgemGhost', {
    default = true,
    fg = '#8a8a8a',
    ctermfg = 244,
    italic = true,
    cterm = { italic = true },
  })
  vim.api.nvim_set_hl(0, 'DiffgemDraft', {
    default = true,
    fg = '#5f5f5f',
    ctermfg = 240,
    italic = true,
    cterm = { italic = true },
  })
end
M.define_highlights()
vim.api.nvim_create_autocmd('ColorScheme', {
  group = vim.api.nvim_create_augroup('diffgem.ghost.highlights', { clear = true }),
  callback = M.define_highlights, -- `:colorscheme` clears all groups first
})
-- bufnr -> { item = InlineCompletionItem, row = 0-based, col = byte col, changedtick = n,
--           items = every candidate of the answer, index = the one shown }
local shown = {}
-- bufnr -> pending request cancel function
local pending = {}
-- bufnr -> where the pending request asked: { line, character (LSP), row, col (byte), changedtick }
local requested = {}

local function item_text(item)
  local text = item.insertText
  if type(text) == 'table' then -- StringValue (snippet): show and insert its text as is
    text = text.value
  end
  return text or ''
end

function M.clear(bufnr)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  if pending[bufnr] then
    pending[bufnr]()
    pending[bufnr] = nil
  end
  requested[bufnr] = nil
  shown[bufnr] = nil
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
end

--- The suggestion currently displayed in the buffer, if any (for tests and statuslines).
function M.current(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local s = shown[bufnr]
  return s and { text = item_text(s.item), item = s.item, index = s.index, count = #s.items } or nil
end

--- Draw `item` as ghost text at (row, col); a draft (an uncommitted canvas) is drawn but not accepted.
--- `items`/`index`: all the answer's candidates and which one `item` is (for cycle()).
local function show(bufnr, item, row, col, draft, items, index)
  local hl = draft and 'DiffgemDraft' or 'DiffgemGhost'
  local text = item_text(item)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  -- What the ghost adds after the cursor: an item whose range starts before the cursor repeats the
  -- typed part, which is not shown again.
  if item.range then
    local start_col = vim.str_byteindex(line, 'utf-16', item.range.start.character, false)
    local typed = line:sub(start_col + 1, col)
    if vim.startswith(text, typed) then
      text = text:sub(#typed + 1)
    end
  end
  if text == '' then
    if draft then
      vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
    end
    return
  end
  local lines = vim.split(text, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], hl } }
  end
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  vim.api.nvim_buf_set_extmark(bufnr, ns, row, col, {
    virt_text = { { lines[1], hl } },
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
  if not draft then
    shown[bufnr] = {
      item = item,
      row = row,
      col = col,
      changedtick = vim.b[bufnr].changedtick,
      items = items or { item },
      index = index or 1,
    }
  end
end

--- A diffgem/draft notification (streamDrafts on): the canvas of the running request, drawn dimmed
--- where the suggestion will appear, so the user watches it settle. Drafts of another position or of
--- an edited buffer are stale and ignored; the final answer replaces the draft.
function M.draft(params)
  local bufnr = params and params.uri and vim.uri_to_bufnr(params.uri)
  local r = bufnr and requested[bufnr]
  if not r or r.line ~= params.line or r.character ~= params.character then
    return
  end
  if vim.b[bufnr].changedtick ~= r.changedtick or type(params.text) ~= 'string' then
    return
  end
  show(bufnr, { insertText = params.text }, r.row, r.col, true)
  M.drafts_shown = (M.drafts_shown or 0) + 1
end

--- The extmarks currently drawn (for tests): { { text = first line, hl = group } }.
function M.marks(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local found = {}
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
    local chunk = mark[4].virt_text and mark[4].virt_text[1]
    if chunk then
      found[#found + 1] = { text = chunk[1], hl = chunk[2] }
    end
  end
  return found
end

--- Ask the server for a suggestion at the cursor; `kind` is 'invoked' or 'automatic'.
function M.request(bufnr, client_id, kind)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local client = vim.lsp.get_client_by_id(client_id)
  if not client then
    return
  end
  M.clear(bufnr)
  local win = vim.api.nvim_get_current_win()
  local params = vim.lsp.util.make_position_params(win, client.offset_encoding)
  params.context = { triggerKind = kind == 'automatic' and 2 or 1 }
  local row, col = unpack(vim.api.nvim_win_get_cursor(win))
  local tick = vim.b[bufnr].changedtick
  local ask = { line = params.position.line, character = params.position.character, row = row - 1, col = col, changedtick = tick }
  requested[bufnr] = ask
  local ok, id = client:request('textDocument/inlineCompletion', params, function(err, result)
    pending[bufnr] = nil
    if requested[bufnr] == ask then
      requested[bufnr] = nil
    end
    if err or not result or vim.b[bufnr].changedtick ~= tick then
      if vim.api.nvim_buf_is_valid(bufnr) and not shown[bufnr] then
        vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1) -- a draft without an answer
      end
      return
    end
    local items = result.items or result
    -- An automatic suggestion that arrives after the user left insert mode is stale.
    local inserting = vim.api.nvim_get_mode().mode:sub(1, 1) == 'i'
    if items[1] and (kind ~= 'automatic' or inserting) then
      show(bufnr, items[1], row - 1, col, false, items, 1)
    elseif not shown[bufnr] then
      vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1) -- drafts of an empty answer
    end
  end, bufnr)
  if ok then
    pending[bufnr] = function()
      client:cancel_request(id)
    end
  end
end

--- Show the next (step 1) or previous (-1) candidate of the displayed answer, wrapping around, like
--- VS Code's Alt+] / Alt+[. Returns false when no ghost with several candidates is shown (so a keymap
--- can ask for a suggestion instead).
function M.cycle(bufnr, step)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local s = shown[bufnr]
  if not s or #s.items < 2 or s.changedtick ~= vim.b[bufnr].changedtick then
    return false
  end
  local index = (s.index - 1 + (step or 1)) % #s.items + 1
  show(bufnr, s.items[index], s.row, s.col, false, s.items, index)
  return true
end

--- Insert the displayed suggestion; returns false when there is none (so a keymap can fall through).
function M.accept(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local s = shown[bufnr]
  if not s or s.changedtick ~= vim.b[bufnr].changedtick then
    M.clear(bufnr)
    return false
  end
  local client = vim.lsp.get_clients({ name = 'diffgem', bufnr = bufnr })[1]
  local encoding = client and client.offset_encoding or 'utf-16'
  local text = item_text(s.item)
  local range = s.item.range
  local line = vim.api.nvim_buf_get_lines(bufnr, s.row, s.row + 1, false)[1] or ''
  local cursor_char = vim.str_utfindex(line, encoding, s.col, false)
  if not range then
    range = {
      start = { line = s.row, character = cursor_char },
      ['end'] = { line = s.row, character = cursor_char },
    }
  end
  M.clear(bufnr)
  -- Schedule: an <expr> keymap may not change the buffer itself.
  vim.schedule(function()
    vim.lsp.util.apply_text_edits({ { range = range, newText = text } }, bufnr, encoding)
    -- Cursor to the end of the inserted text.
    local lines = vim.split(text, '\n', { plain = true })
    local end_row = range.start.line + #lines - 1
    local end_line = vim.api.nvim_buf_get_lines(bufnr, end_row, end_row + 1, false)[1] or ''
    local end_col
    if #lines == 1 then
      local start_byte = vim.str_byteindex(end_line, encoding, range.start.character, false)
      end_col = start_byte + #lines[1]
    else
      end_col = #lines[#lines]
    end
    if vim.api.nvim_get_current_buf() == bufnr then
      vim.api.nvim_win_set_cursor(0, { end_row + 1, math.min(end_col, #end_line) })
    end
  end)
  return true
end

--- Keep the ghost in sync with typing; with opts.auto, ask after each change in insert mode.
function M.attach(bufnr, client_id, opts)
  local group = vim.api.nvim_create_augroup('diffgem.ghost.' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd('TextChangedI', {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
      if opts and opts.auto then
        M.request(bufnr, client_id, 'automatic') -- the server debounces automatic requests
      end
    end,
  })
  vim.api.nvim_create_autocmd('LspDetach', {
    group = group,
    buffer = bufnr,
    callback = function(args)
      if args.data.client_id == client_id then
        M.clear(bufnr)
        vim.api.nvim_del_augroup_by_id(group)
      end
    end,
  })
end

return M
