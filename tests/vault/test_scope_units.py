"""The units a scope allows, read from either side of the scope, equal the plain join of every unit to its item.

One vault holds memories, preferences (one superseded), a forgotten memory and a document
of several chunks, across spaces, tags and sensitivities, all embedded. Random filters
(requests, reaches, dates, superseded versions included or not) are compared with the
naive query the index-only form replaced; both of its sides are reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.items import MemoryIn
from tests.conftest import module_vault
from vault import OWNER, VaultService
from vault.filters import Clause, ItemFilter
from vault.scope_units import allowed_units

SPACES = ["work", "home", "health"]
TAGS = ["a", "b"]
LEVELS = ["low", "medium", "high"]


@pytest.fixture(scope="module")
def stocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultService]:
    vault = module_vault(tmp_path_factory.mktemp("scope") / "vault")
    for n in range(24):
        memory = MemoryIn(
            text=f"note {n} about topic {n % 5} and the weather in town {n}",
            space=SPACES[n % 3],
            tags=[TAGS[n % 2]] if n % 4 else [],
            sensitivity=LEVELS[n % 3],  # type: ignore[arg-type]
        )
        vault.remember(OWNER, memory, merge=False)
    vault.set_preference(OWNER, "diet", "vegetarian", space="home")
    vault.set_preference(OWNER, "diet", "vegan", space="home")  # supersedes the first
    forgotten = vault.remember(OWNER, MemoryIn(text="a memory the owner forgot later", space="work"), merge=False)
    vault.forget(OWNER, forgotten.item.id)
    doc = tmp_path_factory.mktemp("doc") / "guide.txt"
    doc.write_text("\n\n".join(f"Paragraph {n} of the guide, on subject {n}. " * 12 for n in range(8)))
    vault.add_document(OWNER, doc, space="work")
    vault.reindex(OWNER)
    yield vault
    vault.close()


def naive(vault: VaultService, scope: ItemFilter) -> set[int]:
    where, params = scope.where("i")
    rows = vault.store.query(f"SELECT u.uid FROM units u JOIN items i ON i.id = u.item_id WHERE {where}", params)
    return {int(r[0]) for r in rows}


def clauses() -> st.SearchStrategy[Clause]:
    return st.builds(
        Clause,
        kinds=st.none() | st.frozensets(st.sampled_from(["memory", "preference", "document"])),
        spaces=st.none() | st.frozensets(st.sampled_from(SPACES)),
        tags=st.none() | st.frozensets(st.sampled_from(TAGS)),
        max_sensitivity=st.none() | st.sampled_from(LEVELS),
    )


def filters() -> st.SearchStrategy[ItemFilter]:
    now = datetime.now(UTC)
    return st.builds(
        ItemFilter,
        request=clauses(),
        reach=st.lists(clauses(), max_size=3).map(tuple) | st.just((Clause(),)),
        since=st.none() | st.just(now - timedelta(days=1)) | st.just(now + timedelta(days=1)),
        until=st.none() | st.just(now + timedelta(days=1)),
        include_superseded=st.booleans(),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scope=filters())
def test_the_allowed_units_are_exactly_the_scopes_units_that_have_a_vector(stocked: VaultService, scope: ItemFilter) -> None:
    index = stocked._retriever._ensure_index()
    ids = index.ids()
    expected = naive(stocked, scope)
    got = allowed_units(stocked.store, scope, ids)
    in_index = set(ids.tolist())
    assert set(got.ids.tolist()) & in_index == expected & in_index
    assert set(got.ids.tolist()) <= expected  # never a unit the scope leaves out, in the index or not
    assert got.covers == (in_index <= expected)
    assert got.any_unit == bool(expected)
    assert np.all(np.diff(got.ids) > 0)  # sorted, no repeats: a selector


def test_both_sides_were_read(stocked: VaultService) -> None:
    """The owner's scope reads the left-out side; a one-space grant reads the kept side; both agree with the join."""
    ids = stocked._retriever._ensure_index().ids()
    owner = allowed_units(stocked.store, ItemFilter(), ids)
    assert owner.covers and set(owner.ids.tolist()) == naive(stocked, ItemFilter()) == set(ids.tolist())
    # A retired item whose unit is still indexed (units of retired items are deleted today; the rule must not rely on it).
    row = stocked.store.one("SELECT i.id, u.uid FROM items i JOIN units u ON u.item_id = i.id WHERE i.kind = 'memory' LIMIT 1")
    assert row is not None
    stocked.store.execute("UPDATE items SET superseded_at = created_at WHERE id = ?", [row[0]])
    try:
        got_owner = allowed_units(stocked.store, ItemFilter(), ids)
        assert not got_owner.covers and int(row[1]) not in set(got_owner.ids.tolist())
        assert set(got_owner.ids.tolist()) == naive(stocked, ItemFilter())
    finally:
        stocked.store.execute("UPDATE items SET superseded_at = NULL WHERE id = ?", [row[0]])
    small = ItemFilter(reach=(Clause(spaces=frozenset({"health"}), kinds=frozenset({"memory"})),))
    got = allowed_units(stocked.store, small, ids)
    assert set(got.ids.tolist()) == naive(stocked, small)
    assert 0 < len(got.ids) < len(ids) // 2


def test_an_index_behind_the_database_never_lets_a_deleted_units_vector_through(stocked: VaultService) -> None:
    """A lagging index may still hold a forgotten unit's vector: no side of the scope names that unit, so only the
    kept side (read from the rows) keeps it out."""
    ids = stocked._retriever._ensure_index().ids()
    ghost = int(ids.max()) + 1000  # a vector whose unit is gone
    lagging = np.sort(np.append(ids, ghost))
    assert ghost in set(allowed_units(stocked.store, ItemFilter(), lagging).ids.tolist())  # in step: ids are trusted
    got = allowed_units(stocked.store, ItemFilter(), lagging, in_step=False)
    assert ghost not in set(got.ids.tolist()) and not got.covers
    assert set(got.ids.tolist()) == naive(stocked, ItemFilter())
