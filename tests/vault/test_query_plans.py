"""The statements of a search and a write are planned from their selective side, whatever the vault's size.

Without ``ANALYZE`` statistics SQLite plans a statement the same way at 10 items as at 100k,
so a small vault shows the plans a large one gets. Twice a statement was planned from "every
item of this kind / space" (a partial index of live items) rather than from the few ids or the
one hash it was given: the duplicate check's hash lookup (0.24 s of every `add` at 100k) and an
app's result hydration (0.87 s). This test records every statement the service runs for those
calls and fails when one of them starts from such a scan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from schemas.items import MemoryIn, SearchQuery
from vault import OWNER, VaultService
from vault.lexical_rank import WHOLE_SCOPE
from vault.store import Store

# The partial and composite indexes of items that hold most of the vault: an outer loop over one of
# them reads every live item, or every item of a kind or space.
BROAD = re.compile(
    r"^(SCAN|SEARCH) (i|items) USING (COVERING )?INDEX (items_kind_space|items_live_space|items_live_new|items_live_scope)\b"
)


@contextmanager
def recorded(store: Store) -> Iterator[list[tuple[str, tuple[object, ...]]]]:
    seen: list[tuple[str, tuple[object, ...]]] = []
    real = Store.execute

    def execute(self: Store, sql: str, params: object = ()) -> object:
        if self is store and "SELECT" in sql.upper() and WHOLE_SCOPE not in sql:
            seen.append((sql, tuple(params) if isinstance(params, list | tuple) else ()))
        return real(self, sql, params)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Store, "execute", execute)
        yield seen


def outer_loops(store: Store, sql: str, params: tuple[object, ...]) -> list[str]:
    rows = store.conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return [str(r[3]) for r in rows if int(r[1]) == 0]


def broad_starts(vault: VaultService, call: Callable[[], object]) -> list[tuple[str, str]]:
    with recorded(vault.store) as seen:
        call()
    assert seen, "nothing was recorded"
    bad = []
    for sql, params in seen:
        if "INDEXED BY" in sql:  # vault/scope_units.py reads a whole side of a scope on purpose, from index pages
            continue
        loops = outer_loops(vault.store, sql, params)
        if loops and BROAD.match(loops[0]):
            bad.append((" ".join(sql.split())[:160], loops[0]))
    return bad


@pytest.fixture
def stocked(vault: VaultService) -> VaultService:
    for n in range(12):
        vault.remember(OWNER, MemoryIn(text=f"dinner note {n}: cooked pasta with friends", space="home"), merge=False)
    return vault


def test_an_apps_search_starts_from_its_hits_not_from_every_item_of_its_kind(stocked: VaultService) -> None:
    stocked.add_app(OWNER, "reader")
    stocked.grant(OWNER, "reader", ["search:memories"])
    who = stocked.principal_for_app("reader")
    assert broad_starts(stocked, lambda: stocked.search(who, SearchQuery(text="what did I cook for dinner", limit=5))) == []


def test_the_owners_search_and_write_start_from_what_they_were_given(stocked: VaultService) -> None:
    assert broad_starts(stocked, lambda: stocked.search(OWNER, SearchQuery(text="pasta with friends", limit=5))) == []
    assert broad_starts(stocked, lambda: stocked.remember(OWNER, MemoryIn(text="cooked risotto on sunday", space="home"))) == []
