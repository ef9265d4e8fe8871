"""Items ⇄ rows: ids, content hashes, and the row → model mapping."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import UTC, datetime

from ulid import ULID

from schemas.items import Item, Provenance
from vault.store import Row

_SPACES = re.compile(r"\s+")

ITEM_COLUMNS = (
    "id, kind, text, pref_key, space, tags, sensitivity, source, created_by, created_at, updated_at, "
    "valid_from, valid_until, content_hash, supersedes, superseded_at, deleted_at, meta"
)


def new_id() -> str:
    """A ULID: sortable by creation time, unique across machines, portable."""
    return str(ULID())


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize(text: str) -> str:
    """PAM v1.0 content normalisation: trim, lowercase, NFC, collapse whitespace."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text.strip().lower()))


def content_hash(text: str) -> str:
    """``sha256:<hex>`` of the normalised text, as PAM defines ``content_hash``."""
    return "sha256:" + hashlib.sha256(normalize(text).encode()).hexdigest()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def row_to_item(row: Row) -> Item:
    return Item(
        id=row["id"],
        kind=row["kind"],
        text=row["text"],
        key=row["pref_key"],
        space=row["space"],
        tags=json.loads(row["tags"]),
        sensitivity=row["sensitivity"],
        provenance=Provenance(
            source=row["source"],
            created_by=row["created_by"],
            created_at=datetime.fromisoformat(row["created_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
        ),
        valid_from=_dt(row["valid_from"]),
        valid_until=_dt(row["valid_until"]),
        content_hash=row["content_hash"],
        supersedes=row["supersedes"],
        superseded_at=_dt(row["superseded_at"]),
        deleted_at=_dt(row["deleted_at"]),
        meta=json.loads(row["meta"]),
    )


def unit_text(kind: str, text: str, key: str | None = None, title: str | None = None) -> str:
    """The text that is indexed for a unit: preferences carry their key, chunks their title."""
    if kind == "preference" and key:
        return f"{key.replace('_', ' ').replace('.', ' ')}: {text}"
    if kind == "document" and title:
        return f"{title}\n{text}"
    return text
