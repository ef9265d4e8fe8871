from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke
from tests.conftest import PASSPHRASE


def test_init_prints_a_recovery_key_once_and_refuses_twice(ctxvault: Invoke, initialised: str) -> None:
    assert initialised.startswith("CVR1-")
    assert ctxvault("init").exit_code == 9


def test_status_reports_counts(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("add", "one memory")
    report = json.loads(ctxvault("status", "--json").stdout)
    assert (report["memories"], report["items"], report["schema_version"]) == (1, 1, report["schema_version"])
    assert report["schema_version"] >= 2


def test_commands_without_a_vault_say_how_to_make_one(ctxvault: Invoke) -> None:
    result = ctxvault("status")
    assert result.exit_code == 10 and "ctxvault init" in result.stderr


def test_wrong_passphrase_has_its_own_exit_code(ctxvault: Invoke, initialised: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXVAULT_PASSPHRASE", "definitely wrong")
    assert ctxvault("status").exit_code == 6


def test_locked_without_a_terminal_or_passphrase(ctxvault: Invoke, initialised: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTXVAULT_PASSPHRASE")
    assert ctxvault("status").exit_code == 5


def test_passphrase_file_and_vault_option(
    ctxvault: Invoke, secret_file: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CTXVAULT_PASSPHRASE")
    other = tmp_path / "elsewhere"
    pw = secret_file("file passphrase 123")
    assert ctxvault("--vault", str(other), "--passphrase-file", str(pw), "init").exit_code == 0
    assert (other / "vault.key").exists()
    assert ctxvault("--vault", str(other), "--passphrase-file", str(pw), "add", "via file").exit_code == 0


def test_passwd_then_recover(ctxvault: Invoke, initialised: str, secret_file: Callable[[str], Path]) -> None:
    new = secret_file("second passphrase!")
    assert ctxvault("passwd", "--new-passphrase-file", str(new)).exit_code == 0
    assert ctxvault("status").exit_code == 6
    assert ctxvault("--passphrase-file", str(new), "status").exit_code == 0
    third = secret_file("third passphrase!!")
    rk = secret_file(initialised)
    assert ctxvault("recover", "--recovery-key-file", str(rk), "--new-passphrase-file", str(third)).exit_code == 0
    assert ctxvault("--passphrase-file", str(third), "status").exit_code == 0
    bad = secret_file("CVR1-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA")
    assert ctxvault("recover", "--recovery-key-file", str(bad), "--new-passphrase-file", str(third)).exit_code == 6
    assert PASSPHRASE


def test_every_command_has_help_with_an_example(ctxvault: Invoke) -> None:
    from typer.main import get_command

    from cli.app import app

    root = get_command(app)

    def walk(cmd: object, path: list[str]) -> list[list[str]]:
        subs = getattr(cmd, "commands", None)
        if not subs:
            return [path]
        out: list[list[str]] = []
        for name, sub in subs.items():
            out += walk(sub, [*path, name])
        return out

    paths = walk(root, [])
    assert len(paths) > 15
    for path in paths:
        result = ctxvault(*path, "--help")
        assert result.exit_code == 0, path
        assert "Example:" in result.stdout, f"{' '.join(path)} --help has no example"
