"""``python -m bench NAME ...``: dispatch to one benchmark; each prints one JSON object."""

from __future__ import annotations

import importlib
import sys

NAMES = {
    "backlog": "bench.backlog",
    "cli-latency": "bench.cli_latency",
    "dedup": "bench.dedup",
    "embed": "bench.embed",
    "ingest": "bench.ingest",
    "load": "bench.load",
    "locomo": "bench.locomo",
    "prefeval": "bench.prefeval",
    "scifact": "bench.scifact",
    "search": "bench.speed",
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in NAMES:
        print(f"usage: python -m bench {{{'|'.join(NAMES)}}} [options]", file=sys.stderr)
        raise SystemExit(2)
    name = sys.argv.pop(1)
    importlib.import_module(NAMES[name]).main(sys.argv[1:])


if __name__ == "__main__":
    main()
