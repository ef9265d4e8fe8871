"""What a set of scopes would reach: the owner sees it before lending them (the console's Inbox).

Computed with the same clauses the policy uses on every call (``Scope.clause`` → ``ItemFilter``),
so the counts and the preview are what the app would get, not an estimate. Owner only; nothing
here is a disclosure to an app, so nothing is audited.
"""

from __future__ import annotations

from schemas.reach import ReachCount, ReachPreview, ScopeReach
from vault.filters import ItemFilter
from vault.items import ITEM_COLUMNS, row_to_item
from vault.principal import Principal
from vault.scopes import Action, format_scope, parse_scopes
from vault.service.core import ServiceCore

PREVIEW_CHARS = 160
MAX_PREVIEW = 20


class ReachPart(ServiceCore):
    """Counts and a preview of what scopes would reach (owner only)."""

    def scope_reach(self, principal: Principal, scopes: list[str], preview: int = 5) -> ScopeReach:
        """What a grant of ``scopes`` would reach now: items it could see (per space, kind and sensitivity),
        change and forget, and the newest ``preview`` items it could see, as the app would see them.

        Raises:
            InvalidInput: a malformed or owner-only scope. ScopeDenied: not the owner.
        """
        self._policy.require_owner(principal, "preview what scopes reach")
        parsed = parse_scopes(scopes)

        def reach(*actions: Action) -> ItemFilter:
            return ItemFilter(reach=tuple(dict.fromkeys(s.clause() for s in parsed if s.action in actions)))

        def count(scope: ItemFilter) -> int:
            where, params = scope.where("i")
            row = self.store.one(f"SELECT count(*) FROM items i WHERE {where}", params)
            return int(row[0]) if row else 0

        seen = reach("search", "read")
        where, params = seen.where("i")
        rows = self.store.query(
            f"SELECT i.space, i.kind, i.sensitivity, count(*) FROM items i WHERE {where} "
            "GROUP BY i.space, i.kind, i.sensitivity ORDER BY i.space, i.kind, i.sensitivity",
            params,
        )
        counts = [ReachCount(space=r[0], kind=r[1], sensitivity=r[2], count=int(r[3])) for r in rows]
        newest = self.store.query(
            f"SELECT {ITEM_COLUMNS} FROM items i WHERE {where} ORDER BY i.created_at DESC, i.id DESC LIMIT ?",
            [*params, max(0, min(preview, MAX_PREVIEW))],
        )
        shown = []
        for row in newest:
            item = row_to_item(row)
            snippet = item.text[:PREVIEW_CHARS]
            shown.append(
                ReachPreview(
                    id=item.id, kind=item.kind, space=item.space, sensitivity=item.sensitivity,
                    title=item.key if item.key else snippet.split("\n", 1)[0][:80], snippet=snippet,
                )
            )  # fmt: skip
        return ScopeReach(
            scopes=[format_scope(s) for s in parsed],
            seen=sum(c.count for c in counts),
            changed=count(reach("write")),
            forgotten=count(reach("delete")),
            counts=counts,
            preview=shown,
        )


__all__ = ["ReachPart"]
