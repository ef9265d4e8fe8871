"""No app ever receives an item outside its grant, through any service method.

Over random items (kinds, spaces, tags, sensitivities, preference histories) and random
grants (actions, kinds, filters; live, revoked or expired), every read path of the
service is checked against an oracle written here, independently of vault/scopes.py
and vault/filters.py. The last test breaks the filter on purpose and shows that the
property catches it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from schemas.items import Kind, SearchQuery
from vault import OWNER, Principal, VaultService
from vault.errors import NotFound, ScopeDenied
from vault.filters import Clause, ItemFilter
from vault.items import unit_text
from vault.policy import Policy

SPACES = ["work", "home", "health"]
TAGS = ["a", "b", "c"]
LEVELS = ["low", "medium", "high"]
RANK = {level: n for n, level in enumerate(LEVELS)}
SCOPE_KINDS = {"memories": {"memory"}, "preferences": {"preference"}, "documents": {"document"}, "profile": {"preference"}}
WORD = "zebra"  # every item's text carries it, so one search could reach them all


@dataclass(frozen=True)
class ItemSpec:
    kind: Kind
    space: str
    tags: frozenset[str]
    sensitivity: str
    old: tuple[str, str] | None = None  # a preference's superseded version: (space, sensitivity)


@dataclass(frozen=True)
class GrantSpec:
    action: str
    kind: str  # a scope kind or "*"
    spaces: frozenset[str] | None
    tags: frozenset[str] | None
    sens: str | None
    state: str  # live, revoked or expired

    def text(self) -> str:
        filters = []
        if self.spaces is not None:
            filters.append("space=" + ",".join(sorted(self.spaces)))
        if self.tags is not None:
            filters.append("tag=" + ",".join(sorted(self.tags)))
        if self.sens is not None:
            filters.append("sens=" + self.sens)
        return f"{self.action}:{self.kind}" + ("#" + ";".join(filters) if filters else "")

    def reaches(self, kind: str, space: str, tags: frozenset[str], sensitivity: str) -> bool:
        kinds = {"memory", "preference", "document"} if self.kind == "*" else SCOPE_KINDS[self.kind]
        return (
            kind in kinds
            and (self.spaces is None or space in self.spaces)
            and (self.tags is None or bool(self.tags & tags))
            and (self.sens is None or RANK[sensitivity] <= RANK[self.sens])
        )


@dataclass
class Known:
    """Every item inserted so far in this vault, with what the oracle needs."""

    items: dict[str, tuple[str, str, frozenset[str], str]] = field(default_factory=dict)  # id → kind, space, tags, sens
    pref_keys: dict[str, list[str]] = field(default_factory=dict)  # key → ids, current first
    counter: itertools.count[int] = field(default_factory=itertools.count)


def item_specs() -> st.SearchStrategy[ItemSpec]:
    return st.builds(
        ItemSpec,
        kind=st.sampled_from(["memory", "preference", "document"]),
        space=st.sampled_from(SPACES),
        tags=st.frozensets(st.sampled_from(TAGS), max_size=2),
        sensitivity=st.sampled_from(LEVELS),
        old=st.none() | st.tuples(st.sampled_from(SPACES), st.sampled_from(LEVELS)),
    )


@st.composite
def grant_specs(draw: st.DrawFn) -> GrantSpec:
    action = draw(st.sampled_from(["search", "read", "read", "write", "delete"]))
    kinds = ["memories", "preferences", "documents", "*"] + (["profile"] if action in ("search", "read") else [])
    return GrantSpec(
        action=action,
        kind=draw(st.sampled_from(kinds)),
        spaces=draw(st.none() | st.frozensets(st.sampled_from(SPACES), min_size=1)),
        tags=draw(st.none() | st.frozensets(st.sampled_from(TAGS), min_size=1)),
        sens=draw(st.none() | st.sampled_from(LEVELS)),
        state=draw(st.sampled_from(["live", "live", "live", "revoked", "expired"])),
    )


def insert(vault: VaultService, known: Known, spec: ItemSpec) -> None:
    """Insert one item as the owner would have written it (without embedding it)."""
    n = next(known.counter)
    key = f"key{n}" if spec.kind == "preference" else None
    text = f"{WORD} item {n}"
    with vault.store.transaction():
        old_id = None
        if key is not None and spec.old is not None:
            old_space, old_sens = spec.old
            old_id = vault._insert_item(
                OWNER, "preference", text + " old", key=key, space=old_space, tags=[], sensitivity=old_sens, source="test"
            )
            vault.store.execute("UPDATE items SET superseded_at = created_at WHERE id = ?", [old_id])
            known.items[old_id] = ("preference", old_space, frozenset(), old_sens)
        item_id = vault._insert_item(
            OWNER, spec.kind, text, key=key, space=spec.space, tags=sorted(spec.tags), sensitivity=spec.sensitivity, source="test",
            supersedes=old_id,
        )  # fmt: skip
        vault._insert_unit(item_id, 0, unit_text(spec.kind, text, key))
        if spec.kind == "document":
            vault.store.execute(
                "INSERT INTO doc_files (item_id, path, filename, mime, size, sha256, data) VALUES (?, ?, ?, 'text/plain', 1, ?, ?)",
                [item_id, f"/docs/{n}.txt", f"{n}.txt", f"{n:064x}", b"x"],
            )
    known.items[item_id] = (spec.kind, spec.space, spec.tags, spec.sensitivity)
    if key is not None:
        known.pref_keys[key] = [item_id] + ([old_id] if old_id else [])


def make_app(vault: VaultService, known: Known, grants: list[GrantSpec]) -> Principal:
    name = f"app{next(known.counter)}"
    vault.add_app(OWNER, name)
    past = datetime.now(UTC) - timedelta(days=3)
    for g in grants:
        if g.state == "expired":
            vault.grant(OWNER, name, [g.text()], expires_at=past + timedelta(hours=1), now=past)
        else:
            created = vault.grant(OWNER, name, [g.text()])
            if g.state == "revoked":
                vault.revoke(OWNER, created.id)
    return vault.principal_for_app(name)


def outcome(call: Callable[[], object]) -> object:
    """The call's result, or the type of the refusal it raised."""
    try:
        return call()
    except (ScopeDenied, NotFound) as exc:
        return type(exc)


