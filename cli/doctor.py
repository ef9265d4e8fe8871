"""`ctxvault doctor`: check the vault, and rebuild its derived parts from the canonical rows."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress, TaskID

from cli.context import JsonFlag, service
from cli.output import console, print_json, shown
from vault import OWNER
from vault.doctor import describe
from vault.errors import VaultUnhealthy


def register(app: typer.Typer) -> None:
    app.command(name="doctor")(doctor)


def doctor(
    ctx: typer.Context,
    repair: Annotated[
        bool, typer.Option("--repair", help="Rebuild every derived part found wrong (keyword index, units, vectors, sealed index).")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Check the vault: database pages, key file, migrations, keyword index, units, vectors, sealed index, audit chain.

    Exit 0 when healthy, 21 when not. --repair never touches canonical rows (items, files, audit); it is
    resumable: run it again after an interruption and it continues.

    Example: ctxvault doctor --repair
    """
    svc = service(ctx)
    if json_out or not repair:
        report = svc.doctor(OWNER, repair=repair)
    else:
        with Progress(console=console, transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def step(done: int, total: int, what: str) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(f"rebuilding {what}", total=total)
                bar.update(tasks[what], completed=done, total=total)

            report = svc.doctor(OWNER, repair=True, progress=step)
    if json_out:
        print_json(report.to_dict())
    else:
        for line in describe(report):
            console.print(shown(line))
    if not report.healthy:
        parts = ", ".join(c.part for c in report.checks if not c.ok)
        raise VaultUnhealthy(f"the vault needs attention: {parts}")
