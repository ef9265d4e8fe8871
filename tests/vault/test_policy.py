from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from schemas.items import MemoryIn, SearchQuery
from vault import OWNER, Principal, VaultService
from vault.errors import NotFound, ScopeDenied
from vault.filters import Clause
from vault.policy import Policy

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def make_app(vault: VaultService, name: str, *scopes: str, expires_at: datetime | None = None) -> Principal:
    vault.add_app(OWNER, name)
    if scopes:
        vault.grant(OWNER, name, list(scopes), expires_at=expires_at)
    return vault.principal_for_app(name)


def remember(vault: VaultService, text: str, space: str = "personal", tags: list[str] | None = None, sens: str = "low") -> str:
    memory = MemoryIn.model_validate({"text": text, "space": space, "tags": tags or [], "sensitivity": sens})
    return vault.remember(OWNER, memory).item.id


def denials(vault: VaultService) -> int:
    return len(vault.audit_entries(OWNER, event="deny"))


def test_a_new_app_is_denied_everything(vault: VaultService) -> None:
    remember(vault, "I like green tea")
    app = make_app(vault, "cursor")
    with pytest.raises(ScopeDenied):
        vault.list_items(app)
    with pytest.raises(ScopeDenied):
        vault.search(app, SearchQuery(text="tea"))
    with pytest.raises(ScopeDenied):
        vault.remember(app, MemoryIn(text="I like coffee"))


def test_the_reach_is_the_union_of_the_live_grants_for_that_action(vault: VaultService) -> None:
    app = make_app(vault, "cursor", "read:memories#space=work", "read:preferences#sens=low", "search:documents")
    scope = Policy(vault.store).read_filter(app, "read")
    assert set(scope.reach) == {
        Clause(kinds=frozenset({"memory"}), spaces=frozenset({"work"})),
        Clause(kinds=frozenset({"preference"}), max_sensitivity="low"),
    }


def test_an_app_sees_only_the_items_its_grant_reaches(vault: VaultService) -> None:
    work = remember(vault, "The quarterly report is due Friday", space="work")
    remember(vault, "My doctor is Dr Alvarez", space="health", sens="high")
    app = make_app(vault, "cursor", "read:memories#space=work")
    assert [i.id for i in vault.list_items(app).items] == [work]
    assert vault.list_items(app).total == 1
    assert [s.space for s in vault.spaces(app)] == ["work"]


def test_an_app_with_a_grant_that_matches_nothing_sees_nothing(vault: VaultService) -> None:
    remember(vault, "The quarterly report is due Friday", space="work")
    app = make_app(vault, "cursor", "read:memories#space=garden")
    assert vault.list_items(app).items == []
    assert vault.spaces(app) == []


