"""Context Vault's domain core: an encrypted store of memories, preferences and documents.

The public names load on first use (PEP 562): ``import vault.session`` stays cheap for the
`ctxvault` launcher, which hands `ctxvault mcp` to the unlock agent without paying ~0.35 s for
the service and its dependencies; ``from vault import VaultService`` works as before.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vault.errors import VaultError
    from vault.principal import OWNER, Principal
    from vault.service import VaultService
    from vault.settings import Settings
    from vault.unlock import init_vault

_HOMES = {
    "OWNER": "vault.principal",
    "Principal": "vault.principal",
    "Settings": "vault.settings",
    "VaultError": "vault.errors",
    "VaultService": "vault.service",
    "init_vault": "vault.unlock",
}


if not TYPE_CHECKING:  # mypy sees the imports above, so a misspelt name stays an error

    def __getattr__(name: str) -> object:
        if name not in _HOMES:
            # AttributeError lets `from vault import session` fall through to the submodule import.
            raise AttributeError(f"module 'vault' has no attribute {name!r}")
        value = getattr(import_module(_HOMES[name]), name)
        globals()[name] = value
        return value


def open_vault(settings: Settings, passphrase: str | None = None, recovery_key: str | None = None) -> VaultService:
    """Unlock and open the vault at ``settings.home``.

    Raises:
        NoVault, KeyFileCorrupt, WrongPassphrase, StoreCorrupt, SchemaTooNew
    """
    from vault.service import VaultService
    from vault.unlock import open_store, unlock_key

    key = unlock_key(settings, passphrase=passphrase, recovery_key=recovery_key)
    return VaultService(open_store(settings, key), settings, key)


__all__ = ["OWNER", "Principal", "Settings", "VaultError", "VaultService", "init_vault", "open_vault"]
