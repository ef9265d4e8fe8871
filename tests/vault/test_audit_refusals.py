"""Refused bearer tokens: audited per client, a burst counted in one entry a minute, none dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vault import OWNER, VaultService
from vault.audit import MAX_OPEN_REFUSALS, REFUSAL_WINDOW

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def refusals(vault: VaultService) -> list[tuple[str, str, int]]:
    return [
        (e.principal, str(e.detail["client"]), int(e.detail["count"]))
        for e in vault.audit_entries(OWNER, event="deny")
        if "client" in e.detail
    ]


def test_a_burst_is_one_entry_then_one_count_per_window_per_client(vault: VaultService) -> None:
    audit = vault._audit
    for second in range(0, 50, 5):
        audit.record_refused_token(None, "10.0.0.7", now=T0 + timedelta(seconds=second))
    audit.record_refused_token("01APP", "127.0.0.1", now=T0 + timedelta(seconds=1))
    # Only the first of each client is written at once: a flood costs no writes.
    assert vault.store.one("SELECT count(*) FROM audit WHERE event = 'deny'")[0] == 2
    # The next window opens with a fresh entry; the closed one's count is written first.
    audit.record_refused_token(None, "10.0.0.7", now=T0 + REFUSAL_WINDOW + timedelta(seconds=1))
    assert refusals(vault) == [
        ("unknown", "10.0.0.7", 1),
        ("app:01APP", "127.0.0.1", 1),
        ("unknown", "10.0.0.7", 9),
        ("unknown", "10.0.0.7", 1),
    ]
    vault.verify_audit(OWNER)


def test_reading_the_log_writes_every_count_so_far(vault: VaultService) -> None:
    for _ in range(4):
        vault._audit.record_refused_token(None, "10.0.0.8")
    assert sum(count for _, _, count in refusals(vault)) == 4
    vault._audit.record_refused_token(None, "10.0.0.8")
    vault._audit.record_refused_token(None, "10.0.0.8")
    vault.verify_audit(OWNER)
    assert sum(count for _, _, count in refusals(vault)) == 6


def test_many_clients_at_once_keep_memory_bounded_and_lose_no_count(vault: VaultService) -> None:
    audit = vault._audit
    for n in range(MAX_OPEN_REFUSALS + 10):
        audit.record_refused_token(None, f"10.1.{n // 256}.{n % 256}", now=T0)
        audit.record_refused_token(None, f"10.1.{n // 256}.{n % 256}", now=T0)
    assert len(audit._ledger.open) <= MAX_OPEN_REFUSALS
    assert sum(count for _, _, count in refusals(vault)) == 2 * (MAX_OPEN_REFUSALS + 10)
