"""Claude's data export: ``conversations.json`` (with ``chat_messages``), ``memories.json``, ``projects.json``, ``users.json``.

- The transcript follows ``parent_message_uuid`` from the conversation's ``current_leaf_message_uuid``
  (else its newest leaf): a retried answer or an edited prompt does not interleave its siblings.
- A message's text is its top-level ``text``, else its ``text`` content blocks; ``thinking`` blocks
  are never shown as the answer (they are counted, dropped).
- An attachment's ``extracted_content`` is kept in the transcript, fenced, under its file name.
- Each project doc becomes a document of its own (chunked and embedded like any file); a project's
  description and instructions become one memory; the memory summary and project memories become memories.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.portable import Skipped
from vault.items import utcnow
from vault.portable.bundle import load_json
from vault.portable.importers.chats import (
    RECORD_ERRORS,
    Chat,
    Reading,
    Turn,
    documents,
    fenced,
    iso,
    live_path,
    memory,
    skip,
    text_document,
    tick,
)
from vault.portable.records import ItemRecord

_ROLES = {"human": "user", "assistant": "assistant"}
_NO_PARENT = "00000000-0000-4000-8000-000000000000"
MAX_SIDE_FILE_BYTES = 256 << 20


def detect(data: object) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "chat_messages" in data[0]


def read(data: object, folder: Path, space: str | None, progress: Reading | None = None) -> tuple[list[ItemRecord], list[Skipped]]:
    """Records from a parsed ``conversations.json`` and the side files next to it."""
    records: list[ItemRecord] = []
    skipped: list[Skipped] = []
    conversations = data if isinstance(data, list) else []
    for n, raw in enumerate(conversations, 1):
        tick(progress, n, len(conversations), "reading conversations")
        ref = (raw.get("uuid") if isinstance(raw, dict) else None) or f"conversation {n}"
        try:
            chat = _conversation(raw, n)
        except RECORD_ERRORS as exc:
            skipped.append(skip(ref, f"unreadable conversation: {type(exc).__name__}: {str(exc)[:160]}"))
            continue
        if chat.turns:
            records += documents(chat, space)
        else:
            skipped.append(skip(ref, "conversation without a message"))
    for name, reader in (("users.json", _users), ("memories.json", _memories), ("projects.json", _projects)):
        side = folder / name
        if not side.is_file():
            continue
        if side.stat().st_size > MAX_SIDE_FILE_BYTES:
            skipped.append(skip(name, f"larger than {MAX_SIDE_FILE_BYTES >> 20} MiB"))
            continue
        try:
            records += reader(load_json(side.read_bytes(), name), space, skipped)
        except (*RECORD_ERRORS, json.JSONDecodeError) as exc:
            skipped.append(skip(name, f"unreadable: {type(exc).__name__}: {str(exc)[:160]}"))
    return records, skipped


def _conversation(raw: Any, n: int) -> Chat:
    if not isinstance(raw, dict) or not isinstance(raw.get("chat_messages"), list):
        raise TypeError("no chat_messages")
    created = iso(raw.get("created_at")) or utcnow()
    chat = Chat("claude", str(raw.get("uuid") or f"conversation-{n}"), str(raw.get("name") or "Conversation"), created,
                iso(raw.get("updated_at")) or created)  # fmt: skip
    messages = [m for m in raw["chat_messages"] if isinstance(m, dict)]
    by_id = {str(m.get("uuid") or f"m{i}"): m for i, m in enumerate(messages)}
    if any(m.get("parent_message_uuid") for m in messages):
        parents = {
            k: (str(m["parent_message_uuid"]) if m.get("parent_message_uuid") not in (None, "", _NO_PARENT) else None)
            for k, m in by_id.items()
        }
        leaf = raw.get("current_leaf_message_uuid")
        if leaf not in by_id:
            has_child = {p for p in parents.values() if p}
            leaves = [(str(m.get("created_at") or ""), i, k) for i, (k, m) in enumerate(by_id.items()) if k not in has_child]
            leaf = max(leaves)[2] if leaves else None
        path = live_path(parents, leaf)
        chat.abandoned = sum(1 for k in by_id if k not in set(path))
    else:
        path = list(by_id)  # an older export: one linear list
    for key in path:
        m = by_id[key]
        text, thinking = _text(m)
        chat.reasoning += thinking
        parts = [text] if text.strip() else []
        for att in m.get("attachments") or []:
            if not isinstance(att, dict):
                continue
            name = str(att.get("file_name") or "attachment")
            extracted = att.get("extracted_content")
            parts.append(f"Attachment `{name}`:\n\n{fenced(extracted)}" if isinstance(extracted, str) and extracted.strip()
                         else f"Attachment `{name}` (no text).")  # fmt: skip
        for f in m.get("files") or []:
            if isinstance(f, dict) and f.get("file_name"):
                parts.append(f"File `{f['file_name']}` (not in the export).")
        if parts:
            chat.turns.append(
                Turn(_ROLES.get(str(m.get("sender")), str(m.get("sender") or "user")), "\n\n".join(parts), iso(m.get("created_at")))
            )
    return chat


def _text(m: dict[str, Any]) -> tuple[str, int]:
    """The message's answer text and how many thinking blocks it held (never used as its text)."""
    blocks = [b for b in m.get("content") or [] if isinstance(b, dict)]
    thinking = sum(1 for b in blocks if b.get("type") in ("thinking", "redacted_thinking"))
    top = m.get("text")
    if isinstance(top, str) and top.strip():
        return top, thinking
    return "\n\n".join(str(b.get("text")) for b in blocks if b.get("type") == "text" and b.get("text")), thinking


