"""Documents: add a file or folder, list, show, remove."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.context import JsonFlag, full_id, service
from cli.items import ItemIdArg, SensOpt, SpaceOpt, TagOpt, _sens
from cli.output import console, items_table, print_json, render, shown, styled
from cli.search import EmbedFlag, finish_embedding
from vault import OWNER

app = typer.Typer(help="Documents: files and folders of notes, split into searchable chunks.", no_args_is_help=True)


@app.command()
def add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, help="A .txt, .md, .html or .pdf file, or a folder of them.")],
    space: SpaceOpt = None,
    tag: TagOpt = None,
    sensitivity: SensOpt = None,
    embed: EmbedFlag = True,
    json_out: JsonFlag = False,
) -> None:
    """Add a file or a whole folder. Unchanged files are skipped; changed ones replaced.

    Its text is searchable by keywords at once; its chunks are embedded before the command
    ends (a bar over chunks), or by the unlock session's background worker when one runs.

    Example: ctxvault doc add ~/notes --space work --tag notes
    """
    svc = service(ctx)
    sens = _sens(sensitivity) or "low"
    if path.is_dir():
        with _bar(json_out) as tick:
            report = svc.add_folder(OWNER, path, space=space or "personal", tags=tag, sensitivity=sens, progress=tick)
        if json_out:
            print_json(report)
            return
        console.print(f"added {report.added}, replaced {report.replaced}, unchanged {report.unchanged}, skipped {len(report.skipped)}")
        for reason in report.skipped:
            console.print(styled("  ", ("skipped", "yellow"), f" {shown(reason)}"))
        finish_embedding(ctx, embed=embed)
        return
    with _bar(json_out) as tick:
        added = svc.add_document(OWNER, path, space=space or "personal", tags=tag, sensitivity=sens, progress=tick)
    render(added, json_out, f"{added.action} {added.item_id} ({added.chunks} chunks)")
    finish_embedding(ctx, json_out, embed)


@contextmanager
def _bar(json_out: bool) -> Iterator[Callable[[int, int, str], None]]:
    """A progress bar over what the service counts (files while adding, then chunks while embedding)."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=json_out, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("adding", total=None)

        def tick(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, description=name[:40])

        yield tick


@app.command("list")
def list_cmd(ctx: typer.Context, limit: int = 100, json_out: JsonFlag = False) -> None:
    """List documents.

    Example: ctxvault doc list --json
    """
    page = service(ctx).list_documents(OWNER, limit=limit)
    render(page, json_out, items_table(page.items, title=f"{page.total} documents"))


@app.command()
def show(ctx: typer.Context, item_id: ItemIdArg, json_out: JsonFlag = False) -> None:
    """Show a document's file facts and its chunks.

    Example: ctxvault doc show 01J9Z3QK5V2Y6N8X0M4T7R1B2C
    """
    detail = service(ctx).show_document(OWNER, full_id(ctx, "item", item_id))
    if json_out:
        print_json(detail)
        return
    console.print(
        styled(
            (shown(detail.item.text), "bold"),
            f"  {shown(detail.path)}  {shown(detail.mime)}  {detail.size} bytes  {len(detail.chunks)} chunks",
        )
    )
    for n, chunk in enumerate(detail.chunks):
        console.print(styled((f"#{n}", "dim"), f" {shown(chunk[:300])}"))


@app.command()
def remove(ctx: typer.Context, item_id: ItemIdArg, json_out: JsonFlag = False) -> None:
    """Remove a document and its chunks from search (purge erases it).

    Example: ctxvault doc remove 01J9Z3QK5V2Y6N8X0M4T7R1B2C
    """
    item = service(ctx).remove_document(OWNER, full_id(ctx, "item", item_id))
    render(item, json_out, f"removed {item.id}")
