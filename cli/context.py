"""Shared CLI state: where the vault is, how to get the passphrase, and the open service."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from vault import OWNER, Settings, VaultService, open_vault, session
from vault.errors import InvalidInput, VaultLocked
from vault.service.core import IdKind
from vault.unlock import open_store

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@dataclass
class CLIState:
    vault_dir: Path | None = None
    passphrase_file: Path | None = None
    _service: VaultService | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(home=self.vault_dir)

    def passphrase(self, prompt: str = "Passphrase", confirm: bool = False, env: bool = True) -> str:
        """The passphrase from --passphrase-file, CTXVAULT_PASSPHRASE, or a prompt."""
        if self.passphrase_file is not None:
            return read_secret_file(self.passphrase_file)
        if env and os.environ.get("CTXVAULT_PASSPHRASE"):
            return os.environ["CTXVAULT_PASSPHRASE"]
        if not _interactive():
            raise VaultLocked("the vault is locked: pass --passphrase-file, set CTXVAULT_PASSPHRASE, or run in a terminal")
        value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
        return value

    def service(self) -> VaultService:
        """The open vault: with the unlock session's key when one runs (no passphrase, no KDF), else unlocked here."""
        if self._service is None:
            settings = self.settings
            key = session.fetch_key(settings)
            if key is not None:
                self._service = VaultService(open_store(settings, key), settings, key)
            else:
                self._service = open_vault(settings, self.passphrase())
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None


def _interactive() -> bool:
    return sys.stdin.isatty()


def read_secret_file(path: Path) -> str:
    """A secret file's first line (``-``: read it from stdin)."""
    if str(path) == "-":
        return sys.stdin.buffer.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    return text.rstrip("\r\n")


def state(ctx: typer.Context) -> CLIState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CLIState)
    return obj


def service(ctx: typer.Context) -> VaultService:
    return state(ctx).service()


def full_id(ctx: typer.Context, kind: IdKind, ref: str) -> str:
    """The id that a unique prefix (``01M8VYAR``) names; the owner may abbreviate every id, as in git."""
    return service(ctx).resolve_id(OWNER, kind, ref)
