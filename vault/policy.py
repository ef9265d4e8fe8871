"""Who may do what: turns a principal's live grants into an ItemFilter, or refuses.

The owner may do everything. An app may do only what the scopes of its live
grants allow, looked up afresh on every call (a revocation or an expiry cuts it
off on its next call). Every refusal is written to the audit log before it is raised.
"""

from __future__ import annotations

from datetime import datetime

from vault.access import live_scope_objects
from vault.audit import AuditLog
from vault.errors import ScopeDenied
from vault.filters import EVERYTHING, Clause, ItemFilter
from vault.items import utcnow
from vault.principal import Principal
from vault.scopes import Action, Scope
from vault.store import Store

__all__ = ["Action", "Policy"]


class Policy:
    def __init__(self, store: Store, audit: AuditLog | None = None) -> None:
        self._store = store
        self._audit = audit or AuditLog(store)

    def scopes(self, principal: Principal, action: Action, now: datetime | None = None) -> list[Scope]:
        """The app's live scopes for one action (the owner holds no scopes: it needs none)."""
        if principal.app_id is None:
            return []
        return [s for s in live_scope_objects(self._store, principal.app_id, now or utcnow()) if s.action == action]

    def reach(self, principal: Principal, action: Action, now: datetime | None = None) -> tuple[Clause, ...]:
        """What ``principal`` may ``action``, as clauses; ``()`` when nothing. Never raises."""
        if principal.is_owner:
            return (EVERYTHING,)
        return tuple(dict.fromkeys(s.clause() for s in self.scopes(principal, action, now)))

    def _deny(self, principal: Principal, what: str, message: str, now: datetime | None) -> ScopeDenied:
        self._audit.record_denial(principal, what, now=now)
        return ScopeDenied(message)

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
            ScopeDenied: the principal holds no live grant for this action at all.
        """
        if principal.is_owner:
            return ItemFilter(request=request, since=since, until=until)
        reach = self.reach(principal, action, now)
        if not reach:
            raise self._deny(
                principal, action, f"this app has no grant to {action} anything; ask for one with the request_access tool", now
            )
        return ItemFilter(request=request, reach=reach, since=since, until=until)

    def allows(self, principal: Principal, action: Action, kind: str, space: str, tags: list[str], sensitivity: str) -> bool:
        """Whether ``principal`` may ``action`` an item with these attributes; records nothing."""
        return principal.is_owner or any(c.matches(kind, space, tags, sensitivity) for c in self.reach(principal, action))

    def _check(
        self, principal: Principal, action: Action, kind: str, space: str, tags: list[str], sensitivity: str, now: datetime | None
    ) -> None:
        if principal.is_owner or any(c.matches(kind, space, tags, sensitivity) for c in self.reach(principal, action, now)):
            return
        raise self._deny(
            principal,
            f"{action} {kind} in space {space}",
            f"this app may not {action} {kind} items in space {space!r} with these tags and sensitivity; ask with request_access",
            now,
        )

    def check_write(
        self, principal: Principal, kind: str, space: str, tags: list[str], sensitivity: str, now: datetime | None = None
    ) -> None:
        """Raises ScopeDenied unless ``principal`` may write such an item."""
        self._check(principal, "write", kind, space, tags, sensitivity, now)

    def check_delete(
        self, principal: Principal, kind: str, space: str, tags: list[str], sensitivity: str, now: datetime | None = None
    ) -> None:
        """Raises ScopeDenied unless ``principal`` may delete such an item."""
        self._check(principal, "delete", kind, space, tags, sensitivity, now)

    def require_owner(self, principal: Principal, what: str) -> None:
        """Raises ScopeDenied for any principal but the owner."""
        if not principal.is_owner:
            raise self._deny(principal, what, f"only the owner can {what}; no grant allows it", None)


# What each operation needs at all, by the name the MCP tools share with it. HTTP step-up
# asks this before a call; finer limits (spaces, tags, sensitivity) stay the call's own errors.
OPERATION_NEEDS: dict[str, tuple[Action, str]] = {
    "search_context": ("search", "*"),
    "get_item": ("read", "*"),
    "get_preferences": ("read", "preferences"),
    "remember": ("write", "memories"),
    "forget": ("delete", "*"),
}
