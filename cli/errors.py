"""The CLI's one error mapper: a VaultError becomes one red line on stderr and its exit code.

Under ``--json`` an error is one JSON line on stderr instead, in the shape the HTTP API
uses with the exit code in place of the status (stdout stays for results only):

    {"error": {"type": "NotFound", "message": "no item '01M8'"}, "exit": 3}

A usage error (click's, exit 2) has the same shape with ``"type": "UsageError"``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from typer._click.exceptions import UsageError  # typer vendors click and re-exports only BadParameter
from typer.core import TyperGroup

from cli.output import err_console, shown, styled
from vault.errors import InvalidInput, VaultError

__all__ = ["VaultGroup", "err_console", "fail", "vault_errors"]


def wants_json(args: Sequence[str]) -> bool:
    """Whether a command line asks for JSON: ``--json`` among its options (not after ``--``)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def json_error(kind: str, message: str, exit_code: int) -> str:
    # ASCII only: a control or bidi character in a message cannot act on the terminal showing stderr.
    return json.dumps({"error": {"type": kind, "message": message}, "exit": exit_code})


def fail(error: VaultError, as_json: bool = False) -> typer.Exit:
    if as_json:
        sys.stderr.write(json_error(type(error).__name__, error.message, error.exit_code) + "\n")
    else:
        err_console.print(styled(("error:", "bold red"), f" {shown(error.message)}"))
    return typer.Exit(error.exit_code)


@contextmanager
def vault_errors(as_json: bool = False) -> Iterator[None]:
    """Translate VaultError (and pydantic input validation) into a clean exit."""
    try:
        yield
    except VaultError as exc:
        raise fail(exc, as_json) from None
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors())
        raise fail(InvalidInput(details), as_json) from None


class VaultGroup(TyperGroup):
    """The root command group: every VaultError from any command is mapped here, once."""

    # typer vendors its own click; its Context type is private, hence Any.
    def invoke(self, ctx: Any) -> Any:
        as_json = wants_json([*ctx._protected_args, *ctx.args])
        with vault_errors(as_json):
            try:
                return super().invoke(ctx)
            except UsageError as exc:
                if not as_json:
                    raise
                sys.stderr.write(json_error("UsageError", exc.format_message(), exc.exit_code) + "\n")
                raise typer.Exit(exc.exit_code) from None
