"""Create, inspect and re-key the vault: init, status, passwd, recover."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import JsonFlag, read_secret_file, service, state
from cli.output import console, print_json, shown, styled
from cli.search import waiting_note
from vault import OWNER
from vault.errors import VaultLocked
from vault.unlock import change_passphrase, init_vault, recover


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(status)
    app.command()(passwd)
    app.command(name="recover")(recover_cmd)


def init(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Create a new encrypted vault and show its recovery key once.

    Example: CTXVAULT_PASSPHRASE=... ctxvault init --json
    """
    st = state(ctx)
    passphrase = st.passphrase("New passphrase", confirm=True)
    _, recovery = init_vault(st.settings, passphrase)
    if json_out:
        print_json({"home": str(st.settings.home), "recovery_key": recovery})
        return
    console.print(styled("Created a vault at ", (shown(st.settings.home), "bold")))
    console.print("Recovery key (shown once; store it offline, it unlocks the vault if you forget the passphrase):")
    console.print(styled("  ", (recovery, "bold yellow")))


def status(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Show where the vault is and what it holds.

    Example: ctxvault status --json
    """
    report = service(ctx).status(OWNER)
    if json_out:
        print_json(report)
        return
    for field, value in report.model_dump().items():
        console.print(f"{field:>15}: {shown(value)}")
    if note := waiting_note(state(ctx).settings, report.waiting_items, report.waiting_units):
        console.print(note)


def _new_passphrase(ctx: typer.Context, new_passphrase_file: typer.FileText | None) -> str:
    if new_passphrase_file is not None:
        return str(new_passphrase_file.read()).rstrip("\r\n")
    import sys

    if not sys.stdin.isatty():
        raise VaultLocked("give the new passphrase with --new-passphrase-file when not in a terminal")
    value: str = typer.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
    return value


NewPassFile = Annotated[
    typer.FileText | None, typer.Option("--new-passphrase-file", help="Read the new passphrase from this file (- for stdin).")
]


def passwd(ctx: typer.Context, new_passphrase_file: NewPassFile = None) -> None:
    """Change the passphrase (rewraps the key; the data is not re-encrypted).

    Example: ctxvault --passphrase-file old.txt passwd --new-passphrase-file new.txt
    """
    st = state(ctx)
    old = st.passphrase("Current passphrase")
    change_passphrase(st.settings, old, _new_passphrase(ctx, new_passphrase_file))
    console.print("Passphrase changed.")


def recover_cmd(
    ctx: typer.Context,
    recovery_key_file: Annotated[
        typer.FileText | None, typer.Option("--recovery-key-file", help="Read the recovery key from this file.")
    ] = None,
    new_passphrase_file: NewPassFile = None,
) -> None:
    """Set a new passphrase with the recovery key shown at init.

    Example: ctxvault recover --recovery-key-file rk.txt --new-passphrase-file new.txt
    """
    st = state(ctx)
    if recovery_key_file is not None:
        key = str(recovery_key_file.read()).strip()
    else:
        import sys

        if not sys.stdin.isatty():
            raise VaultLocked("give the recovery key with --recovery-key-file when not in a terminal")
        key = typer.prompt("Recovery key", hide_input=True)
    recover(st.settings, key, _new_passphrase(ctx, new_passphrase_file))
    console.print("Passphrase reset with the recovery key.")


__all__ = ["read_secret_file", "register"]
