"""What the Vault pages share: hostile text made visible, item cells, the form parts, notices and errors."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from html import escape
from typing import get_args

from fastapi.responses import HTMLResponse

from mcp_server.console.context import Console, Owner
from mcp_server.console.html import alert
from schemas.items import Item, Kind, Sensitivity, limit_problem
from vault.errors import InvalidInput, VaultError
from vault.unsafe_text import is_unsafe

KINDS: tuple[str, ...] = get_args(Kind)
SENSITIVITIES: tuple[str, ...] = get_args(Sensitivity)
SHORT_CHARS = 160
# What a redirect's ?done= may say: the notice shown is this text, never the URL's.
NOTICES = {
    "added": "Memory added.",
    "updated": "An existing memory said the same: it was updated.",
    "unchanged": "That memory was already in the vault: nothing changed.",
    "pref": "Preference set (its previous value is kept in its history).",
    "edited": "Saved. The previous version is kept in the history below.",
    "same": "Nothing changed.",
    "restored": "Version restored. The state it replaced is kept in the history.",
    "forgotten": "Forgotten: the item left search at once. Unforget it, or purge it for good.",
    "unforgotten": "Unforgotten: the item is back in search.",
    "purged": "Purged: the item and its history are erased.",
    "uploaded": "Document uploaded and indexed.",
    "replaced": "A document uploaded earlier under this name was replaced.",
    "doc-unchanged": "This document was already in the vault: nothing changed.",
}
_CANDIDATE = re.compile(r"[^\x20-\x7e\n]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if not is_unsafe(char):
        return char
    code = ord(char)
    return "\\t" if char == "\t" else f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text: str, limit: int | None = None) -> str:
    """App- or import-written text for a page: controls, escapes, bidi and zero-width characters made visible
    (ESC as ``\\x1b``, U+202E as ``\\u202e``), escaped, and isolated in <bdi> so it cannot reorder the page."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return f"<bdi>{escape(_CANDIDATE.sub(_visible, text))}</bdi>"


def when(moment: datetime | None) -> str:
    return "" if moment is None else escape(moment.strftime("%Y-%m-%d %H:%M UTC"))


def item_url(owner: Owner, item_id: str) -> str:
    return f"{owner.base}/vault/item/{item_id}"


def item_label(item: Item, limit: int | None = SHORT_CHARS) -> str:
    """The item's words: a preference as ``key: value``, a document by its title."""
    text = f"{item.key}: {item.text}" if item.kind == "preference" and item.key else item.text
    return shown(text, limit)


def tags_text(tags: Sequence[str]) -> str:
    return shown(", ".join(tags)) if tags else "<span class=hint>none</span>"


def parse_tags(raw: str) -> list[str]:
    """Tags typed as a list separated by commas or spaces.

    Raises:
        InvalidInput: a tag the item limits refuse."""
    tags = [t for t in re.split(r"[,\s]+", raw.strip()) if t]
    if problem := limit_problem(tags=tags):
        raise InvalidInput(problem)
    return tags


def parse_space(raw: str, default: str = "personal") -> str:
    space = raw.strip() or default
    if problem := limit_problem(space=space):
        raise InvalidInput(problem)
    return space


def parse_sensitivity(raw: str, default: Sensitivity = "low") -> Sensitivity:
    if not raw:
        return default
    for level in get_args(Sensitivity):
        if raw == level:
            return level  # type: ignore[no-any-return]
    raise InvalidInput("sensitivity is low, medium or high")


def parse_date(raw: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInput("a date is written YYYY-MM-DD") from exc


def select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: str) -> str:
    opts = "".join(f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(text)}</option>' for v, text in options)
    return f'<label>{escape(label)} <select name="{escape(name)}">{opts}</select></label>'


def text_input(name: str, label: str, value: str = "", *, kind: str = "text", extra: str = "") -> str:
    return f'<label>{escape(label)} <input type={kind} name="{escape(name)}" value="{escape(value)}"{extra}></label>'


def sensitivity_select(chosen: str = "low", name: str = "sensitivity", label: str = "Sensitivity") -> str:
    return select(name, label, [(s, s) for s in SENSITIVITIES], chosen)


def space_input(value: str, spaces: Sequence[str], list_id: str) -> str:
    """A space typed or picked from the existing ones (a datalist: no script needed)."""
    options = "".join(f'<option value="{escape(s)}">' for s in spaces)
    field = text_input("space", "Space", value, extra=f' list="{escape(list_id)}" required pattern="[a-z0-9_-]{{1,64}}"')
    return f'{field}<datalist id="{escape(list_id)}">{options}</datalist>'


def notice_for(query: Mapping[str, str]) -> str:
    message = NOTICES.get(query.get("done", ""))
    return f"<p role=status class=notice>{escape(message)}</p>" if message else ""


def refused(console: Console, owner: Owner, exc: VaultError, back: str, label: str = "Back") -> HTMLResponse:
    """A core refusal as a page: its message in the alert (console.js shows it beside an upload form)."""
    body = f'{alert(exc.message)}<p><a href="{escape(back)}">{escape(label)}</a></p>'
    return console.render(owner, "vault", "Not done", body, exc.http_status)


def forbidden(console: Console, owner: Owner, back: str) -> HTMLResponse:
    body = f'{alert("This form has expired or was not sent by this page: open the page again and retry.")}<p><a href="{escape(back)}">Back</a></p>'
    return console.render(owner, "vault", "Not done", body, 403)
