"""PrefEval explicit preferences: does a task surface the user's own stated preference?

    python -m bench prefeval --data ../shared/data/prefeval \
        --distractors ../shared/data/distractors/msc_personas_all.json

Every topic file's preferences are stored as preferences. Each question (a task
that never names its preference) is asked two ways, in the same run:
``plain`` is the ordinary hybrid search over the whole vault (with its BM25-only and
dense-only parts), ``mechanism`` is what the vault does for a task
(``VaultService.preferences_for(task=…)``, the MCP ``personalize`` path): the task is
ranked against the preference profile, which is always considered on its own.
Settings: no distractors; ~31k MSC persona statements stored as memories (the
realistic case: facts about a person); and the same statements stored as
preferences (adversarial: the profile itself is 60x larger).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CachedEmbedder, bench_vault, bulk_insert, emit, real_embedder
from schemas.items import SearchQuery
from vault.filters import Clause, ItemFilter

DEPTH = 50


def load(data: Path) -> list[tuple[str, str, str]]:
    out = []
    for f in sorted(data.glob("*.json")):
        if f.name.startswith("filtered"):
            continue
        out += [(f.stem, x["preference"], x["question"]) for x in json.loads(f.read_text())]
    return out


def personas(path: Path) -> list[str]:
    raw = json.loads(path.read_text())
    return list(
        dict.fromkeys(s.strip() for split in raw.values() for dl in split for side in ("Speaker 1", "Speaker 2") for s in dl.get(side, []))
    )


def metrics(ranks: list[int]) -> dict[str, float]:
    r = np.array(ranks)
    return {
        "R@1": round(float(np.mean(r == 1)), 4),
        "R@5": round(float(np.mean((r >= 1) & (r <= 5))), 4),
        "R@10": round(float(np.mean((r >= 1) & (r <= 10))), 4),
        "MRR": round(float(np.mean(np.where(r >= 1, 1.0 / np.maximum(r, 1), 0.0))), 4),
    }


def setting(items: list[tuple[str, str, str]], distractors: list[str], as_kind: str, embedder: CachedEmbedder) -> dict[str, Any]:
    prefs = list(dict.fromkeys(p for _, p, _ in items))
    with bench_vault(embedder) as bv:
        uids = bulk_insert(bv, prefs, kind="preference", keys=[f"p{n}" for n in range(len(prefs))])
        if distractors:
            keys = [f"d{n}" for n in range(len(distractors))] if as_kind == "preference" else None
            bulk_insert(bv, distractors, kind=as_kind, keys=keys)
        bv.retriever.sync()
        own = dict(zip(prefs, uids, strict=True))
        r = bv.retriever
        everything = ItemFilter()
        profile = ItemFilter(request=Clause(kinds=frozenset({"preference"})))
        runs: dict[str, list[int]] = {"plain_lexical": [], "plain_dense": [], "plain": [], "mechanism": []}
        for _, pref, question in items:
            target = own[pref]
            asks = {
                "plain_lexical": (SearchQuery(text=question, limit=DEPTH, mode="lexical"), everything),
                "plain_dense": (SearchQuery(text=question, limit=DEPTH, mode="dense"), everything),
                "plain": (SearchQuery(text=question, limit=DEPTH), everything),
                "mechanism": (SearchQuery(text=question, limit=DEPTH, kinds=["preference"]), profile),
            }
            for name, (q, scope) in asks.items():
                ranked = [u for u, _ in r.rank(q, scope)]
                runs[name].append(ranked.index(target) + 1 if target in ranked else 0)
        size = len(r._ensure_index())
    out: dict[str, Any] = {"store_size": size, **{k: metrics(v) for k, v in runs.items()}}
    plain5 = out["plain"]["R@5"]
    out["mechanism_over_plain_R@5"] = round(out["mechanism"]["R@5"] / plain5, 2) if plain5 else None
    return out


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench prefeval", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--distractors", type=Path)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    items = load(args.data)
    embedder = CachedEmbedder(real_embedder())
    result: dict[str, Any] = {"benchmark": "prefeval", "questions": len(items), "no_distractors": setting(items, [], "memory", embedder)}
    if args.distractors:
        extra = personas(args.distractors)
        result["distractors"] = len(extra)
        result["distractors_as_memories"] = setting(items, extra, "memory", embedder)
        result["distractors_as_preferences"] = setting(items, extra, "preference", embedder)
    embedder.persist()
    emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
