"""Create a vault, open it with a passphrase or recovery key, change the passphrase."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from vault import keys, vault_model
from vault.crypto import DataKey
from vault.errors import KeyFileCorrupt, NoVault, StorageFailed, VaultError, VaultExists, VaultReadOnly
from vault.migrations import check_current, migrate
from vault.settings import Settings
from vault.store import Store

# The recovery key opens a slot stored in vault.key: without the file, neither it nor the passphrase can help.
_KEY_MISSING = (
    "the vault database is at {home}, but its key file vault.key is missing: restore vault.key from a backup "
    "(the passphrase and the recovery key both open slots inside it; without it the database cannot be decrypted)"
)


def exists(settings: Settings) -> bool:
    return settings.key_path.exists()


def _require(settings: Settings) -> keys.KeyFile:
    if not settings.key_path.exists() and settings.db_path.exists():
        raise KeyFileCorrupt(_KEY_MISSING.format(home=settings.home))
    if not settings.key_path.exists():
        raise NoVault(f"no vault at {settings.home}; create one with `ctxvault init`")
    return keys.read(settings.key_path)


def init_vault(settings: Settings, passphrase: str) -> tuple[DataKey, str]:
    """Create the key file and an empty, migrated database; return the key and the recovery key.

    Raises:
        VaultExists: a vault is already there.
        InvalidInput: the passphrase is too weak.
        VaultReadOnly: the location is on a read-only mount or this user may not write there.
        StorageFailed: the disk refused the new files (full, failing).
    """
    if not settings.key_path.exists() and settings.db_path.exists():
        raise VaultExists(_KEY_MISSING.format(home=settings.home) + "; `init` will not overwrite the database")
    if settings.key_path.exists() or settings.db_path.exists():
        raise VaultExists(f"a vault already exists at {settings.home}")
    keys.check_passphrase_strength(passphrase)
    try:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(settings.home, 0o700)
    except OSError as exc:
        raise _cannot_create(settings.home, exc) from exc
    kf, key, recovery = keys.create(passphrase, settings.kdf)
    store = Store(settings.db_path, key)
    try:
        migrate(store.conn)
        # The vault's model from now on, whatever the default becomes (vault/vault_model.py).
        vault_model.record(store, settings.model, created=True)
    finally:
        store.close()
    # The key file is written last: a crash before this leaves no half vault that looks whole.
    keys.write(settings.key_path, kf)
    return key, recovery


def _cannot_create(home: Path, exc: OSError) -> VaultError:
    """The error for a vault directory that cannot be made (issue 27: a raw OSError before)."""
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return VaultReadOnly(
            f"the vault cannot be created at {home}: the location is read-only for this user ({exc.strerror}); "
            "choose a writable folder with --vault or CTXVAULT_HOME"
        )
    return StorageFailed(f"the vault cannot be created at {home}: the disk refused it ({exc.strerror}); free space and try again")


def unlock_key(settings: Settings, passphrase: str | None = None, recovery_key: str | None = None) -> DataKey:
    """Unwrap the data key. Nothing is written.

    Raises:
        NoVault, KeyFileCorrupt, WrongPassphrase
    """
    kf = _require(settings)
    if recovery_key is not None:
        return keys.unlock_with_recovery(kf, recovery_key)
    assert passphrase is not None
    return keys.unlock(kf, passphrase)


def change_passphrase(settings: Settings, old: str, new: str) -> None:
    """Rewrap the data key under ``new``; the database is not touched."""
    kf = _require(settings)
    key = keys.unlock(kf, old)
    keys.write(settings.key_path, keys.rewrap(kf, key, new, settings.kdf))


def recover(settings: Settings, recovery_key: str, new: str) -> None:
    """Set a new passphrase using the recovery key."""
    kf = _require(settings)
    key = keys.unlock_with_recovery(kf, recovery_key)
    keys.write(settings.key_path, keys.rewrap(kf, key, new, settings.kdf))


def open_store(settings: Settings, key: DataKey) -> Store:
    """Open and migrate the database with an unwrapped key."""
    if not settings.db_path.exists():
        raise NoVault(f"the vault at {settings.home} has a key file but no database")
    store = Store(settings.db_path, key)
    try:
        if store.read_only:
            check_current(store.conn, str(settings.home))
        else:
            migrate(store.conn)
    except BaseException:
        store.close()
        raise
    return store


def db_files(home: Path) -> list[Path]:
    """Every file under the vault directory (for size reports and tests)."""
    return sorted(p for p in home.rglob("*") if p.is_file())
