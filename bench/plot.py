"""Draw docs/ plots from benchmark JSON files.

python -m bench.plot --locomo small.json 10k.json --speed speed.json --out docs/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(prog="python -m bench.plot")
    p.add_argument("--locomo", type=Path, nargs="*", default=[])
    p.add_argument("--speed", type=Path)
    p.add_argument("--out", type=Path, default=Path("docs"))
    args = p.parse_args(argv)
    if args.locomo:
        runs = sorted((json.loads(f.read_text()) for f in args.locomo), key=lambda r: r["store_size"]["max"])
        sizes = [r["store_size"]["max"] if r["store_size"]["max"] > 1000 else 600 for r in runs]
        fig, ax = plt.subplots(figsize=(6, 4))
        for method, style in (("hybrid", "o-"), ("lexical", "s--"), ("dense", "^--")):
            ax.plot(sizes, [r["recall"][method]["R@10"] for r in runs], style, label=f"{method} R@10")
        ax.set_xscale("log")
        ax.set_xlabel("items per store (one LoCoMo conversation + distractors)")
        ax.set_ylabel("recall@10 of evidence turns")
        ax.set_title("LoCoMo dev: recall vs store size")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out / "bench_recall_vs_size.png", dpi=120)
    if args.speed:
        data = json.loads(args.speed.read_text())
        sizes = [s["n"] for s in data["sizes"]]
        fig, ax = plt.subplots(figsize=(6, 4))
        for part, style in (("end_to_end", "o-"), ("encode", "s--"), ("vector", "^--"), ("fts", "v--"), ("fetch", "x--")):
            ax.plot(sizes, [s["latency"][part]["p95_ms"] for s in data["sizes"]], style, label=f"{part} p95")
        ax.set_xscale("log")
        ax.set_xlabel("memories in the vault")
        ax.set_ylabel("milliseconds (p95)")
        ax.set_title("Search latency vs corpus size (2 cores, 1 thread per query)")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out / "bench_latency_vs_size.png", dpi=120)


if __name__ == "__main__":
    main(sys.argv[1:])
