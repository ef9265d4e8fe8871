"""What every chat importer shares: a conversation as turns, its live branch, its transcript as documents.

A provider's export keeps every regeneration and edit as a tree of messages; the user saw one
path through it (ChatGPT's ``current_node``, Claude's latest leaf). ``live_path`` walks that
path back to the root; the messages off it are counted, never interleaved into the transcript.
A transcript longer than one record may hold is split into numbered parts, each a document
(chunked and embedded like any other), so one huge conversation never refuses the import.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bs4 import BeautifulSoup

from schemas.portable import Skipped
from vault.items import content_hash
from vault.portable.records import MAX_TEXT_CHARS, DocumentPayload, ItemRecord, check_text, clean_tags, valid_id

# What a malformed record of an export raises when read (a field of the wrong type or missing, a value
# out of range, nesting deeper than the stack): the record is skipped with the reason, the rest imported.
RECORD_ERRORS = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError)
Reading = Callable[[int, int, str], None]
_FENCE = re.compile(r"`{3,}")


@dataclass(frozen=True, slots=True)
class Turn:
    """One message as the user saw it: who, what (Markdown), when."""

    role: str
    text: str
    at: datetime | None = None


@dataclass(slots=True)
class Chat:
    provider: str
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    turns: list[Turn] = field(default_factory=list)
    abandoned: int = 0  # messages on branches the user left (regenerated or edited)
    reasoning: int = 0  # reasoning ("thoughts") messages or blocks, kept out of the transcript
    meta: dict[str, object] = field(default_factory=dict)


def live_path(parents: Mapping[str, str | None], leaf: str | None) -> list[str]:
    """The ids from the root down to ``leaf``, following each node's parent (a cycle stops the walk)."""
    path: list[str] = []
    seen: set[str] = set()
    node = leaf
    while node is not None and node in parents and node not in seen:
        seen.add(node)
        path.append(node)
        node = parents[node]
    path.reverse()
    return path


def fenced(text: str, info: str = "") -> str:
    """``text`` in a code fence longer than any run of backticks inside it."""
    longest = max((len(m.group()) for m in _FENCE.finditer(text)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def html_text(html: str) -> str:
    """The text of an HTML fragment (Gemini's ``safeHtmlItem``): tags and scripts dropped, entities decoded.

    Parsed with the standard library's parser through BeautifulSoup: nothing is fetched or run, and the
    result is plain text (it is stored and shown as text, never as HTML).
    """
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "template", "iframe", "object"]):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(["p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote"]):
        block.insert_before("\n")
        block.insert_after("\n")
    for item in soup.find_all("li"):
        item.insert(0, "- ")
    text = soup.get_text()
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _header(chat: Chat) -> list[str]:
    lines = [f"# {chat.title}", ""]
    notes = []
    if chat.abandoned:
        notes.append(f"{chat.abandoned} message(s) on abandoned branches (regenerated or edited) are not included")
    if chat.reasoning:
        notes.append(f"{chat.reasoning} reasoning step(s) are not included")
    if notes:
        lines += [f"_{'; '.join(notes)}._", ""]
    return lines


def _turn_lines(t: Turn) -> str:
    stamp = f" ({t.at.isoformat()})" if t.at else ""
    return f"**{t.role}**{stamp}:\n\n{t.text.strip()}\n"


def _pieces(block: str, room: int) -> list[str]:
    """``block`` cut into pieces of at most ``room`` characters, at a line break or space when one is near."""
    out: list[str] = []
    while len(block) > room:
        cut = max(block.rfind("\n", 0, room), block.rfind(" ", 0, room))
        cut = cut + 1 if cut > room // 2 else room
        out.append(block[:cut])
        block = block[cut:]
    return [*out, block]