def _users(data: Any, space: str | None, skipped: list[Skipped]) -> list[ItemRecord]:
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return []
    user = data[0]
    lines = [f"{label}: {user[k]}" for k, label in (("full_name", "Name"), ("email_address", "Email")) if user.get(k)]
    if not lines:
        return []
    return [memory("claude", "user-profile", "Owner profile from Claude export.\n" + "\n".join(lines), utcnow(), space, ("profile",), {})]


def _memories(data: Any, space: str | None, skipped: list[Skipped]) -> list[ItemRecord]:
    entry = data[0] if isinstance(data, list) and data else data
    if not isinstance(entry, dict):
        return []
    out: list[ItemRecord] = []
    now = utcnow()
    summary = entry.get("conversations_memory")
    if isinstance(summary, str) and summary.strip():
        out.append(memory("claude", "memory", summary, now, space, ("context",), {"field": "conversations_memory"}))
    projects = entry.get("project_memories")
    if isinstance(projects, dict):
        for pid, text in projects.items():
            if isinstance(text, str) and text.strip():
                out.append(memory("claude", f"project-memory-{pid}", text, now, space, ("project",), {"project_id": str(pid)[:64]}))
    return out


def _projects(data: Any, space: str | None, skipped: list[Skipped]) -> list[ItemRecord]:
    out: list[ItemRecord] = []
    for project in data if isinstance(data, list) else []:
        if not isinstance(project, dict):
            continue
        pid = str(project.get("uuid") or "")[:64]
        name = str(project.get("name") or "Project")
        at = iso(project.get("updated_at")) or iso(project.get("created_at")) or utcnow()
        about = [str(project.get(k)).strip() for k in ("description", "prompt_template") if str(project.get(k) or "").strip()]
        if about and pid:
            out.append(memory("claude", f"project-{pid}", f"Claude project {name}:\n\n" + "\n\n".join(about), at, space,
                              ("project",), {"project_id": pid}))  # fmt: skip
        for doc in project.get("docs") or []:
            if not isinstance(doc, dict):
                continue
            content = doc.get("content")
            if not isinstance(content, str) or not content.strip():
                skipped.append(skip(doc.get("filename") or doc.get("uuid") or name, "project doc without text"))
                continue
            filename = str(doc.get("filename") or "document")
            out.append(text_document("claude", f"projdoc-{doc.get('uuid') or filename}", f"{name}: {filename}", content,
                                     iso(doc.get("created_at")) or at, space, ("project",),
                                     {"project_id": pid, "project": name[:200], "filename": filename[:200]}))  # fmt: skip
    return out
