"""ChatGPT, Claude, Gemini, Grok and Copilot data exports.

ChatGPT, Claude and Gemini are read by our own modules (``chatgpt``, ``claude``, ``gemini``): the
converter of ``portable_ai_memory`` flattens every branch of a conversation into one transcript,
shows reasoning as the answer, drops code, tool output and attachment text, and does not read
Gemini's current Takeout layout (issue 28). Grok and Copilot go through the converter, which turns
the export into PAM conversations and memories; conversations become documents (a Markdown
transcript each), memories go through the PAM reader. Gemini's HTML layout is left to
``pam convert`` (import its output with ``--from pam``: its conversations are read too).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from portable_ai_memory.converters import detect_provider as _detect  # noqa: F401  (registers every converter)
from portable_ai_memory.converters.base import _CONVERTERS, BaseConverter
from portable_ai_memory.converters.google import GoogleConverter
from portable_ai_memory.converters.microsoft import MicrosoftConverter
from portable_ai_memory.converters.xai import XAIConverter
from portable_ai_memory.exceptions import PAMError
from portable_ai_memory.models.conversation import Conversation
from pydantic import ValidationError

from vault.errors import BadBundle
from vault.portable import pam
from vault.portable.bundle import load_json
from vault.portable.importers import chatgpt, claude, gemini
from vault.portable.importers.chats import Chat, Reading, Turn, documents
from vault.portable.records import ImportBatch, ItemRecord, check_count

PROVIDERS = ("chatgpt", "claude", "gemini", "grok", "copilot")
MAX_EXPORT_BYTES = 1 << 30
# What the converters (code we do not maintain) raise on a hostile export, translated once to BadBundle:
# their own and pydantic's errors, a field of the wrong type or missing (TypeError, AttributeError,
# LookupError), a value out of range (ValueError; OverflowError from ``datetime.fromtimestamp(1e20)``)
# and nesting deeper than the interpreter's stack (RecursionError). UnicodeError is a ValueError.
CONVERTER_ERRORS = (PAMError, ValidationError, LookupError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError)


def export_file(path: Path) -> Path:
    """The provider's main JSON file inside an export folder (or the file itself)."""
    if path.is_file():
        return path
    csv = sorted(path.glob("*.csv"))
    for candidate in (
        path / "conversations.json", XAIConverter.find_backend_file(path), GoogleConverter.find_activity_file(path), *csv[:1]
    ):  # fmt: skip
        if candidate is not None and Path(candidate).is_file():
            return Path(candidate)
    raise BadBundle(f"{path} holds no conversations.json or other provider export file")


def converter_for(data: object, path: Path, name: str | None = None) -> BaseConverter | None:
    for cls in _CONVERTERS:
        conv = cls()
        if name is not None:
            if conv.provider_name == name:
                return conv
        elif isinstance(data, dict | list) and conv.detect(data, path):
            return conv
    return None


_OWN = {"chatgpt": chatgpt, "claude": claude, "gemini": gemini}


def _own(data: object) -> str | None:
    """The provider whose export layout our own readers recognise in ``data``."""
    return next((name for name, module in _OWN.items() if module.detect(data)), None)


def chat_of(conv: Conversation, provider: str) -> Chat:
    """A PAM conversation (the converter's, or a ``conversations/*.json`` of a PAM folder) as a chat.

    Messages marked ``is_thought`` (reasoning) are counted and left out of the transcript.
    """
    chat = Chat(provider, conv.id, conv.title or "Conversation", conv.temporal.created_at,
                conv.temporal.updated_at or conv.temporal.created_at)  # fmt: skip
    for m in conv.messages:
        if m.is_thought:
            chat.reasoning += 1
            continue
        content = m.content
        text = (content.text or "\n".join(p.text for p in content.parts if p.text)) if content is not None else ""
        if text.strip():
            chat.turns.append(Turn(m.role.value, text, getattr(m, "created_at", None)))
    return chat


