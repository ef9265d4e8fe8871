#!/usr/bin/env bash
# A two-minute tour on a throwaway vault: init, add, set a preference, add notes, search.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DEMO=$(mktemp -d)
trap 'rm -rf "$DEMO"' EXIT
export CTXVAULT_HOME="$DEMO/vault" CTXVAULT_PASSPHRASE="demo passphrase, not a real one" HF_HUB_OFFLINE=1

echo "== ctxvault init (a throwaway vault in $CTXVAULT_HOME)"
"$BIN/ctxvault" init
echo "== ctxvault add / pref set"
"$BIN/ctxvault" add "I prefer window seats on long flights" --space travel --tag flights
"$BIN/ctxvault" add "My sister Ana lives in Porto and visits every June" --tag family
"$BIN/ctxvault" pref set diet "vegetarian, no mushrooms" --space health
mkdir -p "$DEMO/notes"
printf '# Lisbon trip\n\nWe fly to Lisbon in May and stay near Alfama.\n' > "$DEMO/notes/trip.md"
echo "== ctxvault doc add"
"$BIN/ctxvault" doc add "$DEMO/notes" --space travel
echo "== ctxvault search 'where does my sister live'"
"$BIN/ctxvault" search "where does my sister live" --k 3
echo "== ctxvault status"
"$BIN/ctxvault" status
