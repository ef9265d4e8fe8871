"""LoCoMo retrieval: recall@k of evidence turns for BM25-only, dense-only and hybrid, at one or more store sizes.

    python -m bench locomo --data ../shared/data/locomo/locomo_dev.json
    python -m bench locomo --data ../shared/data/locomo/locomo_dev.json \
        --distractors ../shared/data/distractors/msc_personas_all.json --size 10000

Each conversation gets its own encrypted vault holding every turn as a memory,
``(<session date>) <speaker> said, "<text>"``; with ``--distractors`` the store is
filled to ``--size`` items with the other conversations' turns and MSC persona
sentences. All methods run on the same stores in the same run.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CachedEmbedder, bench_vault, bulk_insert, emit, percentiles, real_embedder
from schemas.items import SearchQuery
from vault.filters import ItemFilter
from vault.search import DEFAULT_FUSION, Fusion, fuse

KS = (1, 5, 10, 25, 50)


def norm_evidence(raw: list[str]) -> set[str]:
    out = set()
    for e in raw:
        for part in re.split(r"[;\s]+", e):
            m = re.match(r"D:?(\d+):(\d+)", part.strip())
            if m:
                out.add(f"D{int(m.group(1))}:{int(m.group(2))}")
    return out


def turns(conv: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(dia_id, date, speaker, text) for every turn, in order."""
    c = conv["conversation"]
    out = []
    n = 1
    while f"session_{n}" in c:
        date = c.get(f"session_{n}_date_time", "")
        for t in c[f"session_{n}"]:
            text = t["text"]
            if t.get("blip_caption"):
                text += f" [shares a photo of {t['blip_caption']}]"
            out.append((t["dia_id"], date, t["speaker"], text))
        n += 1
    return out


