"""Render service results: JSON for scripts, rich tables for people."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, TypeAdapter
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from schemas.items import Item
from vault.unsafe_text import is_unsafe

# No emoji codes, no highlighting: text from apps and imports is printed as it is (see ``shown``).
console = Console(highlight=False, soft_wrap=True, emoji=False)

# What a terminal would act on rather than print: every character of vault.unsafe_text's
# categories (controls, format characters such as bidi overrides and zero-width marks, line and
# paragraph separators). Printable ASCII never needs the category look-up.
_CANDIDATE = re.compile(r"[^\x20-\x7e]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if not is_unsafe(char):
        return char
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def neutral(text: str) -> str:
    """``text`` with every control, escape and bidi character made visible (ESC → ``\\x1b``), for a terminal."""
    return _CANDIDATE.sub(_visible, text)


def shown(text: object) -> str:
    """App- or import-controlled text for a rich print: neutralised, and its ``[markup]`` printed as written.

    Every renderer passes such text (names, purposes, scopes, memory text, tags, titles, paths,
    audit details) through here, so nothing an app wrote can move the cursor, clear the
    screen, recolour or reorder a line, or pose as another row.
    """
    return escape(neutral(str(text)))


def data_table(columns: Sequence[str], rows: Sequence[Sequence[str | Sequence[str]]], title: str | None = None) -> Table:
    """A table whose every cell is shown as data (a list of strings is one cell, a line each)."""
    table = Table(title=shown(title) if title is not None else None, show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(shown(cell) if isinstance(cell, str) else "\n".join(shown(c) for c in cell) for cell in row))
    return table


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, object] | list[object]) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, list | tuple) and value and isinstance(value[0], BaseModel):
        text = json.dumps([v.model_dump(mode="json") for v in value], indent=2, ensure_ascii=False)  # type: ignore[union-attr]
    else:
        text = json.dumps(TypeAdapter(object).dump_python(value, mode="json"), indent=2, ensure_ascii=False)
    # Plain print: rich would wrap long lines and break the JSON.
    print(text)


def items_table(items: Sequence[Item], title: str | None = None) -> Table:
    rows = []
    for i in items:
        text = f"{i.key} = {i.text}" if i.kind == "preference" else i.text
        rows.append([i.id, i.kind, i.space, text if len(text) < 200 else text[:197] + "…", ",".join(i.tags), i.sensitivity])
    return data_table(("id", "kind", "space", "text", "tags", "sens."), rows, title=title)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by the owner only from its first byte, then move it in place."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def render(value: BaseModel | Sequence[BaseModel] | dict[str, object], json_out: bool, human: object) -> None:
    """Print ``value`` as JSON for scripts, or ``human`` (text or a rich renderable) for people."""
    if json_out:
        print_json(value)
    else:
        console.print(human)
