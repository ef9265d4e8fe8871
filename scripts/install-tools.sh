#!/usr/bin/env bash
# Outside judges the tests call: Debian age (opens exports) and whatever the
# MCP and export tool scripts install. Idempotent; needs root or sudo for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
for script in scripts/install-export-tools.sh scripts/install-mcp-tools.sh scripts/install-browser-tools.sh; do
  if [ -f "$script" ]; then bash "$script"; fi
done
