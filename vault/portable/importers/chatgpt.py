"""ChatGPT's data export (``conversations.json``: a list of conversations, each a ``mapping`` tree).

- The transcript follows ``current_node`` back through ``parent``: only the branch the user saw.
  Messages on abandoned branches (regenerations, edited prompts) are counted, not included.
- ``code`` (the model's tool input) and ``execution_output`` (its result) are kept as code blocks.
- Reasoning (``thoughts``, ``reasoning_recap``, messages marked ``is_reasoning``) is dropped, counted.
- Writes to the ``bio`` tool (ChatGPT's memory) become memories; custom instructions
  (``user_editable_context``) become the preferences ``chatgpt.about_me`` and ``chatgpt.instructions``,
  from the newest conversation that carries them; the saved memories ChatGPT showed the model
  (``model_editable_context``, one numbered line each) become memories, from the newest conversation too.
- A conversation that cannot be read is skipped with the reason; the others are imported.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from schemas.portable import Skipped
from vault.items import utcnow
from vault.portable.importers.chats import (
    RECORD_ERRORS,
    Chat,
    Reading,
    Turn,
    documents,
    epoch,
    fenced,
    live_path,
    memory,
    preference,
    skip,
    tick,
)
from vault.portable.records import ItemRecord

_REASONING = {"thoughts", "reasoning_recap"}
_INSTRUCTIONS = {"user_profile": "chatgpt.about_me", "user_instructions": "chatgpt.instructions"}
_SAVED = "model_set_context"
_SAVED_LINE = re.compile(r"^\s*\d+\.\s*(?:\[(\d{4}-\d{2}-\d{2})\]\.?\s*)?(.+?)\s*$")


def _saved_memories(at: datetime, context: str, conv_id: str, space: str | None) -> list[ItemRecord]:
    """ChatGPT's saved memories as it showed them to the model: ``1. [2024-05-01]. Text`` lines."""
    out: list[ItemRecord] = []
    for line in context.splitlines():
        match = _SAVED_LINE.match(line)
        if match is None:
            continue
        try:
            when = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC) if match.group(1) else at
        except ValueError:
            when = at
        text = match.group(2)
        mem_id = "memory-" + hashlib.sha256(text.encode()).hexdigest()[:24]
        out.append(memory("chatgpt", mem_id, text, when, space, ("saved-memory",), {"conversation_id": conv_id}))
    return out


def detect(data: object) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "mapping" in data[0]


def read(data: object, space: str | None, progress: Reading | None = None) -> tuple[list[ItemRecord], list[Skipped]]:
    """Records from a parsed ``conversations.json``; a conversation that cannot be read is skipped, with the reason."""
    records: list[ItemRecord] = []
    skipped: list[Skipped] = []
    if not isinstance(data, list):
        return records, [skip("conversations.json", "not a list of conversations")]
    newest: tuple[datetime, dict[str, str], str] | None = None
    saved: tuple[datetime, str, str] | None = None
    for n, raw in enumerate(data, 1):
        tick(progress, n, len(data), "reading conversations")
        ref = (raw.get("id") or raw.get("conversation_id")) if isinstance(raw, dict) else None
        ref = ref or f"conversation {n}"
        try:
            chat, bio, instructions = _conversation(raw, n, space)
        except RECORD_ERRORS as exc:
            skipped.append(skip(ref, f"unreadable conversation: {type(exc).__name__}: {str(exc)[:160]}"))
            continue
        records += bio
        context = instructions.pop(_SAVED, "")
        if context.strip() and (saved is None or chat.updated_at > saved[0]):
            saved = (chat.updated_at, context, chat.id)
        if instructions and (newest is None or chat.updated_at > newest[0]):
            newest = (chat.updated_at, instructions, chat.id)
        if chat.turns:
            records += documents(chat, space)
        else:
            skipped.append(skip(ref, "conversation without a message"))
    if saved is not None:
        records += _saved_memories(*saved, space)
    if newest is not None:
        at, values, conv_id = newest
        records += [
            preference("chatgpt", key, values[field], at, space, {"conversation_id": conv_id, "field": field})
            for field, key in _INSTRUCTIONS.items()
            if values.get(field, "").strip()
        ]
    return records, skipped