def check_no_leak(vault: VaultService, known: Known, app: Principal, grants: list[GrantSpec]) -> None:
    live = [g for g in grants if g.state == "live"]

    def allowed(action: str, item_id: str) -> bool:
        kind, space, tags, sens = known.items[item_id]
        return any(g.action == action and g.reaches(kind, space, tags, sens) for g in live)

    def holds(action: str) -> bool:
        return any(g.action == action for g in live)

    def current(item_id: str) -> bool:
        return all(ids[0] == item_id for ids in known.pref_keys.values() if item_id in ids)

    readable = {i for i in known.items if current(i) and allowed("read", i)}

    # search: only hits the grant's search scopes reach; denied when it holds none.
    page = outcome(lambda: vault.search(app, SearchQuery(text=WORD, limit=200, mode="lexical")))
    if holds("search"):
        assert not isinstance(page, type), "search refused despite a live search grant"
        hits = {h.item_id for h in page.hits}  # type: ignore[attr-defined]
        assert all(allowed("search", i) for i in hits), "search disclosed an item outside the grant"
    else:
        assert page is ScopeDenied

    if not holds("read"):
        for call in (lambda: vault.list_items(app), lambda: vault.spaces(app), lambda: vault.list_preferences(app)):
            assert outcome(call) is ScopeDenied
        return

    # list_items: exactly the readable items, and a total that counts nothing else.
    listed = vault.list_items(app, limit=10_000)
    assert {i.id for i in listed.items} == readable and listed.total == len(readable)

    # spaces: counts per space reveal nothing beyond the reach.
    expected: dict[str, list[int]] = {}
    for i in readable:
        kind, space, _, _ = known.items[i]
        counts = expected.setdefault(space, [0, 0, 0])
        counts[["memory", "preference", "document"].index(kind)] += 1
    assert {s.space: [s.memories, s.preferences, s.documents] for s in vault.spaces(app)} == expected

    # get_item and show_document: found exactly when readable, NotFound otherwise.
    for item_id, (kind, _, _, _) in known.items.items():
        got = outcome(partial(vault.get_item, app, item_id))
        assert (got is NotFound) == (item_id not in readable), f"get_item leaked or hid {item_id}"
        if kind == "document":
            doc = outcome(partial(vault.show_document, app, item_id))
            assert (doc is NotFound) == (item_id not in readable), f"show_document leaked or hid {item_id}"

    # preferences: current values, and histories that include only readable versions.
    prefs = {p.item.id for p in vault.list_preferences(app)}
    assert prefs == {i for i in readable if known.items[i][0] == "preference"}
    # The MCP surface's compositions (issue 12) answer from the same filter.
    assert {p.item.id for p in vault.profile(app).preferences} == prefs
    assert {p.item.id for p in vault.preferences_for(app, keys=list(known.pref_keys)).preferences} == prefs
    for key, ids in known.pref_keys.items():
        got = outcome(partial(vault.get_preference, app, key))
        assert (got is NotFound) == (ids[0] not in readable), f"get_preference leaked or hid {key}"
        history = outcome(partial(vault.preference_history, app, key))
        visible = {i for i in ids if allowed("read", i)}
        if visible:
            assert not isinstance(history, type)
            assert {i.id for i in history} == visible  # type: ignore[attr-defined]
        else:
            assert history is NotFound


def run_property(vault: VaultService, max_examples: int = 80, shrink: bool = True) -> None:
    known = Known()

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        report_multiple_bugs=False,
        # Shrinking only makes a failure readable; the test of the test needs just the failure.
        phases=list(Phase) if shrink else [Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(items=st.lists(item_specs(), max_size=6), grants=st.lists(grant_specs(), max_size=4))
    def prop(items: list[ItemSpec], grants: list[GrantSpec]) -> None:
        for spec in items:
            insert(vault, known, spec)
        check_no_leak(vault, known, make_app(vault, known, grants), grants)

    prop()


def test_no_app_ever_receives_an_item_outside_its_grant(vault: VaultService) -> None:
    run_property(vault)


def test_the_property_catches_a_filter_that_forgets_sensitivity(vault: VaultService, monkeypatch: pytest.MonkeyPatch) -> None:
    honest = Policy.read_filter

    def broken(self: Policy, *args: object, **kwargs: object) -> ItemFilter:
        scope = honest(self, *args, **kwargs)  # type: ignore[arg-type]
        # The bug under test: grants' sensitivity limits are dropped.
        reach = tuple(Clause(kinds=c.kinds, spaces=c.spaces, tags=c.tags) for c in scope.reach)
        return ItemFilter(request=scope.request, reach=reach, since=scope.since, until=scope.until)

    monkeypatch.setattr(Policy, "read_filter", broken)
    with pytest.raises(AssertionError):
        run_property(vault, max_examples=300, shrink=False)
