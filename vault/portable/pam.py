"""Portable AI Memory (PAM) v1.0: our items as PAM memories, and PAM memories as records.

Every memory we write is checked with the ``portable_ai_memory`` package's own models
before it is written; ``content_hash`` uses the spec's normalisation (trim, lowercase,
NFC, collapse whitespace), which is also the vault's. PAM objects forbid extra fields
except ``metadata``, so what PAM cannot say goes in ``metadata["x-ctxvault"]``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import rfc8785
from portable_ai_memory.core.integrity import compute_content_hash
from portable_ai_memory.models.embeddings import EmbeddingsFile
from portable_ai_memory.models.enums import MemoryStatus, MemoryType
from portable_ai_memory.models.memory_store import MemoryObject, MemoryStore
from pydantic import ValidationError

from schemas.items import Item
from schemas.portable import PAM_SCHEMA_VERSION, ItemExtras, Skipped, VersionEntry
from vault.dates import aware
from vault.errors import BadBundle
from vault.portable.records import ItemRecord, check_count, check_text, clean_space, clean_tags, valid_id, versions_from

PLATFORM = "context-vault"
EXPORTER = "context-vault/0.1.0"
EXTRAS = "x-ctxvault"
_PAM_TAG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_LIVE_STATUSES = {MemoryStatus.ACTIVE, MemoryStatus.ARCHIVED}


def _pam_tags(tags: Iterable[str]) -> list[str]:
    return sorted({t.lower() for t in tags if _PAM_TAG.fullmatch(t.lower())})


def _method(source: str, created_by: str) -> str:
    if source.startswith("import"):
        return "api_export"
    return "explicit_user_input" if created_by == "owner" else "llm_inference"


def memory_object(
    item: Item,
    superseded_by: str | None = None,
    embedding_ref: str | None = None,
    history: list[VersionEntry] | None = None,
    left_out: list[datetime] | None = None,
) -> dict[str, Any]:
    """One memory or preference as a PAM memory dict (not yet validated)."""
    content = f"{item.key}: {item.text}" if item.kind == "preference" else item.text
    pam_type = "preference" if item.kind == "preference" else str(item.meta.get("pam_type", "fact"))
    if pam_type not in MemoryType.__members__.values() or pam_type in ("custom", "preference"):
        pam_type = "fact" if item.kind == "memory" else pam_type
    extras = ItemExtras(
        kind="preference" if item.kind == "preference" else "memory",
        key=item.key,
        space=item.space,
        tags=item.tags,
        sensitivity=item.sensitivity,
        source=item.provenance.source,
        created_by=item.provenance.created_by,
        supersedes=item.supersedes,
        superseded_at=item.superseded_at,
        meta=item.meta,
        history=history or [],
        left_out=left_out or [],
    )
    temporal: dict[str, Any] = {"created_at": item.provenance.created_at, "updated_at": item.provenance.updated_at}
    if item.valid_from:
        temporal["valid_from"] = item.valid_from
    if item.valid_until:
        temporal["valid_until"] = item.valid_until
    if superseded_by:
        temporal["superseded_by"] = superseded_by
    obj: dict[str, Any] = {
        "id": item.id,
        "type": pam_type,
        "status": "superseded" if item.superseded_at else "active",
        "content": content,
        "content_hash": item.content_hash,
        "tags": _pam_tags(item.tags),
        "temporal": temporal,
        "provenance": {
            "platform": PLATFORM,
            "extraction_method": _method(item.provenance.source, item.provenance.created_by),
            "extractor": EXPORTER,
        },
        "access": {"visibility": "private", "exportable": True, "shared_with": []},
        "metadata": {"domain": item.space, EXTRAS: _extras_json(extras)},
    }
    if embedding_ref:
        obj["embedding_ref"] = embedding_ref
    return obj


def _extras_json(extras: ItemExtras) -> dict[str, Any]:
    out = extras.model_dump(mode="json", exclude_none=True)
    for name in ("history", "left_out"):
        if not out[name]:
            del out[name]  # most items have none: the bundle stays as it was before history existed
    return out


def memory_store(
    memories: list[dict[str, Any]], *, owner_id: str, export_id: str, now: datetime, conversations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A complete, validated PAM memory store with its integrity block.

    Raises:
        BadBundle: an item that PAM's own models reject (a bug, never silently written).
    """
    checked: list[dict[str, Any]] = []
    for obj in memories:
        try:
            model = MemoryObject.model_validate(obj)
        except ValidationError as exc:
            raise BadBundle(f"item {obj.get('id')!r} does not form a valid PAM memory: {exc.errors()[0]['msg']}") from exc
        if model.content_hash != compute_content_hash(model.content):
            raise BadBundle(f"item {model.id!r}: stored content hash differs from PAM's normalisation")
        checked.append(model.model_dump(mode="json", by_alias=True, exclude_none=True))
    store = {
        "schema": "portable-ai-memory",
        "schema_version": PAM_SCHEMA_VERSION,
        "spec_uri": "https://portable-ai-memory.org/spec/v1.0",
        "export_id": export_id,
        "exported_by": EXPORTER,
        "export_date": now.isoformat(),
        "owner": {"id": owner_id},
        "memories": checked,
        **({"conversations_index": conversations} if conversations else {}),
        "integrity": {
            "canonicalization": "RFC8785",
            "checksum": integrity_checksum(checked),
            "total_memories": len(checked),
        },
        "export_type": "full",
    }
    return store


