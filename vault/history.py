"""Item history: every earlier state of an item, kept when something replaces it (issue 24).

An item's row is its current state; ``item_versions`` holds the states before it,
numbered from 1 in the order this vault kept them. Whoever replaces a state records
it here first (``keep_version``), so an edit, an update, a merge, an import and a
restore all leave the previous text, tags, space and sensitivity, with who wrote it,
when, and who replaced it. Who wrote the current state is the last version's
``replaced_by`` (or the item's ``created_by`` when it has no history).

Imports recognise a state by its ``(saved_at, content_hash)``: the instant it was
written and its text's hash travel with every export, so two vaults agree on which
versions they share (``StateKey``).

A document's state is its title and its file: a version of a document keeps the file it
held (``doc_versions``, a ``DocFile``), so a re-added file or an import conflict never
loses the earlier content; restoring the version extracts its text and chunks again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.items import ItemVersion, VersionFile
from vault.blob import Content, content, content_size
from vault.dates import instant
from vault.store import Row, Store

VERSION_COLUMNS = "item_id, version, text, space, tags, sensitivity, content_hash, saved_by, saved_at, replaced_by, replaced_at"

StateKey = tuple[datetime, str]  # (saved_at, content_hash): the same state in any vault


@dataclass(frozen=True, slots=True)
class State:
    """One state of an item as history stores it (a version, or the current row about to become one)."""

    text: str
    space: str
    tags: tuple[str, ...]
    sensitivity: str
    content_hash: str
    saved_by: str
    saved_at: datetime

    @property
    def key(self) -> StateKey:
        return (self.saved_at, self.content_hash)


@dataclass(frozen=True, slots=True)
class DocFile:
    """The file a document's state held (``doc_files`` while current, ``doc_versions`` once kept)."""

    path: str
    filename: str
    mime: str
    sha256: str
    data: Content  # a bundle's version file: read from the import's spool when its row is written


@dataclass(frozen=True, slots=True)
class Version:
    """A kept state and who replaced it, when; a document's state with its file."""

    state: State
    replaced_by: str
    replaced_at: datetime
    file: DocFile | None = None


def row_to_version(row: Row, file: VersionFile | None = None) -> ItemVersion:
    return ItemVersion(
        version=row["version"],
        text=row["text"],
        space=row["space"],
        tags=json.loads(row["tags"]),
        sensitivity=row["sensitivity"],
        content_hash=row["content_hash"],
        saved_by=row["saved_by"],
        saved_at=instant(row["saved_at"]),
        replaced_by=row["replaced_by"],
        replaced_at=instant(row["replaced_at"]),
        file=file,
    )


def versions(store: Store, item_id: str) -> list[ItemVersion]:
    """The kept versions of an item, oldest first (a document's with the facts of its file)."""
    rows = store.query(f"SELECT {VERSION_COLUMNS} FROM item_versions WHERE item_id = ? ORDER BY version", [item_id])
    files = {
        r["version"]: VersionFile(filename=r["filename"], mime=r["mime"], size=r["size"], sha256=r["sha256"])
        for r in store.query("SELECT version, filename, mime, size, sha256 FROM doc_versions WHERE item_id = ?", [item_id])
    }
    return [row_to_version(r, files.get(r["version"])) for r in rows]


def version_file(store: Store, item_id: str, version: int) -> DocFile | None:
    """The file a document's version held (``None``: not a document version, or kept before files were)."""
    row = store.one("SELECT path, filename, mime, sha256, data FROM doc_versions WHERE item_id = ? AND version = ?", [item_id, version])
    return None if row is None else DocFile(row["path"], row["filename"], row["mime"], row["sha256"], bytes(row["data"]))


def current_file(store: Store, item_id: str) -> DocFile | None:
    """The file a document holds now (``None``: not a document)."""
    row = store.one("SELECT path, filename, mime, sha256, data FROM doc_files WHERE item_id = ?", [item_id])
    return None if row is None else DocFile(row["path"], row["filename"], row["mime"], row["sha256"], bytes(row["data"]))


def version_keys(store: Store, item_ids: Sequence[str]) -> dict[str, list[StateKey]]:
    """The state keys of the kept versions of these items, oldest first (items without history are absent)."""
    out: dict[str, list[StateKey]] = {}
    ids = list(item_ids)
    for start in range(0, len(ids), 5000):
        part = json.dumps(ids[start : start + 5000])
        for item_id, saved_at, digest in store.query(
            "SELECT item_id, saved_at, content_hash FROM item_versions WHERE item_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY item_id, version",
            [part],
        ):
            out.setdefault(item_id, []).append((instant(saved_at), digest))
    return out


def author(store: Store, item_id: str, created_by: str) -> str:
    """Who wrote an item's current state: whoever replaced its last version, else its creator."""
    row = store.one("SELECT replaced_by FROM item_versions WHERE item_id = ? ORDER BY version DESC LIMIT 1", [item_id])
    return str(row[0]) if row else created_by


def current_state(store: Store, item_id: str) -> State | None:
    """The item's row as a state (``None``: no such item)."""
    row = store.one("SELECT text, space, tags, sensitivity, content_hash, created_by, updated_at FROM items WHERE id = ?", [item_id])
    if row is None:
        return None
    return State(
        text=row["text"],
        space=row["space"],
        tags=tuple(json.loads(row["tags"])),
        sensitivity=row["sensitivity"],
        content_hash=row["content_hash"],
        saved_by=author(store, item_id, row["created_by"]),
        saved_at=instant(row["updated_at"]),
    )


def next_version(store: Store, item_id: str) -> int:
    row = store.one("SELECT coalesce(max(version), 0) + 1 FROM item_versions WHERE item_id = ?", [item_id])
    return int(row[0]) if row else 1


def insert_versions(store: Store, item_id: str, kept: Sequence[Version], first: int | None = None) -> int:
    """Append these versions to an item's history (numbered from ``first``, else after its last); returns the first number used."""
    number = first if first is not None else next_version(store, item_id)
    for n, v in enumerate(kept):
        s = v.state
        store.execute(
            f"INSERT INTO item_versions ({VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                item_id, number + n, s.text, s.space, json.dumps(sorted(set(s.tags))), s.sensitivity, s.content_hash,
                s.saved_by, s.saved_at.isoformat(), v.replaced_by, v.replaced_at.isoformat(),
            ],
        )  # fmt: skip
        if v.file is not None:
            f = v.file
            store.execute(
                "INSERT INTO doc_versions (item_id, version, path, filename, mime, size, sha256, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [item_id, number + n, f.path, f.filename, f.mime, content_size(f.data), f.sha256, content(f.data)],
            )
    return number


def keep_version(store: Store, item_id: str, *, replaced_by: str, replaced_at: datetime) -> int | None:
    """Keep the item's current state (a document's with its file) as its next version before the caller
    replaces it (inside the caller's transaction); returns the version number (``None``: no such item)."""
    state = current_state(store, item_id)
    if state is None:
        return None
    return insert_versions(store, item_id, [Version(state, replaced_by, replaced_at, current_file(store, item_id))])
