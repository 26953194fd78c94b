#!/usr/bin/env bash
# Installs code-server 4.99.4 (VS Code 1.99.3; newer ones need Node 24) and playwright-core from npm into
# a cache directory, working around the four traps in ../shared/REFERENCE.md. Idempotent: prints the
# cache directory and exits at once when the install is already there.
#   DIFFGEM_EDITORS_CACHE  cache directory (default ~/.cache/diffgem-editors)
set -euo pipefail

CODE_SERVER_VERSION=4.99.4
PLAYWRIGHT_VERSION=1.65.1
CACHE="${DIFFGEM_EDITORS_CACHE:-$HOME/.cache/diffgem-editors}"
PREFIX="$CACHE/code-server-$CODE_SERVER_VERSION"
STAMP="$PREFIX/.installed"

if [ -f "$STAMP" ] && [ -x "$PREFIX/node_modules/.bin/code-server" ]; then
  echo "$PREFIX"
  exit 0
fi
for tool in npm node rg; do
  command -v "$tool" >/dev/null || { echo "install-code-server: $tool not found (run scripts/install-editor-deps.sh)" >&2; exit 1; }
done

mkdir -p "$PREFIX"
# Trap 1: @vscode/ripgrep downloads rg from GitHub; pre-seed its cache with Debian's rg.
export TMPDIR="$CACHE/tmp"
RG_CACHE="$TMPDIR/vscode-ripgrep-cache-1.15.11"
mkdir -p "$RG_CACHE"
tar czf "$RG_CACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$(dirname "$(command -v rg)")" rg
# Trap 2: every code-server call writes ~/.config/code-server/config.yaml; keep it in the cache.
export XDG_CONFIG_HOME="$CACHE/xdg-config" XDG_DATA_HOME="$CACHE/xdg-data"
# Trap 3: root needs unsafe_perm for install scripts; trap 4: node-pty runs `npx node-gyp` (needs --yes).
# (kerberos builds from source: libkrb5-dev + pkg-config come from install-editor-deps.sh.)
echo "install-code-server: npm install code-server@$CODE_SERVER_VERSION playwright-core@$PLAYWRIGHT_VERSION into $PREFIX" >&2
npm_config_yes=true npm_config_unsafe_perm=true npm install --prefix "$PREFIX" \
  "code-server@$CODE_SERVER_VERSION" "playwright-core@$PLAYWRIGHT_VERSION" \
  --no-audit --no-fund --loglevel=error >&2
"$PREFIX/node_modules/.bin/code-server" --version >&2
touch "$STAMP"
echo "$PREFIX"
