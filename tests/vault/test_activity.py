"""The owner's view of the audit log (vault/service/activity.py): pages, filters, the per-app report, what an app saw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.activity import ActivityQuery
from schemas.items import MemoryIn, SearchQuery
from vault import OWNER, VaultService
from vault.errors import NotFound, ScopeDenied


def _busy(vault: VaultService) -> tuple[str, str]:
    work = vault.remember(OWNER, MemoryIn(text="Standup is at 10:00", space="work")).item.id
    other = vault.remember(OWNER, MemoryIn(text="Dentist on Friday", space="health")).item.id
    vault.add_app(OWNER, "reader")
    vault.grant(OWNER, "reader", ["read:memories#space=work"], purpose="testing")
    app = vault.principal_for_app("reader")
    vault.get_item(app, work)
    vault.get_item(app, work)
    with pytest.raises(ScopeDenied):
        vault.search(app, SearchQuery(text="dentist"))
    vault.add_app(OWNER, "quiet")
    return work, other


def test_the_report_counts_items_seen_disclosures_and_denials_per_app(vault: VaultService) -> None:
    work, _ = _busy(vault)
    report = {a.name: a for a in vault.app_activity(OWNER)}
    reader = report["reader"]
    assert (reader.items_seen, reader.disclosures, reader.denials, reader.removed) == (1, 2, 1, False)
    assert reader.last_access is not None
    # An app that got nothing still has a line (its registration), with no access.
    assert report["quiet"].last_access is None and report["quiet"].items_seen == 0
    summary, seen = vault.app_disclosures(OWNER, "reader")
    assert summary is not None and summary.app_id == reader.app_id
    assert [(d.item_id, d.times, d.kind, d.space) for d in seen] == [(work, 2, "memory", "work")]
    assert seen[0].title == "Standup is at 10:00"


def test_a_removed_app_keeps_its_report_and_is_found_by_name(vault: VaultService) -> None:
    work, _ = _busy(vault)
    vault.remove_app(OWNER, "reader")
    report = {a.name: a for a in vault.app_activity(OWNER)}
    assert report["reader"].removed and report["reader"].items_seen == 1
    assert [d.item_id for d in vault.app_disclosures(OWNER, "reader")[1]] == [work]


def test_a_forgotten_item_is_still_listed_as_seen(vault: VaultService) -> None:
    work, _ = _busy(vault)
    vault.forget(OWNER, work)
    (seen,) = vault.app_disclosures(OWNER, "reader")[1]
    assert seen.item_id == work and seen.forgotten


def test_pages_go_back_by_sequence_and_filters_narrow(vault: VaultService) -> None:
    _busy(vault)
    everything = vault.activity_export(OWNER, ActivityQuery())
    first = vault.activity(OWNER, ActivityQuery(limit=2))
    assert first.total == len(everything) and [e.seq for e in first.entries] == [everything[-1].seq, everything[-2].seq]
    assert first.next_before == everything[-2].seq
    second = vault.activity(OWNER, ActivityQuery(limit=2, before=first.next_before))
    assert [e.seq for e in second.entries] == [everything[-3].seq, everything[-4].seq]
    last = vault.activity(OWNER, ActivityQuery(limit=len(everything)))
    assert last.next_before is None
    denials = vault.activity(OWNER, ActivityQuery(app="reader", event="deny"))
    assert denials.total == 1 and denials.entries[0].detail["what"] == "search"
    assert {"deny", "disclose", "grant", "app_add"} <= set(first.events)


def test_the_time_range_includes_since_and_excludes_until(vault: VaultService) -> None:
    _busy(vault)
    now = datetime.now(UTC)
    assert vault.activity(OWNER, ActivityQuery(until=now - timedelta(days=1))).total == 0
    assert vault.activity(OWNER, ActivityQuery(since=now + timedelta(days=1))).total == 0
    assert vault.activity(OWNER, ActivityQuery(since=now - timedelta(days=1), until=now + timedelta(days=1))).total > 0


def test_only_the_owner_reads_activity_and_unknown_apps_are_not_found(vault: VaultService) -> None:
    _busy(vault)
    app = vault.principal_for_app("reader")
    with pytest.raises(ScopeDenied):
        vault.app_activity(app)
    with pytest.raises(ScopeDenied):
        vault.activity(app, ActivityQuery())
    with pytest.raises(NotFound):
        vault.activity(OWNER, ActivityQuery(app="nobody"))


def test_lock_owner_drops_unused_login_links_and_is_audited(vault: VaultService) -> None:
    from vault.errors import InvalidToken

    link = vault.owner_login_link(OWNER)
    assert vault.lock_owner(OWNER) is False  # no unlock session runs for this test vault
    with pytest.raises(InvalidToken):
        vault.redeem_owner_login(link)
    (entry,) = vault.activity(OWNER, ActivityQuery(event="lock")).entries
    assert entry.detail == {"login_links": 1, "unlock_session": False}