def transcripts(chat: Chat, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """The chat as Markdown, in as many parts as it takes for each to hold at most ``limit`` characters.

    Parts break between turns; a single turn longer than a part is cut near the limit, at a space.
    """
    head = "\n".join(_header(chat))
    parts: list[list[str]] = [[]]
    size = len(head)
    room = limit - len(head) - 64  # the part's header (title and "part n of m") fits in the rest
    for t in chat.turns:
        block = _turn_lines(t)
        for piece in _pieces(block, room):
            if parts[-1] and size + len(piece) + 1 > room:
                parts.append([])
                size = len(head)
            parts[-1].append(piece)
            size += len(piece) + 1
    if len(parts) == 1:
        return [head + "\n" + "\n".join(parts[0])]
    return [f"{head}\n_Part {n} of {len(parts)}._\n\n" + "\n".join(p) for n, p in enumerate(parts, 1)]


def documents(chat: Chat, space: str | None) -> list[ItemRecord]:
    """The chat's transcript as one document, or several (``… (part 2 of 3)``) when it is that long."""
    texts = transcripts(chat)
    records = []
    for n, text in enumerate(texts, 1):
        check_text(text, f"{chat.provider} conversation {chat.id[:40]!r}")
        suffix = "" if n == 1 else f"-part{n}"
        title = chat.title if len(texts) == 1 else f"{chat.title} (part {n} of {len(texts)})"
        data = text.encode()
        meta: dict[str, object] = {"provider": chat.provider, "conversation_id": chat.id, "messages": len(chat.turns), **chat.meta}
        if chat.abandoned:
            meta["abandoned_messages"] = chat.abandoned
        if chat.reasoning:
            meta["reasoning_dropped"] = chat.reasoning
        if len(texts) > 1:
            meta |= {"part": n, "parts": len(texts)}
        records.append(
            ItemRecord(
                id=valid_id(f"{chat.provider}-{chat.id}{suffix}"),
                kind="document",
                text=title[:300],
                space=space or "personal",
                created_at=chat.created_at,
                updated_at=chat.updated_at,
                tags=(chat.provider, "conversation"),
                source=f"import:{chat.provider}",
                meta=meta,
                hash=content_hash(text),
                document=DocumentPayload(
                    path=f"{chat.provider}:{chat.id}{suffix}",
                    filename=f"{chat.provider}-{chat.id[:60]}{suffix}.md",
                    mime="text/markdown",
                    data=data,
                    sha256=hashlib.sha256(data).hexdigest(),
                    text=text,
                ),
            )
        )
    return records


def text_document(
    provider: str, doc_id: str, title: str, text: str, at: datetime, space: str | None, tags: tuple[str, ...], meta: dict[str, object]
) -> ItemRecord:
    """A provider's document (a Claude project doc) as a chunked document of its own."""
    check_text(text, f"{provider} document {doc_id[:40]!r}")
    data = text.encode()
    return ItemRecord(
        id=valid_id(f"{provider}-{doc_id}"),
        kind="document",
        text=title[:300] or "Document",
        space=space or "personal",
        created_at=at,
        updated_at=at,
        tags=clean_tags([provider, *tags]),
        source=f"import:{provider}",
        meta={"provider": provider, **meta},
        hash=content_hash(text),
        document=DocumentPayload(
            path=f"{provider}:{doc_id}", filename=f"{provider}-{doc_id[:60]}.md", mime="text/markdown",
            data=data, sha256=hashlib.sha256(data).hexdigest(), text=text,
        ),
    )  # fmt: skip


def memory(
    provider: str, mem_id: str, text: str, at: datetime, space: str | None, tags: tuple[str, ...], meta: dict[str, object]
) -> ItemRecord:
    """A provider's memory (a ChatGPT ``bio`` write, Claude's memory summary) with its provenance."""
    return ItemRecord(
        id=valid_id(f"{provider}-{mem_id}"),
        kind="memory",
        text=text.strip(),
        space=space or "personal",
        created_at=at,
        updated_at=at,
        tags=clean_tags([provider, *tags]),
        source=f"import:{provider}",
        meta={"provider": provider, **meta},
    )


def preference(provider: str, key: str, text: str, at: datetime, space: str | None, meta: dict[str, object]) -> ItemRecord:
    """A provider's setting about the user (ChatGPT's custom instructions) as a preference under ``key``."""
    return ItemRecord(
        id=None,
        kind="preference",
        key=key,
        text=text.strip(),
        space=space or "personal",
        created_at=at,
        updated_at=at,
        tags=clean_tags([provider, "custom-instructions"]),
        source=f"import:{provider}",
        meta={"provider": provider, **meta},
    )


def tick(progress: Reading | None, n: int, total: int, phase: str) -> None:
    """Report every hundredth record read (and the last): a bar over conversations, not over bytes."""
    if progress is not None and (n % 100 == 0 or n == total):
        progress(n, total, phase)


def skip(ref: object, reason: str) -> Skipped:
    return Skipped(ref=str(ref)[:128] or "?", reason=reason[:300])


def epoch(value: object) -> datetime | None:
    """A Unix time (ChatGPT's ``create_time``) as an aware instant; None when absent."""
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, int | float):
        raise TypeError(f"time {str(value)[:40]!r} is not a number")
    return datetime.fromtimestamp(value, UTC)


def iso(value: object) -> datetime | None:
    """An ISO 8601 instant (Claude's, Gemini's) as an aware instant; None when absent."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise TypeError(f"time {str(value)[:40]!r} is not a string")
    stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
