"""Fixtures for the security tests: the real embedding model (once), apps with grants, a second vault."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from vault import OWNER, Principal, Settings, VaultService, init_vault, open_vault
from vault.embed import Embedder, load_embedder

MakeApp = Callable[..., Principal]
OpenVault = Callable[[str], VaultService]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real model, loaded once for the session (vaults reuse the process-wide instance)."""
    return load_embedder(Settings(home=Path("unused")))


def make_app(vault: VaultService, name: str, *scopes: str) -> Principal:
    """Register an app and lend it ``scopes`` (none: a brand-new app with no access)."""
    vault.add_app(OWNER, name)
    if scopes:
        vault.grant(OWNER, name, list(scopes))
    return vault.principal_for_app(name)


@pytest.fixture
def other_vault(tmp_path: Path, home: Path) -> Iterator[OpenVault]:
    """Create and open further, independent vaults in the same test (``name`` picks the folder)."""
    opened: list[VaultService] = []

    def make(name: str) -> VaultService:
        settings = Settings.from_env(home=tmp_path / name)
        init_vault(settings, PASSPHRASE)
        svc = open_vault(settings, PASSPHRASE)
        opened.append(svc)
        return svc

    yield make
    for svc in opened:
        svc.close()


@pytest.fixture
def second_connection(settings: Settings, vault: VaultService) -> Iterator[VaultService]:
    """Another VaultService on the same vault, as a second process (another host app's `ctxvault mcp`) holds."""
    svc = open_vault(settings, PASSPHRASE)
    yield svc
    svc.close()
