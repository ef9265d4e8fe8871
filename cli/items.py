"""Memories and items: add, list, show, edit, forget, purge, spaces (search is in cli/search.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, assert_never, cast

import typer

from cli.context import JsonFlag, full_id, service
from cli.output import console, items_table, print_json, render, shown
from cli.streams import STDIO, read_text_file, text_arg
from schemas.items import Kind, MemoryIn, RememberResult, Sensitivity
from vault import OWNER, Principal, VaultService

SensOpt = Annotated[str | None, typer.Option("--sensitivity", help="low, medium or high.")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")]
SpaceOpt = Annotated[str | None, typer.Option("--space", help="Space, e.g. personal, work, health.")]
AsOpt = Annotated[str | None, typer.Option("--as", help="See exactly what this app would see.")]
ItemIdArg = Annotated[str, typer.Argument(help="The item's id, or any unique prefix of it (4+ characters), e.g. 01M8VYAR.")]


def register(app: typer.Typer) -> None:
    for fn in (add, list_cmd, show, edit, history, restore, forget, purge, spaces):
        name = {"list_cmd": "list"}.get(fn.__name__, fn.__name__)
        app.command(name=name)(fn)


def _sens(value: str | None) -> Sensitivity | None:
    if value is None:
        return None
    if value not in ("low", "medium", "high"):
        raise typer.BadParameter("sensitivity must be low, medium or high", param_hint="--sensitivity")
    return cast(Sensitivity, value)


def _kind(value: str | None) -> list[Kind] | None:
    if value is None:
        return None
    if value not in ("memory", "preference", "document"):
        raise typer.BadParameter("kind must be memory, preference or document", param_hint="--kind")
    return [cast(Kind, value)]


def _principal(svc: VaultService, as_app: str | None) -> Principal:
    return OWNER if as_app is None else svc.principal_for_app(as_app)


def add(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="The memory: a fact or event in a sentence or two; - reads it from stdin.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the memory's text from this file (- for stdin).")] = None,
    space: SpaceOpt = None,
    tag: TagOpt = None,
    sensitivity: SensOpt = None,
    merge: Annotated[
        bool | None,
        typer.Option(
            "--merge/--no-merge",
            help="Update the most similar memory instead of adding (--merge), or always add (--no-merge). "
            "Default: update only a memory that states the same fact; keep a merely similar one and say so.",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Remember something. The same fact said again updates it; a similar memory is kept and reported.

    The text can come from stdin (TEXT is -) or a file (--file), e.g. when it is longer than
    one command-line argument may be: echo "I prefer aisle seats" | ctxvault add -
    or: ctxvault add --file long-memory.txt --space work

    Example: ctxvault add "I prefer window seats on long flights" --space travel --tag flights
    """
    if (text is None) == (file is None):
        raise typer.BadParameter("give the TEXT (- for stdin) or --file PATH" + (", not both" if text is not None else ""))
    memory = MemoryIn(
        text=text_arg(text) if text is not None else read_text_file(file or Path(STDIO)),
        space=space or "personal",
        tags=tag or [],
        sensitivity=_sens(sensitivity) or "low",
    )
    result = service(ctx).remember(OWNER, memory, merge=merge)
    render(result, json_out, _remembered(result))


def _remembered(result: RememberResult) -> str:
    """What add did, in words: a near-duplicate kept apart is said plainly, never hidden behind a success line."""
    score = f" ({result.similarity:.2f})" if result.similarity is not None else ""
    match result.action:
        case "unchanged":
            lines = [f"unchanged {result.item.id}: already stored"]
        case "updated":
            lines = [f"updated {result.item.id}{score}: merged into the existing memory"]
        case "added":
            lines = [f"added {result.item.id}"]
        case _ as never:
            assert_never(never)
    for s in result.similar:
        snippet = s.snippet if len(s.snippet) <= 60 else s.snippet[:59] + "…"
        lines.append(f"similar to {s.id} ({s.score:.2f}) '{shown(snippet)}': kept both (--merge updates it instead)")
    return "\n".join(lines)


