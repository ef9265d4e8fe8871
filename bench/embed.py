"""Bulk embedding throughput: items/s (short memories) and chunks/s (1 KB chunks) per backend x threads x bucketing.

    python -m bench embed --data ../shared/data [--short 256] [--chunks 64] [--reps 3] [--ingest 2000] [--budgets 0 512]

Backends: torch (sentence-transformers sorts each call by length itself, so it has no
"off"), ONNX fp32 and ONNX int8 (the ``#int8`` variant, vault/model_files.py; new vaults' model).
ONNX runs three ways: one one-thread session (``threads=1``), one session with two intra-op
threads (``threads=2``, the bulk path before issue 25's second change) and two one-thread
sessions sharing the batches (``workers=2``, the bulk path now). ``--budgets``: tokens per
batch (vault/embed.py ``BATCH_TOKENS``; 0 = no token budget, 64 texts a batch as before).
Repetitions are interleaved (every configuration once, then again) and the figure is the
median, so a burst of load on this shared machine hits every configuration alike; the
load average is printed beside. ``ingest`` is end to end in the vault: N short memories
written in one transaction, then embedded by ``reindex`` (what `import` + its embedding
step do), items/s over both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import bench_vault, bulk_insert, emit
from bench.scifact import load as load_scifact
from vault import OWNER
from vault.embed import BATCH_TOKENS, OnnxEmbedder, TorchEmbedder, load_embedder
from vault.model_files import INT8_SUFFIX
from vault.settings import DEFAULT_MODEL, Settings


def workloads(data: Path, short: int, chunks: int) -> tuple[list[str], list[str]]:
    """LoCoMo turns (short memories, shuffled) and 1,000-character slices of SciFact abstracts."""
    convs = json.loads((data / "locomo" / "locomo_dev.json").read_text())
    turns = [t["text"] for c in convs for v in c["conversation"].values() if isinstance(v, list) for t in v]
    random.Random(7).shuffle(turns)
    docs, _ = load_scifact(data / "scifact")
    text = " ".join(docs.values())
    return turns[:short], [text[i * 1000 : (i + 1) * 1000] for i in range(chunks)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    short, chunks = workloads(args.data, args.short, args.chunks)
    onnx = {"onnx-fp32": OnnxEmbedder(DEFAULT_MODEL), "onnx-int8": OnnxEmbedder(DEFAULT_MODEL + INT8_SUFFIX)}
    torch = TorchEmbedder(DEFAULT_MODEL) if "torch" in args.backends else None
    sessions = {(name, th): [e.session(th)] for name, e in onnx.items() for th in (1, 2)}
    for name, e in onnx.items():
        sessions[(name, -2)] = [e.session(1), e.session(1)]  # workers=2: data parallel
    ways = (1, 2, -2)
    configs = [
        (b, th, bucket, budget)
        for b in args.backends
        for th in (ways if b != "torch" else (1, 2))
        for bucket in (True, False)
        for budget in (args.budgets if b != "torch" else [0])
        if (b != "torch" or bucket) and (bucket or budget == args.budgets[-1])
    ]
    rates: dict[str, dict[str, list[float]]] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(args.reps):
        for backend, th, bucket, budget in configs:
            way = f"workers={-th}" if th < 0 else f"threads={th}"
            name = f"{backend}/{way}/bucketing={'on' if bucket else 'off'}" + (f"/budget={budget or 'none'}" if backend != "torch" else "")
            for label, texts in (("items_per_s", short), ("chunks_per_s", chunks)):
                t0 = time.perf_counter()
                if backend == "torch":
                    assert torch is not None
                    os.environ["CTXVAULT_EMBED_THREADS"] = str(th)
                    torch.encode(texts)
                else:
                    e = onnx[backend]
                    e.bucketing = bucket
                    e.budget = budget or 1 << 30
                    e.encode(texts, sessions=sessions[(backend, th)])
                rates.setdefault(name, {}).setdefault(label, []).append(len(texts) / (time.perf_counter() - t0))
        loads.append(os.getloadavg()[0])
    os.environ.pop("CTXVAULT_EMBED_THREADS", None)
    table = {n: {k: round(statistics.median(v), 1) for k, v in r.items()} for n, r in rates.items()}
    base = table.get(f"onnx-fp32/threads=1/bucketing=off/budget={args.budgets[-1] or 'none'}")
    ratios = {n: {k: round(v / base[k], 2) for k, v in r.items()} for n, r in table.items()} if base else {}
    result: dict[str, Any] = {
        "benchmark": "embed",
        "short_texts": len(short),
        "chunks_1kb": len(chunks),
        "reps": args.reps,
        "load_average_1min": {"min": round(min(loads), 2), "max": round(max(loads), 2)},
        "median": table,
        "ratio_to_onnx_fp32_1_thread_unbucketed": ratios,
    }
    if args.ingest:
        result["ingest"] = {m: ingest(m, args.ingest) for m in (DEFAULT_MODEL, DEFAULT_MODEL + INT8_SUFFIX)}
    return result


def ingest(model: str, n: int) -> dict[str, float]:
    """N short memories written and embedded in a fresh vault: items/s end to end."""
    os.environ["CTXVAULT_MODEL"] = model
    try:
        embedder = load_embedder(Settings.from_env(home=Path("unused")))
        texts = [f"memory {i}: I noted that {w}" for i, w in enumerate(_phrases(n))]
        with bench_vault(embedder) as bv:
            t0 = time.perf_counter()
            bulk_insert(bv, texts)
            written = time.perf_counter() - t0
            bv.service.reindex(OWNER)
            total = time.perf_counter() - t0
    finally:
        os.environ.pop("CTXVAULT_MODEL", None)
    return {"items": n, "write_s": round(written, 2), "total_s": round(total, 2), "items_per_s": round(n / total, 1)}


def _phrases(n: int) -> list[str]:
    words = ["coffee", "train", "sister", "garden", "invoice", "dentist", "piano", "Lisbon", "allergy", "budget", "hiking", "novel"]
    rnd = random.Random(3)
    return [" ".join(rnd.choices(words, k=rnd.randint(4, 14))) for _ in range(n)]


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench embed", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path, help="the shared data folder (locomo/, scifact/)")
    p.add_argument("--short", type=int, default=256, help="short memories per repetition")
    p.add_argument("--chunks", type=int, default=64, help="1 KB chunks per repetition")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--ingest", type=int, default=0, help="also ingest this many memories end to end (fp32 and int8)")
    p.add_argument("--backends", nargs="+", default=["torch", "onnx-fp32", "onnx-int8"])
    p.add_argument("--budgets", nargs="+", type=int, default=[BATCH_TOKENS], help="tokens per ONNX batch (0: 64 texts a batch)")
    p.add_argument("--json", action="store_true", help="accepted for symmetry; output is always JSON")
    emit(run(p.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
