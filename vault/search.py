"""Search over units: lexical (FTS5 BM25) for now; the hybrid engine replaces this (issue #13).

Scope is applied inside the SQL (the ItemFilter's WHERE), so out-of-scope items
never enter ranking.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from schemas.items import Provenance, SearchHit, SearchQuery
from vault.crypto import DataKey
from vault.filters import ItemFilter
from vault.settings import Settings
from vault.store import Store

_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression: every word quoted (no operators from users), OR-ed."""
    words = _WORD.findall(text.lower())
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


class Retriever:
    def __init__(self, store: Store, settings: Settings, key: DataKey) -> None:
        self._store = store
        self._settings = settings
        self._key = key

    def search(self, query: SearchQuery, scope: ItemFilter) -> list[SearchHit]:
        match = fts_query(query.text)
        if match is None:
            return []
        where, params = scope.where("i")
        rows = self._store.query(
            f"""
            SELECT u.uid, u.seq, u.text AS unit_text, i.*, bm25(units_fts) AS rank,
                   snippet(units_fts, 0, '[', ']', '…', 16) AS snip
            FROM units_fts JOIN units u ON u.uid = units_fts.rowid JOIN items i ON i.id = u.item_id
            WHERE units_fts MATCH ? AND {where}
            ORDER BY rank LIMIT ?
            """,
            [match, *params, query.limit],
        )
        return [
            SearchHit(
                item_id=r["id"],
                kind=r["kind"],
                text=r["unit_text"],
                snippet=r["snip"],
                score=-float(r["rank"]),
                space=r["space"],
                tags=json.loads(r["tags"]),
                sensitivity=r["sensitivity"],
                key=r["pref_key"],
                chunk=r["seq"] if r["kind"] == "document" else None,
                title=r["text"] if r["kind"] == "document" else None,
                provenance=Provenance(
                    source=r["source"],
                    created_by=r["created_by"],
                    created_at=datetime.fromisoformat(r["created_at"]),
                    updated_at=datetime.fromisoformat(r["updated_at"]),
                ),
            )
            for r in rows
        ]

    def sync(self) -> int:
        """Bring derived indexes in step with the units table; returns units embedded."""
        return 0

    def near_duplicate(self, text: str, scope: ItemFilter) -> tuple[str, float] | None:
        """The most similar live memory above the dedup threshold, if any."""
        return None

    def close(self) -> None:
        return None
