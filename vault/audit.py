"""Audit log placeholder: the hash-chained log lands with issue #4."""

from __future__ import annotations

from collections.abc import Iterable

from vault.principal import Principal
from vault.store import Store


class AuditLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self,
        principal: Principal,
        event: str,
        *,
        item_ids: Iterable[str] = (),
        scope: str | None = None,
        purpose: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        """Append one event inside the caller's transaction (or its own)."""
        return None