def session_time(date: str) -> datetime | None:
    """LoCoMo's session stamp, e.g. '1:56 pm on 8 May, 2023'."""
    try:
        return datetime.strptime(date.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    except ValueError:
        return None


def memory_text(date: str, speaker: str, text: str) -> str:
    return f'({date}) {speaker} said, "{text}"'


def recall(ranked: list[int], owner: dict[int, str | None], evidence: set[str]) -> dict[int, float]:
    got = [owner.get(u) for u in ranked]
    return {k: len(evidence & {g for g in got[:k] if g}) / len(evidence) for k in KS}


PLAIN = replace(DEFAULT_FUSION, neighbour_weight=0.0, second_weight=0.0, month_boost=0.0)


def ablations() -> dict[str, Fusion]:
    """The default and the default without each of its signals (always reported)."""
    return {
        "hybrid": DEFAULT_FUSION,
        "hybrid_without_window": replace(DEFAULT_FUSION, neighbour_weight=0.0, second_weight=0.0),
        "hybrid_without_months": replace(DEFAULT_FUSION, month_boost=0.0),
        "hybrid_without_second": replace(DEFAULT_FUSION, second_weight=0.0),
        "hybrid_v2": PLAIN,
    }


def variants() -> dict[str, Fusion]:
    out = {**ablations(), "rrf": Fusion(method="rrf")}
    for a, b in ((0.3, 0.0), (0.5, 0.0), (0.5, 0.1), (0.7, 0.15), (0.5, 0.2)):
        out[f"window_{a}_{b}"] = replace(DEFAULT_FUSION, neighbour_weight=a, second_weight=b)
    for w in (0.5, 0.7):
        out[f"window_minmax_{w}"] = replace(DEFAULT_FUSION, dense_weight=w)
    for w in (0.4, 0.5, 0.6, 0.7, 0.8):
        out[f"raw_cosine_{w}"] = replace(PLAIN, dense_weight=w, dense_norm="raw")
        out[f"minmax_{w}"] = replace(PLAIN, dense_weight=w)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = json.loads(Path(args.data).read_text())
    if args.conversations:
        data = data[: args.conversations]
    personas: list[str] = []
    if args.distractors:
        raw = json.loads(Path(args.distractors).read_text())
        seen: dict[str, None] = {}
        for split in raw.values():
            for dialog in split:
                for side in ("Speaker 1", "Speaker 2"):
                    for s in dialog.get(side, []):
                        seen.setdefault(s.strip(), None)
        personas = list(seen)
    embedder = CachedEmbedder(real_embedder())
    fusions = variants() if args.sweep else ablations()
    methods = ["lexical", "dense", *fusions]
    sums: dict[str, dict[int, float]] = {m: defaultdict(float) for m in methods}
    by_cat: dict[str, dict[int, dict[int, float]]] = {m: defaultdict(lambda: defaultdict(float)) for m in methods}
    cat_n: dict[int, int] = defaultdict(int)
    questions = 0
    latencies: list[float] = []
    fusion_s: dict[str, list[float]] = defaultdict(list)  # fusion with its surroundings read (vault/neighbours.py)
    sizes = []
    all_turns = {c["sample_id"]: turns(c) for c in data}
    dumped: list[dict[str, Any]] = []
    for conv in data:
        sid = conv["sample_id"]
        own = [memory_text(d, s, t) for _, d, s, t in all_turns[sid]]
        with bench_vault(embedder) as bv:
            times = None if args.no_date_context else [session_time(d) for _, d, _s, _t in all_turns[sid]]
            uids = bulk_insert(bv, own, at=times)
            owner: dict[int, str | None] = {u: dia for u, (dia, *_rest) in zip(uids, all_turns[sid], strict=True)}
            if args.size and args.size > len(own):
                others = [memory_text(d, s, t) for other, ts in all_turns.items() if other != sid for _, d, s, t in ts]
                other_times = [session_time(d) for other, ts in all_turns.items() if other != sid for _, d, _s, _t in ts]
                pad = (others + personas)[: args.size - len(own)]
                pad_times = None if args.no_date_context else (other_times + [None] * len(personas))[: len(pad)]
                bulk_insert(bv, pad, at=pad_times)
            bv.retriever.sync()
            index = bv.retriever._ensure_index()
            sizes.append(len(index))
            scope = ItemFilter()
            for qa in conv["qa"]:
                evidence = norm_evidence(qa.get("evidence", []))
                if not evidence:
                    continue
                q = qa["question"]
                cat = int(qa["category"])
                questions += 1
                cat_n[cat] += 1
                t0 = time.perf_counter()
                bv.retriever.rank(SearchQuery(text=q, limit=10), scope)
                latencies.append(time.perf_counter() - t0)
                qvec = embedder.encode_query(q)
                ds, di = index.search(qvec, 100)
                dense = list(zip(di.tolist(), ds.tolist(), strict=True))
                lexical, rare = bv.retriever.lexical.rank_with_rare(q, scope, 100)
                rankings = {"lexical": [u for u, _ in lexical], "dense": [u for u, _ in dense]}
                for name, f in fusions.items():
                    t1 = time.perf_counter()
                    around = bv.retriever.surroundings(f, q, scope, dense, lexical)
                    rankings[name] = [u for u, _ in fuse(f, qvec, index, dense, lexical, rare, around)]
                    fusion_s[name].append(time.perf_counter() - t1)
                if args.dump:
                    union = sorted(set(rankings["lexical"]) | set(rankings["dense"]))
                    cos = dict(zip(union, (index.vectors(np.array(union, dtype=np.int64)) @ qvec).tolist(), strict=True)) if union else {}
                    dumped.append({"cat": cat, "evidence": sorted(evidence), "q": q, "dense": dense, "lexical": lexical,
                                   "cos": cos, "owner": {u: owner.get(u) for u in union}})  # fmt: skip
                for m, ranked in rankings.items():
                    r = recall(ranked, owner, evidence)
                    for k, v in r.items():
                        sums[m][k] += v
                        by_cat[m][cat][k] += v
    result: dict[str, Any] = {
        "benchmark": "locomo",
        "data": str(args.data),
        "conversations": len(data),
        "questions": questions,
        "store_size": {"min": min(sizes), "max": max(sizes)},
        "fusion": {
            "dense_weight": DEFAULT_FUSION.dense_weight,
            "candidates": DEFAULT_FUSION.candidates,
            "method": DEFAULT_FUSION.method,
            "dense_norm": DEFAULT_FUSION.dense_norm,
            "neighbour_weight": DEFAULT_FUSION.neighbour_weight,
            "second_weight": DEFAULT_FUSION.second_weight,
            "month_boost": DEFAULT_FUSION.month_boost,
        },
        "recall": {m: {f"R@{k}": round(sums[m][k] / questions, 4) for k in KS} for m in methods},
        "recall_by_category": {
            m: {str(c): {f"R@{k}": round(by_cat[m][c][k] / cat_n[c], 4) for k in (5, 10)} for c in sorted(cat_n)} for m in methods
        },
        "questions_by_category": {str(c): n for c, n in sorted(cat_n.items())},
        "hybrid_search_latency": percentiles(latencies),
        "fusion_latency": {name: percentiles(s) for name, s in fusion_s.items()},
        "texts_encoded": embedder.encoded,
    }
    embedder.persist()
    if args.dump:
        import pickle

        args.dump.write_bytes(pickle.dumps(dumped))
    return result


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench locomo", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--distractors", type=Path)
    p.add_argument("--size", type=int, default=0, help="fill each conversation's store to this many items")
    p.add_argument("--conversations", type=int, default=0, help="only the first N conversations")
    p.add_argument("--sweep", action="store_true", help="also report fusion and window variants (the table behind the default)")
    p.add_argument("--no-date-context", action="store_true", help="index turns without their resolved relative dates (the baseline)")
    p.add_argument("--dump", type=Path, help="write every question's candidate lists here (for fusion design offline)")
    p.add_argument("--json", action="store_true", help="accepted for symmetry; output is always JSON")
    emit(run(p.parse_args(argv)))


if __name__ == "__main__":
    main(__import__("sys").argv[1:])
