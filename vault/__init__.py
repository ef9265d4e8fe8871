"""Context Vault's domain core: an encrypted store of memories, preferences and documents."""

from __future__ import annotations

from vault.errors import VaultError
from vault.principal import OWNER, Principal
from vault.service import VaultService
from vault.settings import Settings
from vault.unlock import init_vault, open_store, unlock_key


def open_vault(settings: Settings, passphrase: str | None = None, recovery_key: str | None = None) -> VaultService:
    """Unlock and open the vault at ``settings.home``.

    Raises:
        NoVault, KeyFileCorrupt, WrongPassphrase, StoreCorrupt, SchemaTooNew
    """
    key = unlock_key(settings, passphrase=passphrase, recovery_key=recovery_key)
    return VaultService(open_store(settings, key), settings, key)


__all__ = ["OWNER", "Principal", "Settings", "VaultError", "VaultService", "init_vault", "open_vault"]
