"""Google Takeout's "My Activity → Gemini Apps" as JSON (``MyActivity.json``): a list of activity events.

Takeout has shipped three layouts of an event, all read here:

- ``"title": "Prompted <the prompt>"`` with the answer as HTML in ``safeHtmlItem: [{"html": …}]``
  (the layout of current exports); the HTML becomes plain text (``chats.html_text``);
- ``details: [{"name": "Request"|"Response", "value": …}]``;
- ``userInteractions: [{"userInteraction": {"request", "response"}}]``.

Events with a conversation link (``titleUrl`` ``…/c/<id>``) are grouped by it; the rest by session
(events less than an hour apart). Events that are not a prompt ("Used Gemini Apps", "Gave feedback")
are skipped with their title as the reason.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from schemas.portable import Skipped
from vault.portable.importers.chats import RECORD_ERRORS, Chat, Reading, Turn, documents, html_text, iso, skip, tick
from vault.portable.records import ItemRecord

HEADERS = {"Gemini Apps", "Gemini", "Bard"}
_CONV_ID = re.compile(r"/c/([A-Za-z0-9_-]{1,64})")
# The title's verb, as Takeout writes it in the export's language.
_PROMPTED = re.compile(r"^(?:Prompted|Solicitou|Solicitó|Demandé|A demandé|Angefordert|Richiesto|Gevraagd|Zapytano)\s+", re.IGNORECASE)
SESSION_GAP = timedelta(minutes=60)


def detect(data: object) -> bool:
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return False
    first = data[0]
    return first.get("header") in HEADERS or "Gemini Apps" in (first.get("products") or [])


def read(data: object, space: str | None, progress: Reading | None = None) -> tuple[list[ItemRecord], list[Skipped]]:
    skipped: list[Skipped] = []
    events: list[tuple[datetime, str | None, list[Turn], dict[str, Any]]] = []
    entries = data if isinstance(data, list) else []
    for n, event in enumerate(entries, 1):
        tick(progress, n, len(entries), "reading activity")
        try:
            at, conv_id, turns = _event(event)
        except RECORD_ERRORS as exc:
            skipped.append(skip(f"event {n}", f"unreadable activity: {type(exc).__name__}: {str(exc)[:160]}"))
            continue
        if not turns:
            title = str(event.get("title") or "") if isinstance(event, dict) else ""
            skipped.append(skip(f"event {n}", f"not a prompt: {title[:80]!r}" if title else "an activity without a prompt"))
            continue
        events.append((at, conv_id, turns, event))
    records: list[ItemRecord] = []
    for chat in _group(events):
        records += documents(chat, space)
    return records, skipped


def _event(event: Any) -> tuple[datetime, str | None, list[Turn]]:
    if not isinstance(event, dict):
        raise TypeError("not an object")
    at = iso(event.get("time"))
    if at is None:
        raise ValueError("no time")
    match = _CONV_ID.search(str(event.get("titleUrl") or ""))
    turns: list[Turn] = []
    details = [d for d in event.get("details") or [] if isinstance(d, dict)]
    for d in details:
        if isinstance(d.get("value"), str) and d["value"].strip() and d.get("name") in ("Request", "Response"):
            turns.append(Turn("user" if d["name"] == "Request" else "gemini", d["value"], at))
    for ui in event.get("userInteractions") or []:
        inner = ui.get("userInteraction") if isinstance(ui, dict) else None
        if isinstance(inner, dict):
            for key, role in (("request", "user"), ("response", "gemini")):
                if isinstance(inner.get(key), str) and inner[key].strip():
                    turns.append(Turn(role, inner[key], at))
    if not turns:
        title = str(event.get("title") or "")
        prompt = _PROMPTED.match(title)
        if prompt:
            turns.append(Turn("user", title[prompt.end() :], at))
            answer = "\n\n".join(
                html_text(h["html"]) for h in event.get("safeHtmlItem") or [] if isinstance(h, dict) and isinstance(h.get("html"), str)
            )
            files = [str(f) for f in event.get("attachedFiles") or [] if isinstance(f, str)]
            if files:
                turns[0] = Turn("user", turns[0].text + "\n\n" + "\n".join(f"Attached `{f}`." for f in files), at)
            if answer.strip():
                turns.append(Turn("gemini", answer, at))
    return at, (match.group(1) if match else None), turns


def _group(events: list[tuple[datetime, str | None, list[Turn], dict[str, Any]]]) -> list[Chat]:
    """Events of one conversation link together; the others in sessions of events under an hour apart."""
    chats: dict[str, Chat] = {}
    last: tuple[datetime, Chat] | None = None
    for at, conv_id, turns, _ in sorted(events, key=lambda e: e[0]):
        if conv_id is not None:
            chat = chats.get(conv_id)
            if chat is None:
                chat = chats[conv_id] = Chat("gemini", conv_id, _title(turns), at, at)
        elif last is not None and last[1].id.startswith("session-") and at - last[0] <= SESSION_GAP:
            chat = last[1]
        else:
            sid = "session-" + hashlib.sha256(at.isoformat().encode()).hexdigest()[:16]
            chat = chats[sid] = Chat("gemini", sid, _title(turns), at, at)
        chat.turns += turns
        chat.updated_at = max(chat.updated_at, at)
        last = (at, chat)
    return list(chats.values())


def _title(turns: list[Turn]) -> str:
    first = turns[0].text.strip().splitlines()[0] if turns and turns[0].text.strip() else "Gemini conversation"
    return first[:100]
