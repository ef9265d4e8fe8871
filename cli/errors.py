"""The CLI's one error mapper: a VaultError becomes one red line on stderr and its exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from cli.output import shown
from vault.errors import InvalidInput, VaultError

err_console = Console(stderr=True, highlight=False, emoji=False)


def fail(error: VaultError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {shown(error.message)}", markup=True, soft_wrap=True)
    return typer.Exit(error.exit_code)


@contextmanager
def vault_errors() -> Iterator[None]:
    """Translate VaultError (and pydantic input validation) into a clean exit."""
    try:
        yield
    except VaultError as exc:
        raise fail(exc) from None
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors())
        raise fail(InvalidInput(details)) from None


class VaultGroup(TyperGroup):
    """The root command group: every VaultError from any command is mapped here, once."""

    # typer vendors its own click; its Context type is private, hence Any.
    def invoke(self, ctx: Any) -> Any:
        with vault_errors():
            return super().invoke(ctx)
