"""Reconcile an import with the vault's history: shared versions, conflicts, tombstones, preference chains (issue 24).

``merge.py`` plans and writes the batch; this module decides what an item both
sides hold becomes, and writes the history, conflict and tombstone rows that
decision implies. Everything runs inside the import's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Literal

from schemas.items import Conflict
from vault.dates import instant
from vault.history import State, StateKey, Version, insert_versions
from vault.portable.records import ItemRecord, Tombstone
from vault.store import Row, Store


@dataclass(frozen=True, slots=True)
class Decision:
    """What an item both sides hold becomes."""

    action: Literal["updated", "unchanged", "skipped"]
    reason: str | None = None
    keep: tuple[Version, ...] = ()  # versions to add to the item's history
    current: bool = True  # False: the vault's state stays current and the record only joins the history
    conflict: Conflict | None = None


def decide(r: ItemRecord, e: Row, ours_history: Sequence[StateKey], author: str, source: str, actor: str, now: datetime) -> Decision:
    """An item both sides hold, by id: a fast-forward, an older version, or a conflict that keeps both sides.

    A state is recognised by (saved_at, content hash), which travel with every export
    (vault/history.py). The source's copy is newer when the vault's current state is in
    its history; older when its state is in the vault's history; otherwise both changed
    since their common version, and the later of the two (by time, then by hash, so two
    vaults choose alike even at equal times) becomes current and the other a version.
    ``author`` wrote the vault's current state; ``actor`` runs the import.
    """
    ours_key: StateKey = (instant(e["updated_at"]), e["content_hash"])
    theirs = r.state
    ours_seen = set(ours_history)
    theirs_seen = {v.state.key for v in r.history}
    if theirs.key == ours_key:
        if r.superseded_at is not None and e["superseded_at"] is None:
            # The source replaced this preference value since: it stops being live here too (its successor follows
            # in write order), or the successor's insert would meet a second live value for the key.
            return Decision("updated")
        return Decision("unchanged")
    if ours_key in theirs_seen:  # the source carries on from the vault's state
        return Decision("updated", keep=tuple(v for v in r.history if v.state.key not in ours_seen))
    if ours_key[0] in r.left_out:
        # The source carries on from the vault's state too, but its selection left that version out (a slice
        # export): the vault is behind, not changed. Its state joins its history in time order.
        ours = State(e["text"], e["space"], tuple(json.loads(e["tags"])), e["sensitivity"], e["content_hash"], author, ours_key[0])
        mine = Version(ours, actor, now)
        added = [v for v in r.history if v.state.key not in ours_seen]
        return Decision("updated", keep=tuple(sorted([*added, mine], key=lambda v: v.state.saved_at)))
    if theirs.key in ours_seen:
        return Decision("skipped", "an earlier version of this vault's copy")
    ours = State(e["text"], e["space"], tuple(json.loads(e["tags"])), e["sensitivity"], e["content_hash"], author, ours_key[0])
    only_theirs = tuple(v for v in r.history if v.state.key not in ours_seen and v.state.key != ours_key)
    source_wins = theirs.key > ours_key
    current, other = (theirs, ours) if source_wins else (ours, theirs)
    conflict = Conflict(
        item_id=e["id"], kind=r.kind, current_updated_at=current.saved_at, other_updated_at=other.saved_at,
        kept="source" if source_wins else "vault", source=source[:200],
    )  # fmt: skip
    return Decision("updated", keep=(*only_theirs, Version(other, actor, now)), current=source_wins, conflict=conflict)


def keep_versions(store: Store, item_id: str, keep: Sequence[Version], conflict: Conflict | None, now: datetime) -> None:
    """Add versions to an item's history, and record its conflict (the other side is the last version)."""
    first = insert_versions(store, item_id, keep)
    if conflict is not None:
        conflict.version = first + len(keep) - 1
        conflict.found_at = now
        cursor = store.execute(
            "INSERT INTO conflicts (item_id, version, kept, source, found_at) VALUES (?, ?, ?, ?, ?)",
            [item_id, conflict.version, conflict.kept, conflict.source, now.isoformat()],
        )
        conflict.id = cursor.lastrowid


def drop_units(store: Store, item_id: str) -> None:
    """Delete an item's units and their vectors: the import runs without foreign-key actions, so the cascade is here."""
    store.execute("DELETE FROM vectors WHERE uid IN (SELECT uid FROM units WHERE item_id = ?)", [item_id])
    store.execute("DELETE FROM units WHERE item_id = ?", [item_id])


def one_chain(store: Store, keys: Sequence[str]) -> None:
    """Link each of these preferences' values to the one before it, by time: two vaults that both changed a
    value import into one chain, never two values naming the same predecessor.

    Every value the vault still holds is a link, a forgotten one too (until purge): leaving it out would
    leave its own link naming a predecessor that the next value names as well. One read for all the keys.
    """
    if not keys:
        return
    by_key: dict[str, list[Row]] = {}
    for row in store.query(
        "SELECT pref_key, id, created_at, supersedes FROM items WHERE kind = 'preference' AND pref_key IN (SELECT value FROM json_each(?))",
        [json.dumps(list(keys))],
    ):
        by_key.setdefault(row["pref_key"], []).append(row)
    for rows in by_key.values():
        ordered = sorted(rows, key=lambda row: (instant(row["created_at"]), row["id"]))
        for before, row in pairwise(ordered):
            if row["supersedes"] != before["id"]:
                store.execute("UPDATE items SET supersedes = ? WHERE id = ?", [before["id"], row["id"]])
        if ordered[0]["supersedes"] is not None:
            store.execute("UPDATE items SET supersedes = NULL WHERE id = ?", [ordered[0]["id"]])


def forget_sourced(store: Store, tombstones: Sequence[Tombstone], live: Sequence[str], now: datetime) -> int:
    """Forget the vault's ``live`` items that the source forgot or purged, and keep a tombstone of each purged
    id the vault never held (so no later bundle brings it). Returns how many items were forgotten."""
    stamp = now.isoformat()
    for item_id in live:
        store.execute("UPDATE items SET deleted_at = ? WHERE id = ?", [stamp, item_id])
        drop_units(store, item_id)
    purged = [[t.id, t.at.isoformat()] for t in tombstones if t.purged]
    if purged:  # the id only, as a purge here keeps it (vault/service/items.py purge)
        store.execute(
            "INSERT OR IGNORE INTO tombstones (id, content_hash, purged_at) SELECT value ->> 0, '', value ->> 1 "
            "FROM json_each(?) WHERE value ->> 0 NOT IN (SELECT id FROM items)",
            [json.dumps(purged)],
        )
    return len(live)
