"""The units a scope allows, as a selector for the vector index, read from index pages only.

Every dense search and every write's duplicate check asks which unit ids its scope
(vault/filters.py) may see. Joining each unit to its item row cost ~0.2-0.3 s at 100k items
in a fresh process. Here both sides of the answer come from the indexes of migration
``m0010_scope``, and the smaller side is read:

- **the kept side**: the units of the live items the scope keeps, when it keeps few of them
  (an app granted one small space);
- **the left-out side**: the units of retired items (forgotten, superseded) and of the live
  items the scope leaves out, subtracted from the index's ids, when it keeps most (the owner,
  a space holding most of the vault).

One index-only pass over the live items counts both sides first. The SQL predicate stays the
one ``ItemFilter`` compiles: nothing here restates a rule of scope.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vault.filters import ItemFilter
from vault.store import Store

_LIVE = "i.deleted_at IS NULL AND i.superseded_at IS NULL"
_RETIRED = "i.deleted_at IS NOT NULL OR i.superseded_at IS NOT NULL"


@dataclass(frozen=True, slots=True)
class Allowed:
    """The index ids a scope allows (a selector), whether they are the whole index, and whether the scope holds any unit."""

    ids: NDArray[np.int64]
    covers: bool
    any_unit: bool


def _uids(store: Store, sql: str, params: list[object]) -> NDArray[np.int64]:
    """The uids ``sql`` selects (one ``u.uid`` column), read as one string: no row object per unit."""
    row = store.one(f"SELECT group_concat(uid) FROM ({sql})", params)
    text = str(row[0]) if row and row[0] is not None else ""
    return np.array(text.split(","), dtype=np.int64) if text else np.empty(0, dtype=np.int64)


def allowed_units(store: Store, scope: ItemFilter, index_ids: NDArray[np.int64], *, in_step: bool = True) -> Allowed:
    """The units of ``scope`` among ``index_ids`` (sorted or not), read from whichever side of the scope is smaller.

    The left-out side is exact only for an index in step with the database: one that lags may still hold the vectors
    of units deleted since (a forget), which no side of the scope names. For such an index (``in_step`` false: a
    reader of `ctxvault serve` searching the writer's index while the writer is busy) the kept side is read whatever
    its size, so a deleted unit never enters the ranking.
    """
    if scope.include_superseded:
        where, params = scope.where("i")
        kept = _uids(store, f"SELECT u.uid FROM units u JOIN items i ON i.id = u.item_id WHERE {where}", params)
        return _from_kept(kept, index_ids)
    conditions, params = scope.conditions("i")
    live = "FROM items i INDEXED BY items_live_scope"
    counts = store.one(f"SELECT count(*), total({conditions}) {live} WHERE {_LIVE}", params)
    total, keeps = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    if keeps == 0:
        return Allowed(np.empty(0, dtype=np.int64), covers=len(index_ids) == 0, any_unit=False)
    join = "JOIN units u ON u.item_id = i.id"
    if 2 * keeps <= total or not in_step:
        kept = _uids(store, f"SELECT u.uid {live} {join} WHERE {_LIVE} AND ({conditions})", params)
        return _from_kept(kept, index_ids)
    left_out = np.concatenate(
        [
            _uids(store, f"SELECT u.uid FROM items i INDEXED BY items_retired {join} WHERE {_RETIRED}", []),
            _uids(store, f"SELECT u.uid {live} {join} WHERE {_LIVE} AND NOT ({conditions})", params),
        ]
    )
    outside = np.isin(index_ids, left_out)
    return Allowed(np.sort(index_ids[~outside]), covers=not bool(outside.any()), any_unit=True)


def _from_kept(kept: NDArray[np.int64], index_ids: NDArray[np.int64]) -> Allowed:
    kept = np.sort(kept)
    covers = bool(np.isin(index_ids, kept).all()) if len(index_ids) else True
    return Allowed(kept, covers=covers, any_unit=len(kept) > 0)
