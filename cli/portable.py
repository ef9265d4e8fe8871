"""Export and import: leave with everything, arrive with everything."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.context import JsonFlag, read_secret_file, service
from cli.errors import err_console
from cli.items import _kind, _sens
from cli.output import console, neutral, print_json, render, shown, styled, write_private
from cli.search import EmbedFlag, finish_embedding
from cli.streams import STDIO, binary_to_stdout, refuse_binary_on_terminal
from schemas.portable import IMPORT_FORMATS, ImportFormat, Selection
from vault import OWNER

if TYPE_CHECKING:
    from vault import VaultService

Tick = Callable[[int, int, str], None]


def register(app: typer.Typer) -> None:
    app.command(name="export")(export)
    app.command(name="import")(import_cmd)
    app.command(name="conflicts")(conflicts)


@contextmanager
def _progress(enabled: bool) -> Iterator[Tick]:
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, disable=not enabled, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("reading", total=None)

        def tick(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what[:30])

        yield tick


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("use an ISO date, e.g. 2026-01-31", param_hint="--since") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def export(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Bundle file to write (default: ctxvault-export-DATE.age); - writes to stdout.")
    ] = None,
    recipient: Annotated[
        list[str] | None, typer.Option("--recipient", help="age1… key, SSH public key, or a file with one (repeatable).")
    ] = None,
    passphrase_file: Annotated[
        Path | None, typer.Option("--passphrase-file", help="Seal with the passphrase in this file (- for stdin).")
    ] = None,
    plaintext: Annotated[Path | None, typer.Option("--plaintext", help="Write an UNENCRYPTED bundle folder here instead.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="bundle (PAM + age) or markdown (a readable profile).")] = "bundle",
    space: Annotated[list[str] | None, typer.Option("--space", help="Only this space (repeatable).")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only memory, preference or document.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Only items with this tag (repeatable).")] = None,
    max_sensitivity: Annotated[str | None, typer.Option("--max-sensitivity", help="Only items up to low, medium or high.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only items created on or after this ISO date.")] = None,
    salvage: Annotated[
        bool, typer.Option("--salvage", help="Damaged vault: export every readable row, list what could not be read.")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Export everything, or one slice, as an encrypted PAM bundle or a Markdown profile.

    A vault reported corrupt (exit 13) can still give what is readable: `ctxvault export --salvage`.
    -o - writes the bundle (or the profile) to stdout, never to a terminal; the summary then goes to
    stderr: ctxvault export --passphrase-file pw.txt -o - | ssh laptop 'cat > vault.age'

    Example: ctxvault export --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --out vault.age
    """
    selection = Selection(
        spaces=space or None,
        kinds=_kind(kind),
        tags=tag or None,
        max_sensitivity=_sens(max_sensitivity),
        since=_since(since),
    )
    svc = service(ctx)
    if fmt == "markdown":
        if salvage:
            raise typer.BadParameter("--salvage writes a bundle; it does not combine with --format markdown")
        text = svc.export_profile(OWNER, selection)
        if out is None or str(out) == STDIO:
            print(text, end="")
            return
        # The profile is plaintext by nature (it is for pasting); it is at least private.
        write_private(out, text)
        err_console.print(f"warning: {neutral(str(out))} holds your profile in plaintext (mode 0600)", markup=False)
        render({"path": str(out), "format": "markdown", "bytes": len(text.encode())}, json_out, f"wrote the profile to {shown(str(out))}")
        return
    if fmt != "bundle":
        raise typer.BadParameter("format must be bundle or markdown", param_hint="--format")
    if plaintext is not None and (recipient or passphrase_file or out):
        raise typer.BadParameter("--plaintext writes a folder; it does not combine with --out, --recipient or --passphrase-file")
    if plaintext is not None and str(plaintext) == STDIO:
        raise typer.BadParameter("--plaintext writes a folder; it cannot go to stdout", param_hint="--plaintext")
    to_stdout = out is not None and str(out) == STDIO
    if to_stdout:
        refuse_binary_on_terminal("an encrypted bundle")
    passphrase = read_secret_file(passphrase_file) if passphrase_file else None
    target = plaintext or out or Path(f"ctxvault-export-{datetime.now(UTC):%Y%m%d-%H%M%S}.age")
    if plaintext is not None:
        err_console.print(
            styled(("warning:", "yellow"), " writing an UNENCRYPTED bundle: anyone who can read this folder reads your vault.")
        )
    with contextlib.ExitStack() as stack:
        if to_stdout:
            target = stack.enter_context(binary_to_stdout())
        with _progress(not json_out) as tick:
            summary = svc.export_bundle(
                OWNER, selection, target, recipients=recipient, passphrase=passphrase, plaintext=plaintext is not None, progress=tick,
                salvage=salvage,
            )  # fmt: skip
    if to_stdout:
        summary = summary.model_copy(update={"path": STDIO})
    for lost in summary.unreadable:
        err_console.print(f"warning: not exported: {lost}", markup=False)
    if not summary.audited:
        err_console.print("warning: the audit log is damaged: this export is not recorded in it", markup=False)
    if json_out and not to_stdout:
        print_json(summary)
        return
    if json_out:
        sys.stderr.write(summary.model_dump_json() + "\n")  # stdout holds the bundle
        return
    c = summary.counts
    (err_console if to_stdout else console).print(
        f"exported {c.memories} memories, {c.preferences} preferences (+{c.preference_versions} older values), "
        f"{c.documents} documents, {c.vectors} vectors → {'stdout' if to_stdout else shown(summary.path)} "
        f"({summary.bytes} bytes, {summary.encryption})"
    )


