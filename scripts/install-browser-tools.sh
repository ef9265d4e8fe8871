#!/usr/bin/env bash
# Install what the browser tests drive and judge with: Debian's chromium (Playwright
# launches it by path; `playwright install` downloads nothing here) and axe-core from npm
# into .tools/axe. Idempotent: a second run with everything present does nothing. The
# Playwright package itself comes with the dev extra (pyproject.toml). Tests in
# tests/e2e/test_browser.py FAIL when any of these is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q chromium
fi
dest="$root/.tools/axe"
if [ -f "$dest/node_modules/axe-core/axe.min.js" ]; then
  echo "browser tools already installed (chromium, $dest)"
  exit 0
fi
mkdir -p "$dest"
cd "$dest"
[ -f package.json ] || echo '{"name": "ctxvault-browser-tools", "private": true}' > package.json

if [ -x "$root/.tools/mcp/node_modules/node/bin/node" ]; then
  PATH="$root/.tools/mcp/node_modules/node/bin:$PATH"
fi
npm install --no-audit --no-fund --loglevel=error "axe-core@^4"
echo "browser tools installed (chromium, $dest)"
