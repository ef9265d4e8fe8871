"""Dedup: precision and recall of "merge" on the labelled memory pairs, for the old and the shipped rule.

    python -m bench dedup [--data bench/data/dedup_pairs.json] [--vault]

A pair (a, b) is merged by a rule when storing b after a would update a instead of
adding b. "same" pairs should merge, "distinct" pairs must not: a merge of two distinct
facts loses the older one, so precision is the number that matters (≥ 0.99 required,
tests/vault/test_dedup.py). Rules compared in the same run, on the same vectors:

- ``cosine>=0.92``: the old rule (any neighbour above the dedup threshold is merged);
- ``fact-tokens+cosine>=0.95``: the same multiset of numbers, weekdays, months, capitalised
  words, negations and units, and a very high cosine (the first design considered);
- ``shipped``: ``vault.dedup.merges`` (the same words up to case, punctuation, fillers,
  contractions and one moved phrase; neighbours from cosine ≥ 0.85).

``--vault`` also runs every pair through ``VaultService.remember`` (each pair in its own
space of one throwaway vault) and counts ``action == "updated"``: the rule as shipped,
end to end.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import bench_vault, emit, real_embedder
from schemas.items import MemoryIn
from vault import OWNER
from vault.dedup import merges

DATA = Path(__file__).parent / "data" / "dedup_pairs.json"
Rule = Callable[[str, str, float], bool]

_WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}
_NEGATIONS = {"not", "no", "never", "none", "nobody", "nothing", "n't", "cannot", "without"}
_UNITS = {"km", "mi", "miles", "kg", "lb", "lbs", "g", "mg", "ml", "l", "cm", "mm", "m", "pm", "am", "%", "$", "€", "£", "degrees"}
_WORD = re.compile(r"[^\W_]+(?:[.,:/'\-][^\W_]+)*|[$€£%]|n't")


def fact_tokens(text: str) -> Counter[str]:
    """Numbers, codes, weekdays, months, capitalised words (not the first), negations and units of ``text``."""
    out: Counter[str] = Counter()
    words = _WORD.findall(text.replace("n't", " n't"))
    for n, w in enumerate(words):
        low = w.lower()
        named = n > 0 and w[:1].isupper()
        if named or any(c.isdigit() for c in w) or low in _WEEKDAYS | _MONTHS | _NEGATIONS | _UNITS:
            out[low] += 1
    return out


RULES: dict[str, Rule] = {
    "cosine>=0.92": lambda a, b, score: score >= 0.92,
    "fact-tokens+cosine>=0.95": lambda a, b, score: score >= 0.95 and fact_tokens(a) == fact_tokens(b),
    "shipped": merges,
}


def score_rule(pairs: list[dict[str, Any]], merged: list[bool]) -> dict[str, Any]:
    tp = sum(1 for p, m in zip(pairs, merged, strict=True) if m and p["label"] == "same")
    fp = sum(1 for p, m in zip(pairs, merged, strict=True) if m and p["label"] == "distinct")
    same = sum(1 for p in pairs if p["label"] == "same")
    hand = [m for p, m in zip(pairs, merged, strict=True) if p["label"] == "same" and p.get("made") == "hand"]
    by_category: dict[str, dict[str, int]] = {}
    for p, m in zip(pairs, merged, strict=True):
        cell = by_category.setdefault(f"{p['label']}:{p['category']}", {"pairs": 0, "merged": 0})
        cell["pairs"] += 1
        cell["merged"] += int(m)
    return {
        "merges": tp + fp,
        "false_merges": fp,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / same, 4) if same else None,
        "recall_hand_written": round(sum(hand) / len(hand), 4) if hand else None,
        "by_category": dict(sorted(by_category.items())),
        "false_merge_examples": [[p["a"], p["b"]] for p, m in zip(pairs, merged, strict=True) if m and p["label"] == "distinct"][:8],
    }


def cosines(pairs: list[dict[str, Any]]) -> list[float]:
    """Cosine of each pair's texts with the vault's own model (vectors are unit length)."""
    embedder = real_embedder()
    texts = sorted({t for p in pairs for t in (p["a"], p["b"])})
    vecs = dict(zip(texts, embedder.encode(texts), strict=True))
    return [float(np.dot(vecs[p["a"]], vecs[p["b"]])) for p in pairs]


def through_vault(pairs: list[dict[str, Any]]) -> list[bool]:
    """Remember a, then b, in a space of its own per pair: merged when b updated a."""
    merged = []
    with bench_vault() as bv:
        svc = bv.service
        for n, p in enumerate(pairs):
            space = f"pair-{n}"
            first = svc.remember(OWNER, MemoryIn(text=p["a"], space=space)).item.id
            second = svc.remember(OWNER, MemoryIn(text=p["b"], space=space))
            merged.append(second.action != "added" and second.item.id == first)
    return merged


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench dedup")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--vault", action="store_true", help="also run every pair through VaultService.remember")
    args = parser.parse_args(argv)
    pairs: list[dict[str, Any]] = json.loads(args.data.read_text())["pairs"]
    scores = cosines(pairs)
    out: dict[str, Any] = {
        "benchmark": "dedup",
        "data": str(args.data),
        "pairs": len(pairs),
        "labels": dict(Counter(p["label"] for p in pairs)),
        "distinct_cosine": {
            "median": round(float(np.median([s for s, p in zip(scores, pairs, strict=True) if p["label"] == "distinct"])), 4),
            "max": round(max(s for s, p in zip(scores, pairs, strict=True) if p["label"] == "distinct"), 4),
        },
        "rules": {
            name: score_rule(pairs, [rule(p["a"], p["b"], s) for p, s in zip(pairs, scores, strict=True)]) for name, rule in RULES.items()
        },
    }
    if args.vault:
        start = time.perf_counter()
        out["rules"]["shipped-through-vault"] = score_rule(pairs, through_vault(pairs))
        out["through_vault_seconds"] = round(time.perf_counter() - start, 1)
    emit(out)