def import_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, help="Bundle, PAM file or folder, provider export, memory.jsonl, notes folder.")],
    source: Annotated[str, typer.Option("--from", help=f"auto or one of: {', '.join(IMPORT_FORMATS)}.")] = "auto",
    identity: Annotated[Path | None, typer.Option("--identity", help="age identity (age-keygen) or SSH private key file.")] = None,
    passphrase_file: Annotated[
        Path | None, typer.Option("--passphrase-file", help="File with the bundle's passphrase (- for stdin).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")] = False,
    embed: EmbedFlag = True,
    space: Annotated[str | None, typer.Option("--space", help="Put every imported item in this space.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Import a bundle or another provider's export; re-importing changes nothing.

    Example: ctxvault import ~/Downloads/chatgpt-export --dry-run
    """
    if source != "auto" and source not in IMPORT_FORMATS:
        raise typer.BadParameter(f"--from must be auto or one of {', '.join(IMPORT_FORMATS)}", param_hint="--from")
    if identity and passphrase_file:
        raise typer.BadParameter("give --identity or --passphrase-file, not both")
    passphrase = read_secret_file(passphrase_file) if passphrase_file else None
    fmt = None if source == "auto" else cast(ImportFormat, source)
    svc = service(ctx)
    lacking = None if dry_run else svc.retrieval_stats(OWNER).missing_vectors
    try:
        with _progress(not json_out) as tick:
            summary = svc.import_source(
                OWNER, path, fmt, identity_file=identity, passphrase=passphrase, space=space, dry_run=dry_run, progress=tick
            )
    except KeyboardInterrupt:
        raise _interrupted(svc, lacking) from None
    if json_out:
        if not dry_run:
            finish_embedding(ctx, json_out=True, embed=embed)
        print_json(summary)
        return
    verb: Literal["would import", "imported"] = "would import" if dry_run else "imported"
    console.print(f"detected {summary.detected}; {verb}: {summary.new} new, {summary.updated} updated, {summary.unchanged} unchanged")
    if summary.vectors_reused:
        console.print(f"reused {summary.vectors_reused} embeddings from the bundle")
    if summary.forgotten:
        console.print(f"forgot {summary.forgotten} item(s) the source had forgotten or purged")
    for c in summary.conflicts[:50]:
        side = "this vault's" if c.kept == "vault" else "the imported"
        console.print(
            styled(
                "  ",
                ("conflict", "red"),
                f" {shown(c.item_id)}: changed on both sides; kept {side} as current, the other as "
                f"{'version ' + str(c.version) if c.version else 'a version'} (ctxvault conflicts)",
            )
        )
    for s in summary.skipped[:50]:
        console.print(styled("  ", ("skipped", "yellow"), f" {shown(s.ref)}: {shown(s.reason)}"))
    if len(summary.skipped) > 50:
        console.print(f"  … and {len(summary.skipped) - 50} more skipped (see --json)")
    if not dry_run:
        finish_embedding(ctx, embed=embed)


def _interrupted(svc: VaultService, lacking_before: int | None) -> typer.Exit:
    """Say what an import stopped by Ctrl-C left: nothing (it had not committed), or rows waiting for vectors."""
    if lacking_before is None:
        err_console.print("interrupted: a dry run writes nothing")
        return typer.Exit(130)
    lacking = svc.retrieval_stats(OWNER).missing_vectors
    if lacking > lacking_before:
        err_console.print(
            f"interrupted after the import committed: its items are in the vault, {lacking} unit(s) still wait for their vectors "
            "(keyword search finds them; meaning search does not yet): run `ctxvault reindex` (or `ctxvault doctor --repair`)"
        )
    else:
        err_console.print("interrupted before the import committed: nothing was imported; run the same import again")
    return typer.Exit(130)


def conflicts(
    ctx: typer.Context,
    resolve: Annotated[int | None, typer.Option("--resolve", help="Close this conflict (its id in the list).")] = None,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="With --resolve: make this version current (default: keep the current one).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """List items an import found changed on both sides (both are kept), or resolve one by choosing a version.

    Example: ctxvault conflicts --resolve 3 --version 2
    """
    svc = service(ctx)
    if version is not None and resolve is None:
        raise typer.BadParameter("--version needs --resolve ID", param_hint="--version")
    if resolve is not None:
        item = svc.resolve_conflict(OWNER, resolve, version)
        render(item, json_out, f"resolved conflict {resolve}: {item.id} is at the chosen version")
        return
    found = svc.conflicts(OWNER)
    if json_out:
        print_json(found)
        return
    if not found:
        console.print("no open conflicts")
    for c in found:
        current = "this vault's edit" if c.kept == "vault" else "the imported edit"
        console.print(
            f"{c.id}  {shown(c.item_id)} ({c.kind})  current: {current} of {c.current_updated_at:%Y-%m-%d %H:%M:%S}; "
            f"other side: version {c.version} of {c.other_updated_at:%Y-%m-%d %H:%M:%S}  from {shown(c.source)}"
        )
