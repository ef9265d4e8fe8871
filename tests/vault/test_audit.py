from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.items import MemoryIn, SearchQuery
from vault import OWNER, Principal, VaultService
from vault.audit import entry_fields, entry_hash
from vault.errors import AuditTampered, NotFound


def make_app(vault: VaultService, name: str, *scopes: str) -> Principal:
    vault.add_app(OWNER, name)
    if scopes:
        vault.grant(OWNER, name, list(scopes), purpose="testing")
    return vault.principal_for_app(name)


@pytest.fixture
def busy(vault: VaultService) -> VaultService:
    """A vault whose audit log has a few entries of each kind."""
    item = vault.remember(OWNER, MemoryIn(text="I like green tea", space="work")).item
    app = make_app(vault, "cursor", "read:memories#space=work", "search:memories")
    vault.get_item(app, item.id)
    vault.search(app, SearchQuery(text="tea", mode="lexical", purpose="suggest a drink"))
    vault.revoke_app(OWNER, "cursor")
    return vault


def test_an_untouched_log_verifies(busy: VaultService) -> None:
    report = busy.verify_audit(OWNER)
    assert report.entries == len(busy.audit_entries(OWNER)) >= 6
    assert report.head == busy.audit_entries(OWNER)[-1].hash


def test_an_empty_log_verifies(vault: VaultService) -> None:
    assert vault.verify_audit(OWNER).entries == 0


def test_a_disclosure_records_the_app_the_items_the_scope_and_the_purpose(busy: VaultService) -> None:
    read, searched = busy.audit_entries(OWNER, event="disclose")
    assert read.principal.startswith("app:") and len(read.item_ids) == 1
    assert read.scope == "read:memories#space=work" and read.detail["via"] == "get_item"
    assert searched.scope == "search:memories" and searched.purpose == "suggest a drink"
    assert searched.item_ids == read.item_ids


def test_the_owner_reading_their_own_vault_is_no_disclosure(vault: VaultService) -> None:
    vault.remember(OWNER, MemoryIn(text="I like green tea"))
    vault.list_items(OWNER)
    assert [e.event for e in vault.audit_entries(OWNER)] == ["write"]


def test_grant_changes_are_filed_under_the_app(busy: VaultService) -> None:
    app = busy.principal_for_app("cursor")
    events = [e.event for e in busy.audit_entries(OWNER, app="cursor")]
    assert events == ["app_add", "grant", "disclose", "disclose", "revoke"]
    assert busy.audit_entries(OWNER, app=str(app.app_id)) == busy.audit_entries(OWNER, app="cursor")


def test_entries_can_be_filtered_by_time_and_limited(vault: VaultService) -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    vault.add_app(OWNER, "a", now=t0)
    vault.add_app(OWNER, "b", now=t0 + timedelta(days=2))
    vault.add_app(OWNER, "c", now=t0 + timedelta(days=3))
    assert [e.detail["name"] for e in vault.audit_entries(OWNER, since=t0 + timedelta(days=1))] == ["b", "c"]
    assert [e.detail["name"] for e in vault.audit_entries(OWNER, limit=1)] == ["c"]


def test_audit_of_an_unknown_app_is_not_found(vault: VaultService) -> None:
    with pytest.raises(NotFound):
        vault.audit_entries(OWNER, app="nobody")


def test_a_removed_app_keeps_its_history(busy: VaultService) -> None:
    app_id = str(busy.principal_for_app("cursor").app_id)
    busy.remove_app(OWNER, "cursor")
    assert len(busy.audit_entries(OWNER, app=app_id)) == 6


def test_verify_catches_an_edited_entry(busy: VaultService) -> None:
    busy.store.execute("UPDATE audit SET item_ids = '[]' WHERE seq = 4")
    with pytest.raises(AuditTampered) as err:
        busy.verify_audit(OWNER)
    assert err.value.seq == 4


def test_verify_catches_a_removed_entry(busy: VaultService) -> None:
    busy.store.execute("DELETE FROM audit WHERE seq = 3")
    with pytest.raises(AuditTampered) as err:
        busy.verify_audit(OWNER)
    assert err.value.seq == 3


def test_verify_catches_a_cut_tail(busy: VaultService) -> None:
    last = busy.verify_audit(OWNER).entries
    busy.store.execute("DELETE FROM audit WHERE seq = ?", [last])
    with pytest.raises(AuditTampered) as err:
        busy.verify_audit(OWNER)
    assert err.value.seq == last


def test_verify_catches_reordered_entries(busy: VaultService) -> None:
    # Swap the contents of entries 2 and 3, hashes and all.
    busy.store.execute("UPDATE audit SET seq = -1 WHERE seq = 2")
    busy.store.execute("UPDATE audit SET seq = 2 WHERE seq = 3")
    busy.store.execute("UPDATE audit SET seq = 3 WHERE seq = -1")
    with pytest.raises(AuditTampered) as err:
        busy.verify_audit(OWNER)
    assert err.value.seq == 2


def test_verify_catches_an_entry_rewritten_with_a_fresh_hash(busy: VaultService) -> None:
    # Recomputing an edited entry's own hash still breaks the next entry's link.
    row = busy.store.one("SELECT * FROM audit WHERE seq = 2")
    assert row is not None
    busy.store.execute("UPDATE audit SET event = 'nothing' WHERE seq = 2")
    edited = busy.store.one("SELECT * FROM audit WHERE seq = 2")
    assert edited is not None
    busy.store.execute("UPDATE audit SET hash = ? WHERE seq = 2", [entry_hash(entry_fields(edited, row["prev_hash"]))])
    with pytest.raises(AuditTampered) as err:
        busy.verify_audit(OWNER)
    assert err.value.seq == 3


def test_an_apps_write_and_forget_record_the_scopes_that_allowed_them(vault: VaultService) -> None:
    app = make_app(vault, "cursor", "write:memories#space=work", "read:memories", "delete:memories")
    item = vault.remember(app, MemoryIn(text="Standup moved to 10:00", space="work")).item
    vault.forget(app, item.id)
    events = [e for e in vault.audit_entries(OWNER, app="cursor") if e.event in ("write", "forget")]
    write, forget = events
    assert write.scope == "write:memories#space=work" and write.item_ids == [item.id]
    assert forget.scope == "delete:memories"
