"""mem0 exports: the JSON of ``Memory.get_all()`` (``{"results": [...]}``) or a bare list.

Each entry carries ``id``, ``memory`` (the text), ``hash``, ``metadata``, ``categories``,
``created_at``, ``updated_at`` and ``user_id``/``agent_id``; ids are kept so that a
re-import merges by id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.portable import Skipped
from vault.errors import BadBundle
from vault.portable.records import ImportBatch, ItemRecord, check_count, check_text, clean_tags, valid_id


def entries(data: object) -> list[object] | None:
    """The memory entries of a mem0 export, or None when ``data`` is not one."""
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        data = data["results"]
    if isinstance(data, list) and data and all(isinstance(e, dict) and "memory" in e for e in data):
        return data
    return None


def _when(value: object, default: datetime) -> datetime:
    if not isinstance(value, str):
        return default
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return default
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def read(data: object, source: str, space: str | None, now: datetime) -> ImportBatch:
    found = entries(data)
    if found is None:
        raise BadBundle('not a mem0 export: expected {"results": [...]} or a list of entries with a "memory" field')
    check_count(len(found), "mem0 export")
    records: list[ItemRecord] = []
    skipped: list[Skipped] = []
    for n, e in enumerate(found):
        assert isinstance(e, dict)
        text = e.get("memory")
        if not isinstance(text, str) or not text.strip():
            skipped.append(Skipped(ref=str(e.get("id", n))[:128], reason="empty memory"))
            continue
        check_text(text, f"mem0 entry {n}")
        created = _when(e.get("created_at"), now)
        meta = {k: e[k] for k in ("user_id", "agent_id", "run_id", "hash") if isinstance(e.get(k), str)}
        metadata = e.get("metadata")
        if isinstance(metadata, dict):
            meta["mem0_metadata"] = {str(k)[:64]: v for k, v in list(metadata.items())[:50] if isinstance(v, str | int | float | bool)}
        item_id = valid_id(e.get("id"))
        categories = e.get("categories")
        if not isinstance(categories, list):  # a number or an object is no list of names
            categories = []
        records.append(
            ItemRecord(
                id=f"mem0-{item_id}" if item_id else None,
                kind="memory",
                text=text.strip(),
                space=space or "personal",
                created_at=created,
                updated_at=max(created, _when(e.get("updated_at"), created)),
                tags=clean_tags([c.lower() for c in categories if isinstance(c, str)]),
                source="import:mem0",
                meta=meta,
            )
        )
    return ImportBatch("mem0", source, tuple(records), None, tuple(skipped))
