from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli.app import app
from schemas.items import MemoryIn
from tests.conftest import PASSPHRASE
from vault import OWNER, VaultService

Invoke = Callable[..., Result]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def ctxvault(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run `ctxvault ARGS…` with the passphrase in the environment, as scripts do."""
    monkeypatch.setenv("CTXVAULT_PASSPHRASE", PASSPHRASE)

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def initialised(ctxvault: Invoke) -> str:
    """Init a vault through the CLI; return the recovery key."""
    result = ctxvault("init", "--json")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["recovery_key"])


@pytest.fixture
def secret_file(tmp_path: Path) -> Callable[[str], Path]:
    def make(text: str) -> Path:
        path = tmp_path / f"secret-{abs(hash(text))}.txt"
        path.write_text(text + "\n")
        return path

    return make


@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private runtime dir: Unix socket paths are limited to ~108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="cv-"))
    monkeypatch.setenv("CTXVAULT_RUNTIME_DIR", str(path))
    yield path


@pytest.fixture
def app_token(vault: VaultService) -> str:
    vault.remember(OWNER, MemoryIn(text="I drink my coffee black"))
    return vault.add_app(OWNER, "tester").token
