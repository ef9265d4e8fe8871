#!/usr/bin/env bash
# Install the external MCP checkers (Node 22, MCP Inspector CLI, conformance suite) into .tools/.
# Idempotent: a second run with everything present does nothing. Tests in tests/e2e/ that
# need these FAIL when they are missing; run this script first (CI: .ci/run calls it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.tools/mcp"
mkdir -p "$dest"
cd "$dest"
need=0
[ -x node_modules/node/bin/node ] || need=1
# Inspector 2.x: the 0.x CLI cannot send an Authorization header.
grep -q '"version": "2\.' node_modules/@modelcontextprotocol/inspector/package.json 2>/dev/null || need=1
[ -f node_modules/@modelcontextprotocol/conformance/package.json ] || need=1
if [ "$need" = 0 ]; then
  echo "mcp tools already installed in $dest"
  exit 0
fi
[ -f package.json ] || echo '{"name": "ctxvault-mcp-tools", "private": true}' > package.json
npm install --no-audit --no-fund --loglevel=error node@22
# Resolve the tools with Node 22 on PATH: under an older Node, npm falls back to inspector 0.x.
PATH="$dest/node_modules/node/bin:$PATH" npm install --no-audit --no-fund --loglevel=error \
  "@modelcontextprotocol/inspector@^2" "@modelcontextprotocol/conformance@^0.1"
"$dest/node_modules/node/bin/node" --version
echo "mcp tools installed in $dest"