def test_an_out_of_scope_item_is_not_found_like_a_missing_one(vault: VaultService) -> None:
    secret = remember(vault, "My doctor is Dr Alvarez", space="health", sens="high")
    app = make_app(vault, "cursor", "read:memories#sens=medium")
    with pytest.raises(NotFound) as out_of_scope:
        vault.get_item(app, secret)
    with pytest.raises(NotFound) as missing:
        vault.get_item(app, "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert str(out_of_scope.value).replace(secret, "ID") == str(missing.value).replace("01ZZZZZZZZZZZZZZZZZZZZZZZZ", "ID")


def test_a_grant_for_one_action_does_not_allow_another(vault: VaultService) -> None:
    remember(vault, "I like green tea")
    app = make_app(vault, "cursor", "search:memories", "write:memories")
    assert vault.search(app, SearchQuery(text="tea", mode="lexical")).hits
    with pytest.raises(ScopeDenied):
        vault.list_items(app)


def test_revocation_takes_effect_on_the_next_call(vault: VaultService) -> None:
    remember(vault, "I like green tea")
    app = make_app(vault, "cursor")
    grant = vault.grant(OWNER, "cursor", ["read:memories"])
    assert vault.list_items(app).total == 1
    vault.revoke(OWNER, grant.id)
    with pytest.raises(ScopeDenied):
        vault.list_items(app)


def test_an_expired_grant_allows_nothing(vault: VaultService) -> None:
    app = make_app(vault, "cursor", "read:memories", expires_at=T0 + timedelta(hours=1))
    policy = Policy(vault.store)
    assert policy.read_filter(app, "read", now=T0).reach
    with pytest.raises(ScopeDenied):
        policy.read_filter(app, "read", now=T0 + timedelta(hours=2))


def test_an_expired_grant_is_refused_by_the_service(vault: VaultService) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    vault.add_app(OWNER, "cursor")
    vault.grant(OWNER, "cursor", ["read:memories"], expires_at=past + timedelta(hours=1), now=past)
    with pytest.raises(ScopeDenied):
        vault.list_items(vault.principal_for_app("cursor"))


def test_an_app_writes_only_where_its_grant_allows_and_is_stamped_as_author(vault: VaultService) -> None:
    app = make_app(vault, "cursor", "write:memories#space=work;sens=medium", "read:memories#space=work")
    written = vault.remember(app, MemoryIn(text="Standup moved to 10:00", space="work")).item
    assert written.provenance.created_by == app.label
    with pytest.raises(ScopeDenied):
        vault.remember(app, MemoryIn(text="I have a cold", space="health"))
    with pytest.raises(ScopeDenied):
        vault.remember(app, MemoryIn(text="Salary is confidential", space="work", sensitivity="high"))
    with pytest.raises(ScopeDenied):
        vault.edit(app, written.id, space="health")


def test_a_write_only_app_does_not_learn_of_existing_twins(vault: VaultService) -> None:
    remember(vault, "Standup moved to 10:00", space="work")
    app = make_app(vault, "cursor", "write:memories#space=work")
    result = vault.remember(app, MemoryIn(text="Standup moved to 10:00", space="work"))
    assert result.action == "added" and result.duplicate_of is None


def test_an_app_deletes_only_with_a_delete_grant(vault: VaultService) -> None:
    item = remember(vault, "Standup moved to 10:00", space="work")
    reader = make_app(vault, "reader", "read:memories")
    with pytest.raises(ScopeDenied):
        vault.forget(reader, item)
    deleter = make_app(vault, "deleter", "read:memories", "delete:memories#space=work")
    vault.forget(deleter, item)
    with pytest.raises(NotFound):
        vault.get_item(OWNER, item)


@pytest.mark.parametrize("call", ["status", "purge", "grant", "revoke_app", "list_consent", "audit_entries", "verify_audit"])
def test_owner_only_operations_are_refused_to_apps(vault: VaultService, call: str) -> None:
    app = make_app(vault, "cursor", "read:*", "write:*", "delete:*", "search:*")
    calls: dict[str, Callable[[], object]] = {
        "status": lambda: vault.status(app),
        "purge": lambda: vault.purge(app),
        "grant": lambda: vault.grant(app, "cursor", ["read:*"]),
        "revoke_app": lambda: vault.revoke_app(app, "cursor"),
        "list_consent": lambda: vault.list_consent(app),
        "audit_entries": lambda: vault.audit_entries(app),
        "verify_audit": lambda: vault.verify_audit(app),
    }
    with pytest.raises(ScopeDenied):
        calls[call]()
    assert denials(vault) == 1


def test_every_denial_is_audited(vault: VaultService) -> None:
    app = make_app(vault, "cursor")
    with pytest.raises(ScopeDenied):
        vault.list_items(app)
    (entry,) = vault.audit_entries(OWNER, event="deny")
    assert entry.principal == app.label and entry.app_id == app.app_id


def test_a_denial_inside_a_failed_transaction_is_still_audited(vault: VaultService) -> None:
    vault.set_preference(OWNER, "diet", "vegetarian", space="health")
    app = make_app(vault, "cursor", "write:preferences#space=personal")
    with pytest.raises(ScopeDenied):
        # The new value may go to "personal", but the current one lives in "health".
        vault.set_preference(app, "diet", "vegan", space="personal")
    assert vault.get_preference(OWNER, "diet").value == "vegetarian"
    assert denials(vault) == 1


def test_an_app_does_not_update_a_near_twin_it_may_not_write(vault: VaultService) -> None:
    owners = remember(vault, "I take 20mg of lisinopril every morning", sens="high")
    app = make_app(vault, "cursor", "read:memories", "write:memories#sens=low")
    result = vault.remember(app, MemoryIn(text="I take 20mg of lisinopril every morning!", sensitivity="low"))
    assert result.action == "added" and result.item.id != owners
    assert vault.get_item(OWNER, owners).text == "I take 20mg of lisinopril every morning"


def test_an_app_updates_only_its_own_near_twins(vault: VaultService) -> None:
    owners = remember(vault, "I take 20mg of lisinopril every morning")
    app = make_app(vault, "cursor", "read:memories", "write:memories#sens=low")
    first = vault.remember(app, MemoryIn(text="I take 20mg of lisinopril every morning!", sensitivity="low"))
    # The owner's memory keeps its text and its provenance; the app adds its own.
    assert first.action == "added" and first.item.id != owners
    assert vault.get_item(OWNER, owners).text == "I take 20mg of lisinopril every morning"
    again = vault.remember(app, MemoryIn(text="I take 20 mg of lisinopril every morning!", sensitivity="low"))
    assert again.action == "updated" and again.item.id == first.item.id
