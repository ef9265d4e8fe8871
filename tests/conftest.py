"""Shared fixtures: every test gets its own vault home and fast Argon2 parameters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vault import OWNER, Principal, Settings, VaultService, init_vault, open_vault

PASSPHRASE = "correct horse battery staple"
# Fast KDF for tests only; tests/vault/test_keys.py pins the production parameters.
FAST_KDF_ENV = {"CTXVAULT_KDF_MEMORY_KIB": "8192", "CTXVAULT_KDF_ITERATIONS": "1", "CTXVAULT_KDF_LANES": "1"}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point CTXVAULT_HOME at a fresh directory so no test touches a real vault."""
    path = tmp_path / "vault-home"
    monkeypatch.setenv("CTXVAULT_HOME", str(path))
    for key, value in FAST_KDF_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CTXVAULT_PASSPHRASE", raising=False)
    monkeypatch.delenv("CTXVAULT_APP_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings.from_env()


@pytest.fixture
def recovery_key(settings: Settings) -> str:
    """Create the vault; return its recovery key."""
    _, recovery = init_vault(settings, PASSPHRASE)
    return recovery


@pytest.fixture
def vault(settings: Settings, recovery_key: str) -> Iterator[VaultService]:
    """An initialised, unlocked vault."""
    svc = open_vault(settings, PASSPHRASE)
    yield svc
    svc.close()


def module_vault(home: Path) -> VaultService:
    """An initialised, unlocked vault at ``home`` for a module-scoped fixture (fast KDF; no environment left set)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CTXVAULT_HOME", str(home))
        for key, value in FAST_KDF_ENV.items():
            env.setenv(key, value)
        settings = Settings.from_env()
    init_vault(settings, PASSPHRASE)
    return open_vault(settings, PASSPHRASE)


@pytest.fixture
def owner() -> Principal:
    return OWNER
