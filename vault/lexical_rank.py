"""Lexical ranking inside a scope: FTS5 BM25, with statistics from the scope's own units for apps.

The owner's unfiltered search uses FTS5's native bm25() (minus terms so common that a rarer one
ranks better alone, vault/lexical.py). Any other scope is scored by a BM25 whose N, document
frequencies and average length are counted inside the scope only, so items an app cannot see
never shift its scores or order (BRIEF §4). Fusion also reads which hits hold a rare query term.
Caches live until the database changes (``version``: this connection's and others' changes, and
the index generation).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from vault.filters import ItemFilter
from vault.lexical import (
    BM25_B,
    BM25_K1,
    COMMON_TERM_FRACTION,
    COMMON_TERM_UNITS,
    RARE_TERM_POSTINGS,
    SCOPED_CANDIDATES,
    fts_query,
    match_expression,
    query_terms,
)
from vault.store import Store

# Marks a statement that reads every unit of a scope by design (its size and mean length: ~0.3 s at
# 100k, once per change of the database); tests/vault/test_query_plans.py lets it start broad.
WHOLE_SCOPE = "/* the whole scope, cached */"


class LexicalRanker:
    """BM25 over ``units_fts`` for one connection, scope applied in SQL."""

    def __init__(self, store: Store, version: Callable[[], tuple[int, ...]]) -> None:
        self._store = store
        self._version = version
        self._size_cache: dict[tuple[object, ...], tuple[int, float]] = {}
        self._df: dict[str, int] = {}  # units per query term, for _without_common; valid while _df_key holds
        self._df_key: tuple[object, ...] = ()
        self._units = 0

    def rank(self, text: str, scope: ItemFilter, n: int) -> list[tuple[int, float]]:
        """The ``n`` best (unit id, BM25) of ``text`` inside ``scope``."""
        match = fts_query(text)
        if match is None:
            return []
        # Native bm25() only for the unfiltered owner: choosing it because a scope happens to
        # cover every stored unit would let hidden items switch an app's scoring formula.
        if scope == ItemFilter():
            match = match_expression(self._without_common(query_terms(text))) or match
            rows = self._store.query(
                "SELECT f.rowid, bm25(units_fts) AS rank FROM units_fts f WHERE units_fts MATCH ? ORDER BY rank LIMIT ?", [match, n]
            )
            return [(int(r[0]), -float(r[1])) for r in rows]
        return self._scoped_bm25(query_terms(text), match, scope, n)

    def _rare_hits(self, text: str, scope: ItemFilter, lexical: list[tuple[int, float]]) -> frozenset[int]:
        """The lexical hits that hold a query term at most RARE_TERM_POSTINGS units of the scope hold.

        Counted inside the scope only (out-of-scope items must not change an app's ranking,
        BRIEF §4), and never past RARE_TERM_POSTINGS + 1 rows, so a common term costs no more than a rare one.
        """
        if not lexical:
            return frozenset()
        where, params = scope.where("i")
        owner = scope == ItemFilter()
        rare = []
        for term in query_terms(text):
            phrase = match_expression([term])
            if owner:
                sql = "SELECT count(*) FROM (SELECT 1 FROM units_fts WHERE units_fts MATCH ? LIMIT ?)"
                args: list[object] = [phrase, RARE_TERM_POSTINGS + 1]
            else:
                sql = (
                    "SELECT count(*) FROM (SELECT 1 FROM units_fts JOIN units u ON u.uid = units_fts.rowid "
                    f"JOIN items i ON i.id = u.item_id WHERE units_fts MATCH ? AND {where} LIMIT ?)"
                )
                args = [phrase, *params, RARE_TERM_POSTINGS + 1]
            row = self._store.one(sql, args)
            if row and 0 < int(row[0]) <= RARE_TERM_POSTINGS:
                rare.append(term)
        if not rare:
            return frozenset()
        rows = self._store.query(
            "SELECT rowid FROM units_fts WHERE units_fts MATCH ? AND rowid IN (SELECT value FROM json_each(?))",
            [match_expression(rare), json.dumps([u for u, _ in lexical])],
        )
        return frozenset(int(r[0]) for r in rows)

    def rank_with_rare(self, text: str, scope: ItemFilter, n: int) -> tuple[list[tuple[int, float]], frozenset[int]]:
        """``rank`` and, of its hits, those holding a rare query term (vault/fusion.py lifts them)."""
        lexical = self.rank(text, scope, n)
        return lexical, self._rare_hits(text, scope, lexical)

    def _without_common(self, terms: list[str]) -> list[str]:
        """The terms of a store-wide query minus those in very many units, if a rarer one is left (lexical.py)."""
        key = self._version()
        if key != self._df_key:
            row = self._store.one("SELECT count(*) FROM units")
            self._df_key, self._df, self._units = key, {}, int(row[0]) if row else 0
        limit = COMMON_TERM_FRACTION * self._units
        if limit < COMMON_TERM_UNITS:
            return terms  # a smaller store: every posting list is short
        for t in terms:
            if t not in self._df:
                row = self._store.one("SELECT count(*) FROM units_fts WHERE units_fts MATCH ?", [match_expression([t])])
                self._df[t] = int(row[0]) if row else 0
        kept = [t for t in terms if self._df[t] <= limit]
        return kept or terms

    def _scope_size(self, where: str, params: list[object]) -> tuple[int, float]:
        """Units in a scope and their mean length, cached until the database changes."""
        key = (where, tuple(params), *self._version())
        hit = self._size_cache.get(key)
        if hit is None:
            row = self._store.one(
                f"{WHOLE_SCOPE} SELECT count(*), avg(length(u.text)) FROM units u JOIN items i ON i.id = u.item_id WHERE {where}", params
            )
            hit = (int(row[0]), float(row[1] or 1.0)) if row else (1, 1.0)
            if len(self._size_cache) > 32:
                self._size_cache.clear()
            self._size_cache[key] = hit
        return hit

    def _scoped_bm25(self, terms: list[str], match: str, scope: ItemFilter, n: int) -> list[tuple[int, float]]:
        """BM25 whose statistics (N, df, average length) come from the allowed units only.

        FTS5's bm25() weighs terms by the whole table, so items outside a scope would
        shift an app's scores and order (BRIEF §4: out-of-scope items must not influence
        results). Term frequencies come from FTS5's own tokenizer via highlight().
        """
        where, params = scope.where("i")
        base = (
            f"FROM units_fts JOIN units u ON u.uid = units_fts.rowid JOIN items i ON i.id = u.item_id WHERE units_fts MATCH ? AND {where}"
        )
        # Candidates are taken newest first, not by global rank, so the cut cannot depend on hidden rows.
        cands = self._store.query(f"SELECT u.uid, length(u.text) {base} ORDER BY u.uid DESC LIMIT ?", [match, *params, SCOPED_CANDIDATES])
        if not cands:
            return []
        total, avg_len = self._scope_size(where, params)
        lengths = {int(r[0]): int(r[1]) for r in cands}
        marks = ",".join("?" * len(lengths))
        scores = dict.fromkeys(lengths, 0.0)
        for term in terms:
            phrase = '"' + term.replace('"', "") + '"'
            df_row = self._store.one(f"SELECT count(*) {base}", [phrase, *params])
            df = int(df_row[0]) if df_row else 0
            if df == 0:
                continue
            idf = max(math.log((total - df + 0.5) / (df + 0.5)), 1e-6)
            rows = self._store.query(
                f"SELECT rowid, highlight(units_fts, 0, char(1), char(2)) FROM units_fts WHERE units_fts MATCH ? AND rowid IN ({marks})",
                [phrase, *lengths],
            )
            for uid, marked in rows:
                tf = str(marked).count("\x01")
                norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[int(uid)] / avg_len)
                scores[int(uid)] += idf * tf * (BM25_K1 + 1) / (tf + norm)
        ranked = sorted(((uid, sc) for uid, sc in scores.items() if sc > 0), key=lambda p: (-p[1], p[0]))
        return ranked[:n]
