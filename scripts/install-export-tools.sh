#!/usr/bin/env bash
# Outside judges of our exports (BRIEF §8, §9): Debian `age` opens bundles, and the
# `pam validate` CLI checks them. `portable-ai-memory[cli]` pins rich<14, which would
# downgrade the project's venv, so the CLI lives in its own venv under .tools/pamvenv
# (git-ignored); tests find it there. Idempotent; apt-get needs root or sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v age >/dev/null 2>&1 || ! command -v age-keygen >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y age || { $SUDO apt-get update && $SUDO apt-get install -y age; }
fi

PAMVENV=.tools/pamvenv
if [ ! -x "$PAMVENV/bin/pam" ]; then
  python3 -m venv "$PAMVENV"
  "$PAMVENV/bin/python" -m pip install -q "portable-ai-memory[cli]==1.0.0"
fi
"$PAMVENV/bin/pam" --help >/dev/null
command -v age >/dev/null
echo "export tools ready: $(command -v age) ($(age --version)), $PAMVENV/bin/pam"
