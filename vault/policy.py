"""Who may do what: turns a principal's grants into an ItemFilter, or refuses.

Placeholder for the owner-only foundation: apps are denied everything until the
grants module lands (issue #4).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from vault.errors import ScopeDenied
from vault.filters import EVERYTHING, Clause, ItemFilter
from vault.principal import Principal
from vault.store import Store

Action = Literal["search", "read", "write", "delete"]


class Policy:
    def __init__(self, store: Store) -> None:
        self._store = store

    def read_filter(
        self,
        principal: Principal,
        action: Action,
        request: Clause = EVERYTHING,
        since: datetime | None = None,
        until: datetime | None = None,
        now: datetime | None = None,
    ) -> ItemFilter:
        """The filter for what ``principal`` may ``action`` (search or read).

        Raises:
            ScopeDenied: the principal holds no grant for this action at all.
        """
        if principal.is_owner:
            return ItemFilter(request=request, since=since, until=until)
        raise ScopeDenied(f"this app has no grant to {action}; ask for one with the request_access tool")

    def check_write(
        self, principal: Principal, kind: str, space: str, tags: list[str], sensitivity: str, now: datetime | None = None
    ) -> None:
        """Raises ScopeDenied unless ``principal`` may write such an item."""
        if not principal.is_owner:
            raise ScopeDenied(f"this app may not write {kind} items in space {space!r}; ask with request_access")

    def check_delete(
        self, principal: Principal, kind: str, space: str, tags: list[str], sensitivity: str, now: datetime | None = None
    ) -> None:
        """Raises ScopeDenied unless ``principal`` may delete such an item."""
        if not principal.is_owner:
            raise ScopeDenied(f"this app may not delete {kind} items; ask with request_access")

    def require_owner(self, principal: Principal, what: str) -> None:
        """Raises ScopeDenied for any principal but the owner."""
        if not principal.is_owner:
            raise ScopeDenied(f"only the owner can {what}")
