"""Search and the derived indexes: search, reindex, stats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.context import JsonFlag, service, state
from cli.items import AsOpt, SpaceOpt, TagOpt, _kind, _principal
from cli.output import console, print_json, shown, styled
from cli.streams import text_arg
from schemas.items import SearchQuery
from vault import OWNER, session
from vault.settings import NEW_VAULT_MODEL, Settings


def register(app: typer.Typer) -> None:
    app.command(name="search")(search)
    app.command(name="reindex")(reindex)
    app.command(name="stats")(stats)


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for, in your own words; - reads it from stdin.")],
    k: Annotated[int, typer.Option("--k", "--limit", min=1, max=200, help="How many results.")] = 10,
    kind: Annotated[str | None, typer.Option("--kind", help="memory, preference or document.")] = None,
    space: SpaceOpt = None,
    tag: TagOpt = None,
    since: Annotated[datetime | None, typer.Option("--since", help="Only items created on or after (ISO date).")] = None,
    until: Annotated[datetime | None, typer.Option("--until", help="Only items created before (ISO date).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, lexical or dense.")] = "hybrid",
    as_app: AsOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Search your vault: keywords and meaning together (hybrid), or one of them.

    Example: ctxvault search "coffee order" --k 5 --space personal
    """
    if mode not in ("hybrid", "lexical", "dense"):
        raise typer.BadParameter("mode must be hybrid, lexical or dense", param_hint="--mode")
    svc = service(ctx)
    q = SearchQuery(
        text=text_arg(query),
        limit=k,
        kinds=_kind(kind),
        spaces=[space] if space else None,
        tags=tag,
        since=since,
        until=until,
        mode=cast(Literal["hybrid", "lexical", "dense"], mode),
    )
    page = svc.search(_principal(svc, as_app), q)
    if json_out:
        print_json(page)
        return
    if not page.hits:
        console.print("no results")
    for h in page.hits:
        label = f"{h.key} = " if h.key else (f"{h.title} #{h.chunk}: " if h.title else "")
        console.print(styled((f"{h.score:7.3f}", "bold"), f" {h.item_id} [{h.kind}/{shown(h.space)}] {shown(label + h.snippet)}"))


def reindex(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help=f"Switch the vault to this embedding model and re-embed everything with it (new vaults get {NEW_VAULT_MODEL}).",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Re-embed every item whose vector is missing or made by another model, and rebuild the index.

    The vault keeps the model it was created with; --model switches it (e.g. an older vault to the
    faster int8 variant). Resumable: an interrupted run keeps what it wrote and `ctxvault reindex`
    goes on; keyword search works meanwhile.

    Example: ctxvault reindex --model all-MiniLM-L6-v2#int8
    """
    svc = service(ctx)
    if json_out:
        print_json(svc.reindex(OWNER, model=model))
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("embedding chunks", total=None)
        report = svc.reindex(OWNER, progress=lambda done, total: bar.update(task, completed=done, total=total), model=model)
    if report.switched_from:
        console.print(f"switched the vault's model from {report.switched_from} to {report.model}")
    console.print(
        f"embedded {report.embedded} unit(s) with {report.model}; index holds {report.index_size} vector(s) ({report.index_kind})"
    )


def waiting_note(settings: Settings, items: int, units: int) -> str | None:
    """The line that says how many items wait for their embeddings and what embeds them; None when none wait."""
    if not units:
        return None
    what = f"{items:,} item{'' if items == 1 else 's'} waiting for embeddings"
    if units != items:
        what += f" ({units:,} chunks)"
    if session.status(settings) is not None:
        return f"{what}: run `ctxvault reindex` or keep the session unlocked (it embeds them in the background)"
    return f"{what}: run `ctxvault reindex` or start a session with `ctxvault unlock` (it embeds them in the background)"


EmbedFlag = Annotated[
    bool,
    typer.Option("--embed/--no-embed", help="Without an unlock session, embed what this leaves waiting before exiting (default)."),
]


def finish_embedding(ctx: typer.Context, json_out: bool = False, embed: bool = True) -> None:
    """After a bulk write without an unlock session: embed what it left waiting, before this process exits.

    Its rows are committed and searchable by keywords already; this adds their vectors (a bar
    over chunks). Ctrl-C stops it and keeps what it embedded: `ctxvault reindex` resumes.
    With a session, the agent's background worker does it instead, and this only says so.
    """
    settings = state(ctx).settings
    svc = service(ctx)
    if embed and session.status(settings) is None and svc.retrieval_stats(OWNER).waiting_units:
        try:
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=console, transient=True, disable=json_out,
            ) as bar:  # fmt: skip
                task = bar.add_task("embedding chunks", total=None)
                svc.reindex(OWNER, progress=lambda done, total: bar.update(task, completed=done, total=total))
        except KeyboardInterrupt:
            console.print("stopped embedding: what was embedded is kept")
    if not json_out:
        print_waiting(ctx)


def print_waiting(ctx: typer.Context) -> None:
    """After a bulk write: say how much of the vault waits for embeddings, if any (found by keywords meanwhile)."""
    report = service(ctx).retrieval_stats(OWNER)
    if note := waiting_note(state(ctx).settings, report.waiting_items, report.waiting_units):
        console.print(note)


def stats(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Show the retrieval state: model, backend, vectors, and whether a reindex is needed.

    Example: ctxvault stats --json
    """
    report = service(ctx).retrieval_stats(OWNER)
    if json_out:
        print_json(report)
        return
    for field, value in report.model_dump().items():
        console.print(f"{field:>16}: {shown(value)}")
    if note := waiting_note(state(ctx).settings, report.waiting_items, report.waiting_units):
        console.print(note)
    if report.stale_vectors:
        console.print("vectors of another model exist: run `ctxvault reindex`")
