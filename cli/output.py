"""Render service results: JSON for scripts, rich tables for people, tab-separated lines for pipes.

Nothing printed is ever read as rich markup: both consoles are built with ``markup=False``,
so a path, an error message or a memory holding ``[/]`` prints as written. Styles are
applied only through ``styled`` (rich ``Text`` spans), never by markup in a string.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, TypeAdapter
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from schemas.items import Item
from vault.unsafe_text import is_unsafe

# No markup, no emoji codes, no highlighting: every string is printed as it is (see ``shown``).
console = Console(highlight=False, soft_wrap=True, emoji=False, markup=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)

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
    """App- or import-controlled text for a print: neutralised (the consoles read no markup, so ``[x]`` stays as written).

    Every renderer passes such text (names, purposes, scopes, memory text, tags, titles, paths,
    audit details) through here, so nothing an app wrote can move the cursor, clear the
    screen, recolour or reorder a line, or pose as another row.
    """
    return neutral(str(text))


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line with styled spans, e.g. ``styled(("error:", "bold red"), " ", message)``: no markup is parsed."""
    return Text.assemble(*parts)


ID_COLUMNS = frozenset({"id"})
"""Columns holding a 26-character id: never folded on a terminal, so it can be copied whole."""


class DataTable:
    """Rows of data: a rich table on a terminal; tab-separated lines (a header, then a row each) anywhere else.

    In a pipe every cell is on its row's one line, whole (``ctxvault list | cut -f1`` gives the
    ids); cells are neutralised, so a tab or newline inside one is shown as ``\\t``/``\\n``.
    """

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None) -> None:
        self.columns, self.rows, self.title = columns, rows, title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not console.is_terminal:
            for line in (self.columns, *self.rows):
                yield Segment("\t".join(cell.replace("\n", " ") for cell in line) + "\n")
            return
        table = Table(title=self.title, show_lines=False)
        for col in self.columns:
            if col in ID_COLUMNS:
                table.add_column(col, no_wrap=True, min_width=26)
            else:
                table.add_column(col, overflow="fold")
        for row in self.rows:
            table.add_row(*row)
        yield table


def data_table(columns: Sequence[str], rows: Sequence[Sequence[str | Sequence[str]]], title: str | None = None) -> DataTable:
    """A table whose every cell is shown as data (a list of strings is one cell, a line each on a terminal)."""
    cells = [[shown(cell) if isinstance(cell, str) else "\n".join(shown(c) for c in cell) for cell in row] for row in rows]
    return DataTable(columns, cells, shown(title) if title is not None else None)


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, object] | list[object]) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, list | tuple) and value and isinstance(value[0], BaseModel):
        text = json.dumps([v.model_dump(mode="json") for v in value], indent=2, ensure_ascii=False)  # type: ignore[union-attr]
    else:
        text = json.dumps(TypeAdapter(object).dump_python(value, mode="json"), indent=2, ensure_ascii=False)
    # Plain print: rich would wrap long lines and break the JSON.
    print(text)


def items_table(items: Sequence[Item], title: str | None = None) -> DataTable:
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