def read(path: Path, provider: str | None, source: str, space: str | None, now: datetime, progress: Reading | None = None) -> ImportBatch:
    main = export_file(path)
    if main.stat().st_size > MAX_EXPORT_BYTES:
        raise BadBundle(f"{main.name} is larger than {MAX_EXPORT_BYTES >> 20} MiB")
    if main.suffix.lower() == ".csv":
        return _copilot_csv(main, source, space)
    data: Any = load_json(main.read_bytes(), main.name)
    name = provider or _own(data)
    if name in _OWN:
        if not isinstance(data, list):
            raise BadBundle(f"{main.name} is not a {name} export: its top level is not a list")
        check_count(len(data), main.name)
        if name == "claude":
            own = claude.read(data, main.parent, space, progress)
        else:
            own = (chatgpt.read if name == "chatgpt" else gemini.read)(data, space, progress)
        return ImportBatch(name, source, tuple(own[0]), None, tuple(own[1]))  # type: ignore[arg-type]
    conv = converter_for(data, main, provider)
    if conv is None or (provider is None and conv.provider_name not in PROVIDERS):
        raise BadBundle(f"{main.name} is not a recognised ChatGPT, Claude, Gemini, Grok or Copilot export")
    name = conv.provider_name
    try:
        _, memories = conv.extract_owner_info(main.parent, "owner")
        conversations = conv.convert_conversations(data, owner_id="owner")
        extra = conv.convert_memories(data, owner_id="owner").memories
    except CONVERTER_ERRORS as exc:
        raise BadBundle(f"the {name} converter could not read {main.name}: {str(exc)[:160]}") from exc
    check_count(len(conversations), main.name)
    records: list[ItemRecord] = [r for c in conversations for r in _documents(name, c, space)]
    all_memories = [*memories, *extra]
    skipped: list[Any] = []
    if all_memories:
        store = {
            "schema": "portable-ai-memory",
            "schema_version": "1.0",
            "owner": {"id": "owner"},
            "memories": [m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in all_memories],
        }
        mem_records, skipped = pam.parse_memory_store(store, space=space, name=f"{name} memories")
        records += [replace(r, source=f"import:{name}") for r in mem_records]
    return ImportBatch(name, source, tuple(records), None, tuple(skipped))  # type: ignore[arg-type]


def _documents(name: str, c: Conversation, space: str | None) -> list[ItemRecord]:
    return documents(chat_of(c, name), space)


def csv_rows(text: str) -> list[dict[str, str]]:
    """The rows of a CSV as header → cell, every cell a string: cells past the header are dropped, missing ones empty.

    ``csv.DictReader`` files extra cells under the key ``None`` and missing ones as ``None``, which the
    converter calls string methods on.
    """
    lines = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(lines, [])
    return [dict(zip(header, [*cells, *[""] * (len(header) - len(cells))], strict=False)) for cells in lines if cells]


def _copilot_csv(main: Path, source: str, space: str | None) -> ImportBatch:
    try:
        rows = csv_rows(main.read_text(encoding="utf-8-sig"))
        conversations = MicrosoftConverter().convert_conversations(rows, owner_id="owner")
    except (csv.Error, *CONVERTER_ERRORS) as exc:
        raise BadBundle(f"the copilot converter could not read {main.name}: {str(exc)[:160]}") from exc
    check_count(len(conversations), main.name)
    return ImportBatch("copilot", source, tuple(r for c in conversations for r in _documents("copilot", c, space)))


def sniff(path: Path) -> str | None:
    """The provider whose converter recognises ``path``, if any."""
    try:
        main = export_file(path)
        if main.suffix.lower() == ".csv":
            with main.open(encoding="utf-8-sig", errors="replace") as fh:
                header = fh.readline().split(",")
            return "copilot" if MicrosoftConverter().detect_csv(header, main) else None
        if main.suffix.lower() != ".json" or main.stat().st_size > MAX_EXPORT_BYTES:
            return None
        data = json.loads(main.read_bytes())
    except (BadBundle, OSError, ValueError, RecursionError):
        return None
    if own := _own(data):
        return own
    conv = converter_for(data, main)
    return conv.provider_name if conv is not None and conv.provider_name in PROVIDERS else None
