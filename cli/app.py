"""The root `ctxvault` command: global options, and every noun's commands."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated

import typer
import typer.main
from typer.core import TyperGroup

from cli import access, docs, items, lifecycle, prefs
from cli import doctor as doctor_cli
from cli import mcp as mcp_cli
from cli import portable as portable_cli
from cli import search as search_cli
from cli.context import CLIState
from cli.errors import VaultGroup

app = typer.Typer(
    cls=VaultGroup,
    name="ctxvault",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    # --install-completion / --show-completion (bash, zsh, fish, PowerShell), as typer builds them.
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def version_text() -> str:
    try:
        return f"ctxvault {package_version('context-vault')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "ctxvault (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    vault: Annotated[
        Path | None, typer.Option("--vault", envvar="CTXVAULT_HOME", help="Vault directory (default: the platform data dir).")
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--passphrase-file", help="Read the passphrase from this file instead of prompting (- reads its first line from stdin)."
        ),
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Context Vault: your encrypted memories, preferences and documents.

    -h is --help for every command; --json on a command prints its result, or its error, as JSON.
    Shell completion: ctxvault --install-completion (or --show-completion to print the script).
    Version: ctxvault --version

    Example: ctxvault init && ctxvault add "I prefer window seats" --tag travel
    """
    state = CLIState(vault_dir=vault, passphrase_file=passphrase_file)
    ctx.obj = state
    ctx.call_on_close(state.close)


lifecycle.register(app)
items.register(app)
search_cli.register(app)
app.add_typer(prefs.app, name="pref")
app.add_typer(docs.app, name="doc")
access.register(app)
mcp_cli.register(app)
portable_cli.register(app)
doctor_cli.register(app)


@cache
def command() -> TyperGroup:
    """The click command tree, built once per process: about 30 ms of signature reading.

    The unlock agent builds it before it forks the servers of `ctxvault mcp` (cli/agent.py).
    """
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


def main() -> None:
    command()()
