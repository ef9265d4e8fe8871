"""request_access limits: identical pending requests collapse, a per-app cap, bulk deny (issue 23 §3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vault import OWNER, Principal, VaultService
from vault.access import MAX_PENDING_PER_APP, REQUEST_TTL
from vault.errors import LimitReached, ScopeDenied

T0 = datetime.now(UTC)


def make_app(vault: VaultService, name: str = "cursor") -> Principal:
    return vault.authenticate_app(vault.add_app(OWNER, name).token)


def test_an_identical_pending_request_returns_the_existing_one(vault: VaultService) -> None:
    app = make_app(vault)
    first = vault.request_access(app, ["read:memories#space=work", "search:memories"], "plan my week")
    again = [vault.request_access(app, ["search:memories", "read:memories#space=work"], " plan my week ") for _ in range(50)]
    assert {r.id for r in again} == {first.id}
    assert [r.id for r in vault.list_consent(OWNER)] == [first.id]
    assert len(vault.audit_entries(OWNER, event="consent_request")) == 1
    # Another purpose, other scopes, or another app is another request.
    other = [
        vault.request_access(app, ["read:memories#space=work", "search:memories"], "plan my month"),
        vault.request_access(app, ["read:memories#space=work"], "plan my week"),
        vault.request_access(make_app(vault, "zed"), ["read:memories#space=work", "search:memories"], "plan my week"),
    ]
    assert len({first.id, *(r.id for r in other)}) == 4


def test_a_decided_or_lapsed_request_is_not_reused(vault: VaultService) -> None:
    app = make_app(vault)
    old = vault.request_access(app, ["read:memories"], "assistant", now=T0 - REQUEST_TTL - timedelta(minutes=1))
    fresh = vault.request_access(app, ["read:memories"], "assistant")
    assert fresh.id != old.id
    vault.deny_consent(OWNER, fresh.id)
    assert vault.request_access(app, ["read:memories"], "assistant").id not in (old.id, fresh.id)


def test_pending_requests_are_capped_per_app_with_a_clear_error(vault: VaultService) -> None:
    app, other = make_app(vault), make_app(vault, "zed")
    for n in range(MAX_PENDING_PER_APP):
        vault.request_access(app, ["read:memories"], f"purpose {n}")
    with pytest.raises(LimitReached, match=f"already has {MAX_PENDING_PER_APP} pending consent requests") as raised:
        vault.request_access(app, ["read:memories"], "one more")
    assert raised.value.exit_code == 34 and raised.value.http_status == 429
    assert len(vault.list_consent(OWNER)) == MAX_PENDING_PER_APP
    # The cap is per app, and deciding frees room.
    vault.request_access(other, ["read:memories"], "mine")
    vault.deny_consent(OWNER, vault.list_consent(OWNER, app="cursor")[0].id)
    vault.request_access(app, ["read:memories"], "one more")


def test_bulk_deny_denies_every_pending_request_of_one_app_or_all(vault: VaultService) -> None:
    app, other = make_app(vault), make_app(vault, "zed")
    mine = [vault.request_access(app, ["read:memories"], f"purpose {n}") for n in range(5)]
    theirs = vault.request_access(other, ["read:memories"], "theirs")
    with pytest.raises(ScopeDenied):
        vault.deny_all_consent(app)
    denied = vault.deny_all_consent(OWNER, app="cursor")
    assert sorted(r.id for r in denied) == sorted(r.id for r in mine) and {r.status for r in denied} == {"denied"}
    assert [r.id for r in vault.list_consent(OWNER)] == [theirs.id]
    assert len(vault.audit_entries(OWNER, event="consent_deny")) == 5
    assert [r.id for r in vault.deny_all_consent(OWNER)] == [theirs.id]
    assert vault.list_consent(OWNER) == [] and vault.deny_all_consent(OWNER) == []
    vault.verify_audit(OWNER)
