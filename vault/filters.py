"""The item filter: one predicate, compiled once, consumed as SQL and as an allowed-id set.

An ``ItemFilter`` combines what the caller asked for (``request``) with what it may
see (``reach``: a union of grant clauses). Search, list, get and export all take
one; none assembles its own access rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SENSITIVITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2}
Sensitivity = Literal["low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class Clause:
    """A conjunction of conditions on an item; ``None`` means no condition."""

    kinds: frozenset[str] | None = None
    spaces: frozenset[str] | None = None
    tags: frozenset[str] | None = None  # the item carries at least one of these
    max_sensitivity: Sensitivity | None = None

    def sql(self, alias: str) -> tuple[str, list[object]]:
        parts: list[str] = []
        params: list[object] = []
        if self.kinds is not None:
            parts.append(f"{alias}.kind IN ({','.join('?' * len(self.kinds))})" if self.kinds else "0")
            params.extend(sorted(self.kinds))
        if self.spaces is not None:
            parts.append(f"{alias}.space IN ({','.join('?' * len(self.spaces))})" if self.spaces else "0")
            params.extend(sorted(self.spaces))
        if self.tags is not None:
            if self.tags:
                marks = ",".join("?" * len(self.tags))
                parts.append(f"EXISTS (SELECT 1 FROM json_each({alias}.tags) WHERE json_each.value IN ({marks}))")
                params.extend(sorted(self.tags))
            else:
                parts.append("0")
        if self.max_sensitivity is not None:
            allowed = [s for s, rank in SENSITIVITY_ORDER.items() if rank <= SENSITIVITY_ORDER[self.max_sensitivity]]
            parts.append(f"{alias}.sensitivity IN ({','.join('?' * len(allowed))})")
            params.extend(allowed)
        return (" AND ".join(parts) or "1"), params

    def matches(self, kind: str, space: str, tags: list[str], sensitivity: str) -> bool:
        """The same predicate as ``sql``, in Python, for single-item checks."""
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.spaces is not None and space not in self.spaces:
            return False
        if self.tags is not None and not (self.tags & set(tags)):
            return False
        if self.max_sensitivity is not None and SENSITIVITY_ORDER[sensitivity] > SENSITIVITY_ORDER[self.max_sensitivity]:
            return False
        return True


EVERYTHING = Clause()


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """What to return: the request's conditions AND any clause of the reach."""

    request: Clause = EVERYTHING
    reach: tuple[Clause, ...] = field(default=(EVERYTHING,))  # () reaches nothing
    since: datetime | None = None
    until: datetime | None = None
    include_superseded: bool = False

    def where(self, alias: str = "i") -> tuple[str, list[object]]:
        """An SQL predicate over the items table aliased ``alias``; live items only."""
        live = [f"{alias}.deleted_at IS NULL"] + ([] if self.include_superseded else [f"{alias}.superseded_at IS NULL"])
        conditions, params = self.conditions(alias)
        return " AND ".join([*live, conditions]), params

    def conditions(self, alias: str = "i") -> tuple[str, list[object]]:
        """The predicate ``where`` adds to liveness: the request, the reach and the dates (items_live_scope covers it)."""
        parts: list[str] = []
        params: list[object] = []
        req, req_params = self.request.sql(alias)
        parts.append(req)
        params.extend(req_params)
        if not self.reach:
            parts.append("0")
        elif EVERYTHING not in self.reach:
            ors = []
            for clause in self.reach:
                sql, p = clause.sql(alias)
                ors.append(f"({sql})")
                params.extend(p)
            parts.append("(" + " OR ".join(ors) + ")")
        if self.since is not None:
            parts.append(f"{alias}.created_at >= ?")
            params.append(self.since.isoformat())
        if self.until is not None:
            parts.append(f"{alias}.created_at < ?")
            params.append(self.until.isoformat())
        return " AND ".join(parts), params

    def allows(self, kind: str, space: str, tags: list[str], sensitivity: str) -> bool:
        """Whether the reach covers an item with these attributes (request ignored)."""
        return any(c.matches(kind, space, tags, sensitivity) for c in self.reach)
