"""What scopes would reach (VaultService.scope_reach) and a consent approval narrowed by space and sensitivity."""

from __future__ import annotations

import pytest

from schemas.items import MemoryIn
from vault import OWNER, VaultService
from vault.errors import InvalidInput, ScopeDenied


@pytest.fixture
def stocked(vault: VaultService) -> VaultService:
    vault.remember(OWNER, MemoryIn(text="Review on Friday", space="work", sensitivity="medium"))
    vault.remember(OWNER, MemoryIn(text="Salary notes", space="work", sensitivity="high"))
    vault.remember(OWNER, MemoryIn(text="Coffee black", space="personal"))
    vault.set_preference(OWNER, "lang", "en", space="personal")
    return vault


def test_counts_per_space_kind_and_sensitivity_match_what_the_app_then_sees(stocked: VaultService) -> None:
    reach = stocked.scope_reach(OWNER, ["read:memories#space=work", "search:preferences", "delete:memories#sens=low"])
    assert [(c.space, c.kind, c.sensitivity, c.count) for c in reach.counts] == [
        ("personal", "preference", "low", 1), ("work", "memory", "high", 1), ("work", "memory", "medium", 1),
    ]  # fmt: skip
    assert (reach.seen, reach.changed, reach.forgotten) == (3, 0, 1)
    assert {p.title for p in reach.preview} == {"Review on Friday", "Salary notes", "lang"}
    # The same clauses the policy applies: the app granted these scopes lists exactly the previewed items.
    stocked.add_app(OWNER, "app")
    stocked.grant(OWNER, "app", ["read:memories#space=work", "read:preferences"])
    listed = stocked.list_items(stocked.principal_for_app("app"))
    assert {i.text for i in listed.items} == {"Review on Friday", "Salary notes", "en"}


def test_the_preview_is_capped_and_only_the_owner_may_ask(stocked: VaultService) -> None:
    assert len(stocked.scope_reach(OWNER, ["read:*"], preview=1).preview) == 1
    assert stocked.scope_reach(OWNER, ["write:memories"]).preview == []
    stocked.add_app(OWNER, "app")
    with pytest.raises(ScopeDenied):
        stocked.scope_reach(stocked.principal_for_app("app"), ["read:*"])
    with pytest.raises(InvalidInput):
        stocked.scope_reach(OWNER, ["export:*"])


def test_an_approval_narrowed_by_space_and_sensitivity_grants_exactly_that(stocked: VaultService) -> None:
    stocked.add_app(OWNER, "app")
    app = stocked.principal_for_app("app")
    asked = stocked.request_access(app, ["read:memories", "search:memories"], "Plan")
    grant = stocked.approve_consent(OWNER, asked.id, scopes=["read:memories"], spaces=["work"], max_sensitivity="medium")
    assert grant.scopes == ["read:memories#space=work;sens=medium"]
    assert [i.text for i in stocked.list_items(app).items] == ["Review on Friday"]


def test_a_narrowing_cannot_widen_a_cap_the_app_asked_for(stocked: VaultService) -> None:
    stocked.add_app(OWNER, "app")
    asked = stocked.request_access(stocked.principal_for_app("app"), ["read:memories#sens=low"], "Plan")
    grant = stocked.approve_consent(OWNER, asked.id, max_sensitivity="high")
    assert grant.scopes == ["read:memories#sens=low"]
