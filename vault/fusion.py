"""Fusion of the lexical and dense candidate lists into one ranking (docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vault.index import VectorIndex

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


DEFAULT_FUSION = Fusion()


def fuse(
    f: Fusion,
    qvec: NDArray[np.float32],
    index: VectorIndex,
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    rare: frozenset[int] = frozenset(),
) -> list[tuple[int, float]]:
    """Combine the two candidate lists into one ranking.

    ``rare``: lexical hits holding a query term that few units hold (vault/lexical.py
    ``RARE_TERM_POSTINGS``): an exact code, name or number. Each ranks above every
    candidate that matches no query term at all, however similar its vector: among 1,000
    memories each ending in a unique token, hybrid search for the token used to find its
    memory 4-5 times in 10 (min-maxed cosines of unrelated items outweighed BM25).
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
    if f.dense_norm == "minmax" and cos:
        # Cosines of MiniLM bunch in a narrow band that shifts with the query; spread
        # them over [0, 1] like the lexical scores so one weight means the same everywhere.
        lo, hi = min(cos.values()), max(cos.values())
        cos = {u: (s - lo) / (hi - lo) if hi > lo else 1.0 for u, s in cos.items()}
    best = max((s for _, s in lexical), default=0.0)
    lex = {u: (s / best if best > 0 else 0.0) for u, s in lexical}
    w = f.dense_weight
    fused = {u: w * cos.get(u, 0.0) + (1 - w) * lex.get(u, 0.0) for u in set(cos) | set(lex)}
    floor = max((s for u, s in fused.items() if u not in lex), default=None)
    if floor is not None:
        for u in rare & fused.keys():
            # Just above the best term-less candidate, keeping the rare hits' own order.
            fused[u] = max(fused[u], floor + 1e-6 * (1 + fused[u]))
    return sorted(fused.items(), key=lambda kv: -kv[1])
