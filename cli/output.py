"""Render service results: JSON for scripts, rich tables for people."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, TypeAdapter
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from schemas.items import Item

console = Console(highlight=False, soft_wrap=True)


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
    table = Table(title=title, show_lines=False)
    for col in ("id", "kind", "space", "text", "tags", "sens."):
        table.add_column(col, overflow="fold")
    for i in items:
        text = f"{i.key} = {i.text}" if i.kind == "preference" else i.text
        table.add_row(i.id, i.kind, i.space, escape(text if len(text) < 200 else text[:197] + "…"), escape(",".join(i.tags)), i.sensitivity)
    return table


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
