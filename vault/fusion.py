"""Fusion of the lexical and dense candidate lists into one ranking (docs/benchmarks.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vault.index import VectorIndex
from vault.neighbours import Surroundings

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Fusion:
    """How lexical and dense evidence are combined (one configuration for every store size)."""

    dense_weight: float = 0.6
    candidates: int = 100
    method: str = "weighted"  # "weighted" (normalised scores) or "rrf"
    dense_norm: str = "minmax"  # "minmax" over the candidates, or "raw" cosine
    rrf_k: int = 60
    # The neighbour window (vault/neighbours.py): a candidate gains this share of the better of the
    # memories written just before and after it in the same thread ...
    neighbour_weight: float = 0.5
    # ... and this share of each of the two memories one further away.
    second_weight: float = 0.15
    # Added to a candidate whose time or text is in a month the query names ("in June").
    month_boost: float = 0.1
    # Only the best this many first-pass candidates look at their surroundings (one SQL read of ~7 units each).
    window_top: int = 40
    # Neighbours lend only when their vectors are this alike: turns of one conversation are (LoCoMo: 5th
    # percentile 0.37), unrelated memories imported together are not (SciFact abstracts: median 0.14).
    related_cosine: float = 0.35


DEFAULT_FUSION = Fusion()


def fuse(
    f: Fusion,
    qvec: NDArray[np.float32],
    index: VectorIndex,
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    rare: frozenset[int] = frozenset(),
    around: Callable[[list[int]], Surroundings] | None = None,
) -> list[tuple[int, float]]:
    """Combine the two candidate lists into one ranking.

    ``rare``: lexical hits holding a query term that few units hold (vault/lexical.py
    ``RARE_TERM_POSTINGS``): an exact code, name or number. Each ranks above every
    candidate that matches no query term at all, however similar its vector: among 1,000
    memories each ending in a unique token, hybrid search for the token used to find its
    memory 4-5 times in 10 (min-maxed cosines of unrelated items outweighed BM25).

    ``around`` (vault/neighbours.py) reads, for the best ``window_top`` candidates, their
    neighbours in their conversation thread and the units of a month the query names.
    With it, each of those candidates' score
    gains ``neighbour_weight`` times the better score of the memories just before and
    after it and ``second_weight`` times each of the two beyond; the neighbours of a
    candidate join the candidates (the answer to a matching question). Weighted fusion only.
    """
    if f.method == "rrf":
        scores: dict[int, float] = {}
        for ranked in (dense, lexical):
            for pos, (uid, _) in enumerate(ranked):
                scores[uid] = scores.get(uid, 0.0) + 1.0 / (f.rrf_k + pos + 1)
        return sorted(scores.items(), key=lambda kv: -kv[1])
    cos = dict(dense)
    missing = np.array([u for u, _ in lexical if u not in cos], dtype=np.int64)
    if len(missing):
        got, vecs = index.vectors_present(missing)
        for uid, s in zip(got.tolist(), (vecs @ qvec).tolist(), strict=True):
            cos[uid] = float(s)
    lo_hi = None
    if f.dense_norm == "minmax" and cos:
        # Cosines of MiniLM bunch in a narrow band that shifts with the query; spread
        # them over [0, 1] like the lexical scores so one weight means the same everywhere.
        lo, hi = min(cos.values()), max(cos.values())
        lo_hi = (lo, hi)
        cos = {u: (s - lo) / (hi - lo) if hi > lo else 1.0 for u, s in cos.items()}
    best = max((s for _, s in lexical), default=0.0)
    lex = {u: (s / best if best > 0 else 0.0) for u, s in lexical}
    w = f.dense_weight
    fused = {u: w * cos.get(u, 0.0) + (1 - w) * lex.get(u, 0.0) for u in set(cos) | set(lex)}
    if around is not None and fused:
        top = sorted(fused, key=lambda u: -fused[u])[: f.window_top]
        near = around(top)
        if near.neighbours and (f.neighbour_weight or f.second_weight):
            fused = _window(f, qvec, index, fused, lex, near, lo_hi, top)
        if f.month_boost:
            for u in near.dated & fused.keys():
                fused[u] += f.month_boost
    floor = max((s for u, s in fused.items() if u not in lex), default=None)
    if floor is not None:
        for u in rare & fused.keys():
            # Just above the best term-less candidate, keeping the rare hits' own order.
            fused[u] = max(fused[u], floor + 1e-6 * (1 + fused[u]))
    return sorted(fused.items(), key=lambda kv: -kv[1])


def _window(
    f: Fusion,
    qvec: NDArray[np.float32],
    index: VectorIndex,
    fused: dict[int, float],
    lex: dict[int, float],
    around: Surroundings,
    lo_hi: tuple[float, float] | None,
    top: list[int],
) -> dict[int, float]:
    """The ``top`` candidates and their adjacent neighbours plus their neighbours' scores (see ``fuse``)."""
    near = around.neighbours
    joined = {v for u in top if u in near for v in near[u][1:3] if v is not None}
    window = set(top) | joined
    # Neighbours that are not candidates get their own score, as candidates do (lexical 0 unless listed).
    involved = {v for u in window for v in near.get(u, ()) if v is not None} | window
    got, vecs = index.vectors_present(np.array(sorted(involved), dtype=np.int64))
    vec = dict(zip(got.tolist(), vecs, strict=True))
    score = dict(fused)
    w = f.dense_weight
    for uid, c in zip(got.tolist(), (vecs @ qvec).tolist(), strict=True):
        if uid in fused:
            continue
        if lo_hi is not None:
            lo, hi = lo_hi
            c = min(1.0, max(0.0, (c - lo) / (hi - lo))) if hi > lo else 1.0
        score[uid] = w * c + (1 - w) * lex.get(uid, 0.0)

    def lent(u: int, v: int | None) -> float:
        """v's score if v is a neighbour related to u, else 0."""
        if v is None or u not in vec or v not in vec or float(vec[u] @ vec[v]) < f.related_cosine:
            return 0.0
        return score.get(v, 0.0)

    out = dict(fused)
    for u in window:
        if u not in score:
            continue
        p2, p1, n1, n2 = near.get(u, (None, None, None, None))
        best = max(lent(u, p1), lent(u, n1))
        beyond = lent(u, p2) + lent(u, n2)
        out[u] = score[u] + f.neighbour_weight * best + f.second_weight * beyond
    return out
