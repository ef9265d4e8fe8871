"""The scope grammar: what one grant line allows, parsed from and formatted to text.

Grammar (docs/consent.md has the same text with examples)::

    scope   = action ":" kind [ "#" filter *( ";" filter ) ]
    action  = "search" | "read" | "write" | "delete"
    kind    = "memories" | "preferences" | "documents" | "profile" | "*"
    filter  = "space=" name *( "," name )      ; the item is in one of these spaces
            | "tag=" tag *( "," tag )          ; the item carries at least one of these tags
            | "kind=" kind *( "," kind )       ; only with kind "*": narrows the kinds
            | "sens=" ( "low" | "medium" | "high" )   ; maximum sensitivity

Filters are AND-ed; a principal's scopes for one action are OR-ed. ``profile`` is
the owner's profile (their current preferences) and can only be searched or read.
Owner-only actions (``export``, ``admin``, ``purge``, ``grant``) are never grantable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast, get_args

from schemas.limits import ERROR_CHARS
from vault.errors import InvalidInput
from vault.filters import SENSITIVITY_ORDER, Clause, Sensitivity

Action = Literal["search", "read", "write", "delete"]
ScopeKind = Literal["memories", "preferences", "documents", "profile"]

ACTIONS: tuple[Action, ...] = get_args(Action)
KINDS: tuple[ScopeKind, ...] = get_args(ScopeKind)
OWNER_ONLY_ACTIONS = frozenset({"export", "admin", "purge", "grant", "import"})

# Scope kinds are plural nouns; items carry the singular kind.
ITEM_KIND: dict[ScopeKind, str] = {
    "memories": "memory",
    "preferences": "preference",
    "documents": "document",
    "profile": "preference",
}
_READ_ONLY_KINDS = frozenset({"profile"})
_SPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TAG = re.compile(r"^[^\s,;#=]{1,64}$")


@dataclass(frozen=True, slots=True)
class Scope:
    """One parsed scope: an action on some kinds, narrowed by filters (``None``: no filter)."""

    action: Action
    kinds: frozenset[ScopeKind]
    spaces: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    max_sensitivity: Sensitivity | None = None
    all_kinds: bool = False  # written as "*": the kinds set is every kind

    def clause(self) -> Clause:
        """The item predicate this scope reaches, for ItemFilter.reach."""
        return Clause(
            kinds=frozenset(ITEM_KIND[k] for k in self.kinds),
            spaces=self.spaces,
            tags=self.tags,
            max_sensitivity=self.max_sensitivity,
        )

    def covers(self, other: Scope) -> bool:
        """Whether ``other`` allows nothing this scope does not (used to narrow at approval)."""
        if other.action != self.action or not other.kinds <= self.kinds:
            return False
        if self.spaces is not None and (other.spaces is None or not other.spaces <= self.spaces):
            return False
        if self.tags is not None and (other.tags is None or not other.tags <= self.tags):
            return False
        if self.max_sensitivity is not None:
            if other.max_sensitivity is None:
                return False
            if SENSITIVITY_ORDER[other.max_sensitivity] > SENSITIVITY_ORDER[self.max_sensitivity]:
                return False
        return True

    def __str__(self) -> str:
        return format_scope(self)


def format_scope(scope: Scope) -> str:
    """The canonical text of a scope: filters in a fixed order, values sorted."""
    if scope.all_kinds:
        head = f"{scope.action}:*"
        filters = [] if scope.kinds == _all_kinds(scope.action) else ["kind=" + ",".join(sorted(scope.kinds))]
    else:
        (kind,) = scope.kinds
        head, filters = f"{scope.action}:{kind}", []
    if scope.spaces is not None:
        filters.append("space=" + ",".join(sorted(scope.spaces)))
    if scope.tags is not None:
        filters.append("tag=" + ",".join(sorted(scope.tags)))
    if scope.max_sensitivity is not None:
        filters.append(f"sens={scope.max_sensitivity}")
    return head + ("#" + ";".join(filters) if filters else "")


def _all_kinds(action: Action) -> frozenset[ScopeKind]:
    if action in ("write", "delete"):
        return frozenset(k for k in KINDS if k not in _READ_ONLY_KINDS)
    return frozenset(KINDS)


def _shown(text: str) -> str:
    """Caller text quoted in a message, cut so that a message quoting two pieces stays near ERROR_CHARS (issue 27:
    a hostile scope of 300,000 characters was echoed whole, twice)."""
    cut = ERROR_CHARS // 3
    shown = repr(text[: cut + 1])  # escapes included: a control character shows as several
    return shown if len(shown) <= cut else shown[:cut] + "…"


def _values(name: str, raw: str, text: str) -> list[str]:
    values = raw.split(",")
    if not raw or any(not v for v in values):
        raise InvalidInput(f"scope {_shown(text)}: filter {_shown(name)} needs one or more comma-separated values")
    return values


def parse_scope(text: str) -> Scope:
    """Parse one scope such as ``read:memories#space=work;tag=travel``.

    Raises:
        InvalidInput: unknown action, kind or filter; an owner-only action; a malformed value.
    """
    text = text.strip()
    head, sep, tail = text.partition("#")
    action_text, colon, kind_text = head.partition(":")
    if action_text in OWNER_ONLY_ACTIONS:
        raise InvalidInput(f"scope {_shown(text)}: {_shown(action_text)} is reserved to the owner and cannot be granted to an app")
    if action_text not in ACTIONS:
        raise InvalidInput(f"scope {_shown(text)}: unknown action {_shown(action_text)}; use one of {', '.join(ACTIONS)}")
    action: Action = action_text
    if not colon:
        raise InvalidInput(f"scope {_shown(text)}: expected ACTION:KIND, e.g. {action}:memories")
    all_kinds = kind_text == "*"
    if not all_kinds and kind_text not in KINDS:
        raise InvalidInput(f"scope {_shown(text)}: unknown kind {_shown(kind_text)}; use one of {', '.join(KINDS)} or *")
    kinds: frozenset[ScopeKind] = _all_kinds(action) if all_kinds else frozenset({cast(ScopeKind, kind_text)})
    if kinds & _READ_ONLY_KINDS and not all_kinds and action not in ("search", "read"):
        raise InvalidInput(f"scope {_shown(text)}: the profile can only be searched or read")
    spaces: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    sens: Sensitivity | None = None
    seen: set[str] = set()
    if sep:
        if not tail:
            raise InvalidInput(f"scope {_shown(text)}: nothing after '#'; remove it or add a filter such as space=work")
        for part in tail.split(";"):
            name, eq, raw = part.partition("=")
            if not eq:
                raise InvalidInput(f"scope {_shown(text)}: filter {_shown(part)} must look like name=value")
            if name in seen:
                raise InvalidInput(f"scope {_shown(text)}: filter {_shown(name)} given twice; list values with commas instead")
            seen.add(name)
            match name:
                case "space":
                    values = _values(name, raw, text)
                    bad = [v for v in values if not _SPACE.fullmatch(v)]
                    if bad:
                        raise InvalidInput(f"scope {_shown(text)}: invalid space name {_shown(bad[0])}")
                    spaces = frozenset(values)
                case "tag":
                    values = _values(name, raw, text)
                    bad = [v for v in values if not _TAG.fullmatch(v)]
                    if bad:
                        raise InvalidInput(f"scope {_shown(text)}: invalid tag {_shown(bad[0])}")
                    tags = frozenset(values)
                case "kind":
                    if not all_kinds:
                        raise InvalidInput(f"scope {_shown(text)}: a kind filter needs the kind '*' (e.g. read:*#kind=memories,documents)")
                    values = _values(name, raw, text)
                    bad = [v for v in values if v not in kinds]
                    if bad:
                        raise InvalidInput(f"scope {_shown(text)}: kind {_shown(bad[0])} is unknown or not allowed for {action}")
                    kinds = frozenset(cast(ScopeKind, v) for v in values)
                case "sens":
                    if raw not in SENSITIVITY_ORDER:
                        raise InvalidInput(f"scope {_shown(text)}: sens must be low, medium or high")
                    sens = cast(Sensitivity, raw)
                case _:
                    raise InvalidInput(f"scope {_shown(text)}: unknown filter {_shown(name)}; use space, tag, kind or sens")
    return Scope(action=action, kinds=kinds, spaces=spaces, tags=tags, max_sensitivity=sens, all_kinds=all_kinds)


def parse_scopes(texts: list[str] | tuple[str, ...]) -> list[Scope]:
    """Parse several scopes; at least one is required.

    Raises:
        InvalidInput
    """
    if not texts:
        raise InvalidInput("give at least one scope, e.g. read:memories#space=work")
    return [parse_scope(t) for t in texts]


_VERB: dict[Action, str] = {"search": "Search", "read": "Read", "write": "Add and change", "delete": "Forget"}
_NOUN: dict[ScopeKind, str] = {"memories": "memories", "preferences": "preferences", "documents": "documents", "profile": "profile"}


def describe_scope(scope: Scope) -> str:
    """The scope in plain words for the owner, e.g. "Search your memories in the space work, up to medium sensitivity"."""
    kinds = "everything" if scope.all_kinds and scope.kinds == _all_kinds(scope.action) else None
    if kinds is None:
        names = [_NOUN[k] for k in KINDS if k in scope.kinds]
        kinds = "your " + (" and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1])
    words = f"{_VERB[scope.action]} {kinds}"
    if scope.spaces is not None:
        words += (" in the space " if len(scope.spaces) == 1 else " in the spaces ") + ", ".join(sorted(scope.spaces))
    else:
        words += " in every space"
    if scope.tags is not None:
        words += " tagged " + " or ".join(sorted(scope.tags))
    if scope.max_sensitivity is not None:
        words += f", up to {scope.max_sensitivity} sensitivity"
    else:
        words += ", high sensitivity included"
    return words


def narrow_scope(scope: Scope, spaces: frozenset[str] | None, max_sensitivity: Sensitivity | None) -> Scope:
    """``scope`` limited to ``spaces`` and ``max_sensitivity`` (``None``: no further limit); never wider than ``scope``.

    Raises:
        InvalidInput: a space outside the scope's own spaces (nothing would remain), or a bad space name.
    """
    if spaces is not None:
        bad = [s for s in spaces if not _SPACE.fullmatch(s)]
        if bad:
            raise InvalidInput(f"invalid space name {_shown(bad[0])}")
        spaces = spaces if scope.spaces is None else spaces & scope.spaces
        if not spaces:
            raise InvalidInput(f"scope {format_scope(scope)}: none of the chosen spaces is inside it")
    sens = max_sensitivity
    if scope.max_sensitivity is not None and (sens is None or SENSITIVITY_ORDER[sens] > SENSITIVITY_ORDER[scope.max_sensitivity]):
        sens = scope.max_sensitivity
    narrowed = Scope(
        action=scope.action,
        kinds=scope.kinds,
        spaces=spaces if spaces is not None else scope.spaces,
        tags=scope.tags,
        max_sensitivity=sens,
        all_kinds=scope.all_kinds,
    )
    assert scope.covers(narrowed)
    return narrowed