def _conversation(raw: Any, n: int, space: str | None) -> tuple[Chat, list[ItemRecord], dict[str, str]]:
    if not isinstance(raw, dict) or not isinstance(raw.get("mapping"), dict):
        raise TypeError("no mapping of messages")
    conv_id = str(raw.get("id") or raw.get("conversation_id") or f"conversation-{n}")
    mapping: dict[str, Any] = raw["mapping"]
    created = epoch(raw.get("create_time")) or utcnow()
    chat = Chat("chatgpt", conv_id, str(raw.get("title") or "Conversation"), created, epoch(raw.get("update_time")) or created)
    if raw.get("default_model_slug"):
        chat.meta["model"] = str(raw["default_model_slug"])[:64]
    parents = {str(k): (str(v["parent"]) if v.get("parent") is not None else None) for k, v in mapping.items()}
    leaf = raw.get("current_node")
    if leaf not in mapping:
        leaf = _last_leaf(mapping)
    path = live_path(parents, leaf)
    on_path = set(path)
    instructions: dict[str, str] = {}
    bio: list[ItemRecord] = []
    for node_id in mapping:
        msg = mapping[node_id].get("message")
        if not isinstance(msg, dict):
            continue
        content = msg.get("content") or {}
        if content.get("content_type") == "user_editable_context":
            instructions |= {k: str(content.get(k) or "") for k in _INSTRUCTIONS}
        elif content.get("content_type") == "model_editable_context":
            instructions[_SAVED] = str(content.get(_SAVED) or "")
        elif node_id not in on_path and _visible(msg):
            chat.abandoned += 1
    for node_id in path:
        msg = mapping[node_id].get("message")
        if not isinstance(msg, dict) or not _visible(msg):
            continue
        at = epoch(msg.get("create_time"))
        content = msg.get("content") or {}
        kind = content.get("content_type", "text")
        if kind in _REASONING or (msg.get("metadata") or {}).get("reasoning_status") == "is_reasoning":
            chat.reasoning += 1
            continue
        role = (msg.get("author") or {}).get("role", "user")
        recipient = msg.get("recipient") or "all"
        if role == "assistant" and recipient == "bio":
            text = _text(content)
            if text.strip():
                bio.append(memory("chatgpt", f"bio-{msg.get('id') or node_id}", text, at or chat.created_at, space, ("bio",),
                                  {"conversation_id": conv_id, "tool": "bio"}))  # fmt: skip
            continue
        if turn := _turn(role, recipient, msg, content, at):
            chat.turns.append(turn)
    return chat, bio, instructions


def _last_leaf(mapping: dict[str, Any]) -> str | None:
    """Without ``current_node`` (older exports): the newest node without children."""
    leaves = [(float((v.get("message") or {}).get("create_time") or 0), k) for k, v in mapping.items() if not v.get("children")]
    return max(leaves)[1] if leaves else None


def _visible(msg: dict[str, Any]) -> bool:
    role = (msg.get("author") or {}).get("role")
    meta = msg.get("metadata") or {}
    content = msg.get("content") or {}
    if meta.get("is_visually_hidden_from_conversation") or content.get("content_type") == "user_editable_context":
        return False
    return role != "system" and bool(_text(content).strip() or content.get("content_type") in _REASONING)


def _text(content: dict[str, Any]) -> str:
    kind = content.get("content_type", "text")
    if kind in ("code", "execution_output", "reasoning_recap") or ("text" in content and "parts" not in content):
        return str(content.get("text") or content.get("content") or "")
    if kind == "thoughts":
        return "\n".join(str(t.get("content", "")) for t in content.get("thoughts") or [] if isinstance(t, dict))
    out: list[str] = []
    for part in content.get("parts") or []:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict):
            if part.get("content_type") == "image_asset_pointer":
                out.append("[image]")
            elif isinstance(part.get("text"), str):
                out.append(part["text"])
    return "\n".join(p for p in out if p)


def _turn(role: str, recipient: str, msg: dict[str, Any], content: dict[str, Any], at: datetime | None) -> Turn | None:
    kind = content.get("content_type", "text")
    text = _text(content)
    if not text.strip():
        return None
    if kind == "code":
        language = str(content.get("language") or "")
        language = "" if language == "unknown" else language
        return Turn(f"{role} (code for {recipient})" if recipient != "all" else role, fenced(text, language[:20]), at)
    if kind == "execution_output":
        name = (msg.get("author") or {}).get("name") or "tool"
        return Turn(f"{name} output", fenced(text), at)
    if role == "tool":
        return None  # browsing results, image generation notices, "Model set context updated."
    if role == "assistant" and recipient != "all":
        return None  # a call to another tool (its text is the call's arguments)
    return Turn(role, text, at)