def list_cmd(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind", help="memory, preference or document.")] = None,
    space: SpaceOpt = None,
    tag: TagOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_app: AsOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """List items, newest first.

    Example: ctxvault list --kind memory --space work --limit 20
    """
    svc = service(ctx)
    page = svc.list_items(
        _principal(svc, as_app), kinds=_kind(kind), spaces=[space] if space else None, tags=tag, limit=limit, offset=offset
    )
    render(page, json_out, items_table(page.items, title=f"{len(page.items)} of {page.total}"))


def show(ctx: typer.Context, item_id: ItemIdArg, json_out: JsonFlag = False) -> None:
    """Show one item with its provenance. Every id the CLI takes can be shortened to a unique prefix.

    Example: ctxvault show 01J9Z3QK --json
    """
    item = service(ctx).get_item(OWNER, full_id(ctx, "item", item_id))
    if json_out:
        print_json(item)
        return
    for field, value in item.model_dump(mode="json").items():
        console.print(f"{field:>14}: {shown(str(value))}")


def edit(
    ctx: typer.Context,
    item_id: ItemIdArg,
    text: Annotated[str | None, typer.Option("--text", help="New text (memories only); - reads it from stdin.")] = None,
    space: SpaceOpt = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Replace the tags (repeatable).")] = None,
    sensitivity: SensOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Edit a memory's text, or any item's space, tags or sensitivity.

    Example: ctxvault edit 01J9Z3QK5V2Y6N8X0M4T7R1B2C --text "I prefer aisle seats" --sensitivity medium
    """
    if text is None and space is None and tag is None and sensitivity is None:
        raise typer.BadParameter("nothing to change: give --text, --space, --tag or --sensitivity")
    new_text = text_arg(text) if text is not None else None
    item = service(ctx).edit(OWNER, full_id(ctx, "item", item_id), text=new_text, space=space, tags=tag, sensitivity=_sens(sensitivity))
    render(item, json_out, f"edited {item.id}")


def history(ctx: typer.Context, item_id: ItemIdArg, json_out: JsonFlag = False) -> None:
    """Show an item's earlier versions (kept by every edit, update, merge and restore), oldest first;
    a document's versions name the file each held.

    Example: ctxvault history 01J9Z3QK5V2Y6N8X0M4T7R1B2C
    """
    found = service(ctx).item_history(OWNER, full_id(ctx, "item", item_id))
    if json_out:
        print_json(found)
        return
    item = found.item
    for v in found.versions:
        console.print(
            f"v{v.version}  {v.saved_at:%Y-%m-%d %H:%M:%S}  by {shown(v.saved_by)}  {shown(f'[{v.space}]')} {shown(','.join(v.tags))} "
            f"({v.sensitivity})  replaced by {shown(v.replaced_by)} {v.replaced_at:%Y-%m-%d %H:%M:%S}"
        )
        console.print(f"    {shown(v.text)}")
        if v.file is not None:  # a document version keeps its file: restore brings its content back
            console.print(f"    file {shown(v.file.filename)} ({v.file.size:,} bytes, sha256 {v.file.sha256[:12]})")
    console.print(
        f"v{found.current_version}  {item.provenance.updated_at:%Y-%m-%d %H:%M:%S}  current  {shown(f'[{item.space}]')} "
        f"{shown(','.join(item.tags))} ({item.sensitivity})"
    )
    console.print(f"    {shown(item.text)}")
    if found.conflicts:
        console.print(f"open conflicts: {', '.join(map(str, found.conflicts))} (ctxvault conflicts)")


def restore(
    ctx: typer.Context,
    item_id: ItemIdArg,
    version: Annotated[int, typer.Option("--version", min=1, help="The version to make current (see `ctxvault history`).")],
    json_out: JsonFlag = False,
) -> None:
    """Make an earlier version of an item current again; the state it replaces is kept as a new version.

    Example: ctxvault restore 01J9Z3QK5V2Y6N8X0M4T7R1B2C --version 1
    """
    item = service(ctx).restore(OWNER, full_id(ctx, "item", item_id), version)
    render(item, json_out, f"restored {item.id} to version {version}")


def forget(ctx: typer.Context, item_id: ItemIdArg, json_out: JsonFlag = False) -> None:
    """Forget an item: it leaves search at once; `purge` erases it for good.

    Example: ctxvault forget 01J9Z3QK5V2Y6N8X0M4T7R1B2C
    """
    item = service(ctx).forget(OWNER, full_id(ctx, "item", item_id))
    render(item, json_out, f"forgot {item.id} (run `ctxvault purge` to erase it)")


def purge(
    ctx: typer.Context,
    item_id: Annotated[
        str | None, typer.Argument(help="One item to erase now, by id or unique prefix (default: all forgotten items).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Erase forgotten items (or one item) for good, then compact the database.

    Example: ctxvault purge --yes
    """
    if not yes and not typer.confirm("Erase for good? This cannot be undone.", default=False):
        raise typer.Exit(1)
    count = service(ctx).purge(OWNER, full_id(ctx, "item", item_id) if item_id is not None else None)
    render({"purged": count}, json_out, f"purged {count} item(s)")


def spaces(ctx: typer.Context, as_app: AsOpt = None, json_out: JsonFlag = False) -> None:
    """List spaces with their item counts.

    Example: ctxvault spaces --json
    """
    svc = service(ctx)
    rows = svc.spaces(_principal(svc, as_app))
    if json_out:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{shown(r.space):<20} {r.memories:>6} memories {r.preferences:>5} preferences {r.documents:>5} documents")