_SAFE_INT = 2**53 - 1  # I-JSON: larger integers have no exact JCS form


def _needs_reference(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, int):
        return abs(value) > _SAFE_INT
    if isinstance(value, dict):
        return any(_needs_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_needs_reference(v) for v in value)
    return False


def integrity_checksum(memories: list[dict[str, Any]]) -> str:
    """PAM's integrity checksum: sha256 of the RFC 8785 (JCS) form of the memories sorted by id.

    Without floats, JCS of our objects equals compact, key-sorted ``json.dumps`` (ASCII keys,
    the same string escapes, integers as digits), which runs in C: at 100k memories the
    pure-Python ``rfc8785`` took about a minute. Floats (ES6 number formatting) take the
    reference path; tests/vault/portable/test_pam.py checks both agree.
    """
    ordered = sorted(memories, key=lambda m: m.get("id", ""))
    if _needs_reference(ordered):
        try:
            canonical = rfc8785.dumps(ordered)
        except rfc8785.CanonicalizationError as exc:
            raise BadBundle(f"an item's metadata holds a number JSON cannot carry exactly: {exc}") from exc
    else:
        canonical = json.dumps(ordered, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def embeddings_file(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A validated PAM embeddings document."""
    doc = {"schema": "portable-ai-memory-embeddings", "schema_version": PAM_SCHEMA_VERSION, "embeddings": entries}
    EmbeddingsFile.model_validate(doc)
    return doc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"][:4])
    return f"{where}: {err['msg']}"


def parse_memory_store(data: object, *, space: str | None, name: str = "memory-store.json") -> tuple[list[ItemRecord], list[Skipped]]:
    """Records from a PAM memory store: lossless for our own memories, best effort for others.

    Raises:
        BadBundle: not a PAM v1 memory store, or a tampered memory.
    """
    if not isinstance(data, dict) or data.get("schema") != "portable-ai-memory":
        raise BadBundle(f"{name} is not a PAM memory store")
    version = str(data.get("schema_version", ""))
    if not version.startswith("1."):
        raise BadBundle(f"{name} has PAM schema version {version[:16]!r}; this version reads 1.x")
    raw_memories = data.get("memories")
    if isinstance(raw_memories, list):
        check_count(len(raw_memories), name)
    try:
        store = MemoryStore.model_validate(data)
    except ValidationError as exc:
        raise BadBundle(f"{name} is not a valid PAM memory store ({_first_error(exc)})") from exc
    if store.integrity is not None and store.integrity.total_memories != len(store.memories):
        raise BadBundle(f"{name} declares {store.integrity.total_memories} memories but holds {len(store.memories)}")
    records: list[ItemRecord] = []
    skipped: list[Skipped] = []
    for m in store.memories:
        check_text(m.content, f"{name}: memory {m.id[:40]!r}")
        if compute_content_hash(m.content) != m.content_hash:
            raise BadBundle(f"{name}: memory {m.id[:40]!r} does not match its content_hash (tampered?)")
        extra = (m.metadata.model_extra or {}).get(EXTRAS) if m.metadata else None
        if extra is not None:
            records.append(_own_record(m, extra, space, name))
            continue
        if m.status not in _LIVE_STATUSES:
            skipped.append(Skipped(ref=m.id[:128], reason=f"status is {m.status.value}"))
            continue
        created = m.temporal.created_at
        domain = m.metadata.domain if m.metadata else None
        tags = clean_tags([*m.tags, m.type.value if m.type != MemoryType.CUSTOM else (m.custom_type or "custom")])
        records.append(
            ItemRecord(
                id=valid_id(m.id),
                kind="memory",
                text=m.content.strip(),
                space=space or clean_space(domain, "personal"),
                created_at=created,
                updated_at=m.temporal.updated_at or created,
                tags=tags,
                source=f"import:pam:{m.provenance.platform}",
                valid_from=m.temporal.valid_from,
                valid_until=m.temporal.valid_until,
                meta={"pam_type": m.type.value, "pam_platform": m.provenance.platform},
            )
        )
    return records, skipped


def _own_record(m: MemoryObject, extra: object, space: str | None, name: str) -> ItemRecord:
    try:
        x = ItemExtras.model_validate(extra)
    except ValidationError as exc:
        raise BadBundle(f"{name}: memory {m.id[:40]!r} has malformed x-ctxvault metadata ({_first_error(exc)})") from exc
    text = m.content
    if x.kind == "preference":
        prefix = f"{x.key}: "
        if not x.key or not text.startswith(prefix):
            raise BadBundle(f"{name}: preference {m.id[:40]!r} does not start with its key")
        text = text[len(prefix) :]
    item_id = valid_id(m.id)
    if item_id is None:
        raise BadBundle(f"{name}: memory id {m.id[:40]!r} is not a valid item id")
    return ItemRecord(
        id=item_id,
        kind=x.kind,
        text=text,
        key=x.key,
        space=space or x.space,
        created_at=m.temporal.created_at,
        updated_at=m.temporal.updated_at or m.temporal.created_at,
        tags=tuple(x.tags),
        sensitivity=x.sensitivity,
        source=x.source,
        created_by=x.created_by,
        valid_from=m.temporal.valid_from,
        valid_until=m.temporal.valid_until,
        supersedes=x.supersedes,
        superseded_at=x.superseded_at,
        superseded_by=valid_id(m.temporal.superseded_by),
        meta=x.meta,
        history=versions_from(x.history, f"{name}: memory {m.id[:40]!r}"),
        left_out=frozenset(aware(t) for t in x.left_out),
    )


_TURN = re.compile(r"^\*\*([^*\n]{1,80})\*\*(?: \(([^)\n]{1,40})\))?:\n\n", re.MULTILINE)


def _role(label: str) -> str:
    if label == "user":
        return "user"
    return "tool" if label.endswith(" output") else "assistant"


def is_conversation(item: Item) -> bool:
    """Whether a document is a conversation an importer wrote (its transcript then travels as a PAM conversation too)."""
    provider = item.meta.get("provider")
    return "conversation" in item.tags and isinstance(provider, str) and bool(_PAM_TAG.fullmatch(provider)) and len(provider) >= 2


def conversation(item: Item, transcript: str) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """A conversation document (an import of ChatGPT, Claude, Gemini…) as a PAM conversation: its file name in
    the bundle, the validated conversation, and its ``conversations_index`` entry. ``None`` for other documents.

    The messages are read back from the transcript the importer wrote (``**role** (time):`` then the text);
    the conversation's id is the item's without the provider prefix, so ``--from pam`` gives the same item id.
    """
    from portable_ai_memory.models.conversation import Conversation
    from portable_ai_memory.models.memory_store import ConversationIndexEntry

    provider = item.meta.get("provider")
    if not is_conversation(item) or not isinstance(provider, str):
        return None
    conv_id = item.id.removeprefix(f"{provider}-")
    created = item.provenance.created_at
    heads = list(_TURN.finditer(transcript))
    messages = []
    for n, head in enumerate(heads):
        end = heads[n + 1].start() if n + 1 < len(heads) else len(transcript)
        text = transcript[head.end() : end].strip()
        try:
            at = datetime.fromisoformat(head.group(2)) if head.group(2) else created
        except ValueError:
            at = created
        messages.append(
            {
                "id": f"{conv_id}-{n + 1}",
                "role": _role(head.group(1)),
                "created_at": at.isoformat(),
                "content": {"type": "text", "text": text},
            }
        )
    temporal = {"created_at": created.isoformat(), "updated_at": item.provenance.updated_at.isoformat()}
    try:
        conv = Conversation.model_validate(
            {
                "schema": "portable-ai-memory-conversation",
                "schema_version": PAM_SCHEMA_VERSION,
                "id": conv_id,
                "provider": {"name": provider, "conversation_id": str(item.meta.get("conversation_id") or conv_id)},
                "title": item.text,
                "temporal": temporal,
                "messages": messages,
            }
        )
        name = f"conversations/{hashlib.sha256(item.id.encode()).hexdigest()[:32]}.json"
        index = ConversationIndexEntry.model_validate(
            {
                "id": conv_id,
                "platform": provider,
                "title": item.text,
                "message_count": len(messages),
                "temporal": temporal,
                "storage": {"type": "file", "ref": name},
            }
        )
    except ValidationError as exc:
        raise BadBundle(f"document {item.id!r} does not form a valid PAM conversation: {_first_error(exc)}") from exc
    return name, conv.model_dump(mode="json", by_alias=True, exclude_none=True), index.model_dump(mode="json", exclude_none=True)
