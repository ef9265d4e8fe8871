"""Scope filtering happens before ranking: out-of-scope items change no result, count, snippet or error (BRIEF §4).

tests/vault/test_access_property.py proves no out-of-scope item is ever returned. Here the
stronger promise: two vaults hold the same in-scope items, one of them also out-of-scope
items that match the query well; an app with a narrow grant must not be able to tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import pytest

from schemas.items import MemoryIn, SearchQuery
from tests.security.conftest import OpenVault, make_app
from vault import OWNER, Principal, VaultService
from vault.embed import Embedder
from vault.errors import VaultError

GRANT = ("search:memories#space=work", "read:*#space=work", "write:*#space=work", "delete:*#space=work")
IN_SCOPE = [
    "The Atlas launch checklist lives in the shared drive",
    "Send the weekly report to Maria before noon",
    "Standup is at ten every weekday",
    "Expense claims are due by the fifth of the month",
    "The printer on floor two jams often",
    "Quarterly planning starts in September",
]
# Near matches of the query outside the grant: they would shift ranks, scores and counts if they leaked.
OUT_OF_SCOPE = [f"Health report number {n} about the Atlas clinic visit" for n in range(6)]
QUERY = "Atlas report"
Mode = Literal["hybrid", "lexical", "dense"]


def populate(vault: VaultService, crowded: bool) -> Principal:
    for text in IN_SCOPE:
        vault.remember(OWNER, MemoryIn(text=text, space="work"))
    if crowded:
        for text in OUT_OF_SCOPE:
            vault.remember(OWNER, MemoryIn(text=text, space="health", sensitivity="high"))
    return make_app(vault, "cursor", *GRANT)


def answers(vault: VaultService, app: Principal, mode: Mode) -> list[tuple[str, float, str]]:
    hits = vault.search(app, SearchQuery(text=QUERY, mode=mode, limit=5)).hits
    return [(h.text, h.score, h.snippet) for h in hits]


@pytest.fixture
def worlds(other_vault: OpenVault, embedder: Embedder) -> tuple[tuple[VaultService, Principal], tuple[VaultService, Principal]]:
    """The same in-scope items alone ("narrow") and among out-of-scope near matches ("crowded")."""
    narrow, crowded = other_vault("narrow"), other_vault("crowded")
    return (narrow, populate(narrow, False)), (crowded, populate(crowded, True))


def test_out_of_scope_items_change_no_dense_hit_score_snippet_or_count(
    worlds: tuple[tuple[VaultService, Principal], tuple[VaultService, Principal]],
) -> None:
    (narrow, a), (crowded, b) = worlds
    assert answers(narrow, a, "dense") == answers(crowded, b, "dense")
    assert narrow.list_items(a).total == crowded.list_items(b).total == len(IN_SCOPE)
    assert narrow.spaces(a) == crowded.spaces(b)
    # A test of the test: the owner, who may see everything, does get different answers.
    assert answers(narrow, OWNER, "dense") != answers(crowded, OWNER, "dense")


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_out_of_scope_items_change_no_lexical_or_hybrid_rank_or_score(
    worlds: tuple[tuple[VaultService, Principal], tuple[VaultService, Principal]], mode: Mode
) -> None:
    # BM25 statistics (N, df, average length) are computed over the app's scope only.
    (narrow, a), (crowded, b) = worlds
    assert answers(narrow, a, mode) == answers(crowded, b, mode)
    # A test of the test: the owner, who may see everything, does get different scores.
    assert answers(narrow, OWNER, mode) != answers(crowded, OWNER, mode)


MISSING = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"


def refusal(call: Callable[[], object]) -> tuple[type[VaultError], str]:
    try:
        call()
    except VaultError as exc:
        return type(exc), exc.message
    raise AssertionError("the call was not refused")


def test_an_out_of_scope_id_or_key_is_refused_exactly_like_a_missing_one(vault: VaultService) -> None:
    app = make_app(vault, "cursor", *GRANT)
    secret = vault.remember(OWNER, MemoryIn(text="My doctor is Dr Alvarez", space="health", sensitivity="high")).item.id
    vault.set_preference(OWNER, "clinic", "Alvarez Family Practice", space="health")
    by_id: dict[str, Callable[[str], object]] = {
        "get_item": lambda i: vault.get_item(app, i),
        "edit": lambda i: vault.edit(app, i, tags=["x"]),
        "forget": lambda i: vault.forget(app, i),
        "show_document": lambda i: vault.show_document(app, i),
        "remove_document": lambda i: vault.remove_document(app, i),
    }
    for name, call in by_id.items():
        hidden_type, hidden = refusal(partial(call, secret))
        missing_type, missing = refusal(partial(call, MISSING))
        assert hidden_type is missing_type, name
        assert hidden.replace(secret, "ID") == missing.replace(MISSING, "ID"), name
    by_key: dict[str, Callable[[str], object]] = {
        "get_preference": lambda k: vault.get_preference(app, k),
        "preference_history": lambda k: vault.preference_history(app, k),
        "unset_preference": lambda k: vault.unset_preference(app, k),
    }
    for name, call in by_key.items():
        hidden_type, hidden = refusal(partial(call, "clinic"))
        missing_type, missing = refusal(partial(call, "nosuchkey"))
        assert hidden_type is missing_type, name
        assert hidden.replace("clinic", "KEY") == missing.replace("nosuchkey", "KEY"), name
    # A test of the test: the owner reaches the secret, so the refusals above came from scope.
    assert vault.get_item(OWNER, secret).id == secret
