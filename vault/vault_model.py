"""The vault's own embedding model: recorded in the vault (table ``vault_model``, migration m0011_model).

``Settings.model`` (``CTXVAULT_MODEL``, default the int8 variant) is the model a *new* vault is
created with. Once created, a vault knows its model without any environment variable: every
process that opens it embeds and searches with the recorded one, so moving the default never
makes an existing vault's vectors stale. `ctxvault reindex --model NAME` is the one way to
switch (``Retriever.reindex``): it records the new model, then re-embeds every unit, resumably.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from vault.settings import Settings
from vault.store import Store


def recorded(store: Store) -> str | None:
    """The model the vault records, or None for a vault whose schema predates the record (read-only, not migrated)."""
    has = store.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vault_model'")
    row = store.one("SELECT name FROM vault_model WHERE id = 1") if has else None
    return str(row[0]) if row else None


def record(store: Store, model: str, now: datetime | None = None, *, created: bool = False) -> None:
    """Make ``model`` the vault's model (in the caller's transaction, if any); ``created``: a new vault's first model."""
    stamp = None if created else (now or datetime.now(UTC)).isoformat()
    store.execute(
        "INSERT INTO vault_model (id, name, changed_at) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET name = ?1, changed_at = ?2",
        [model, stamp],
    )


def for_vault(settings: Settings, store: Store) -> Settings:
    """``settings`` with the vault's recorded model in place of the configured default."""
    model = recorded(store)
    return settings if model is None or model == settings.model else replace(settings, model=model)


__all__ = ["for_vault", "record", "recorded"]
