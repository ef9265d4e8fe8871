from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.items import MemoryIn
from vault import OWNER, Principal, VaultService
from vault.access import REQUEST_TTL
from vault.errors import InvalidInput, NotFound, ScopeDenied

T0 = datetime.now(UTC)


def make_app(vault: VaultService, name: str = "cursor") -> Principal:
    return vault.authenticate_app(vault.add_app(OWNER, name).token)


def test_a_request_is_pending_and_grants_nothing_until_approved(vault: VaultService) -> None:
    vault.remember(OWNER, MemoryIn(text="The quarterly report is due Friday", space="work"))
    app = make_app(vault)
    request = vault.request_access(app, ["read:memories#space=work"], "summarise my week")
    assert request.status == "pending" and request.link == f"/consent/{request.id}"
    assert [r.id for r in vault.list_consent(OWNER)] == [request.id]
    with pytest.raises(ScopeDenied):
        vault.list_items(app)
    grant = vault.approve_consent(OWNER, request.id)
    assert grant.scopes == ["read:memories#space=work"] and grant.consent_id == request.id
    assert grant.purpose == "summarise my week"
    assert vault.list_items(app).total == 1
    assert vault.consent_status(app, request.id).status == "approved"
    assert vault.list_consent(OWNER) == []


def test_the_link_carries_no_personal_data(vault: VaultService) -> None:
    request = vault.request_access(make_app(vault), ["read:memories#space=health"], "my secret purpose")
    assert "health" not in request.link and "secret" not in request.link and "cursor" not in request.link


def test_approval_can_narrow_the_scopes(vault: VaultService) -> None:
    app = make_app(vault)
    request = vault.request_access(app, ["read:*", "write:memories"], "assistant")
    grant = vault.approve_consent(OWNER, request.id, scopes=["read:memories#space=work;sens=low"])
    assert grant.scopes == ["read:memories#space=work;sens=low"]
    assert vault.list_access(app).scopes == ["read:memories#space=work;sens=low"]
    assert vault.audit_entries(OWNER, event="consent_approve")[0].detail["narrowed"] is True


def test_approval_cannot_widen_the_request(vault: VaultService) -> None:
    request = vault.request_access(make_app(vault), ["read:memories#space=work"], "assistant")
    for wider in (["read:memories"], ["read:memories#space=work,health"], ["write:memories#space=work"]):
        with pytest.raises(InvalidInput):
            vault.approve_consent(OWNER, request.id, scopes=wider)
    assert vault.consent_status(OWNER, request.id).status == "pending"


def test_approval_can_shorten_the_expiry_but_not_extend_it(vault: VaultService) -> None:
    app = make_app(vault)
    asked = T0 + timedelta(days=30)
    first = vault.request_access(app, ["read:memories"], "assistant", expires_at=asked)
    assert vault.approve_consent(OWNER, first.id, expires_at=T0 + timedelta(days=1)).expires_at == T0 + timedelta(days=1)
    second = vault.request_access(app, ["read:memories"], "assistant", expires_at=asked)
    assert vault.approve_consent(OWNER, second.id, expires_at=T0 + timedelta(days=90)).expires_at == asked
    third = vault.request_access(app, ["read:memories"], "assistant", expires_at=asked)
    assert vault.approve_consent(OWNER, third.id).expires_at == asked


def test_a_denied_request_grants_nothing_and_cannot_be_approved_later(vault: VaultService) -> None:
    app = make_app(vault)
    request = vault.request_access(app, ["read:memories"], "assistant")
    assert vault.deny_consent(OWNER, request.id).status == "denied"
    with pytest.raises(InvalidInput):
        vault.approve_consent(OWNER, request.id)
    with pytest.raises(ScopeDenied):
        vault.list_items(app)
    assert [e.event for e in vault.audit_entries(OWNER, app="cursor")][-3:] == ["consent_request", "consent_deny", "deny"]


def test_requests_expire_unanswered(vault: VaultService) -> None:
    app = make_app(vault)
    request = vault.request_access(app, ["read:memories"], "assistant", now=T0 - REQUEST_TTL - timedelta(minutes=1))
    assert vault.consent_status(OWNER, request.id).status == "expired"
    assert vault.list_consent(OWNER) == []
    with pytest.raises(InvalidInput):
        vault.approve_consent(OWNER, request.id)


def test_an_app_cannot_decide_consent(vault: VaultService) -> None:
    app = make_app(vault)
    request = vault.request_access(app, ["read:memories"], "assistant")
    with pytest.raises(ScopeDenied):
        vault.approve_consent(app, request.id)
    with pytest.raises(ScopeDenied):
        vault.deny_consent(app, request.id)
    with pytest.raises(ScopeDenied):
        vault.list_consent(app)
    assert vault.consent_status(OWNER, request.id).status == "pending"


def test_an_app_sees_only_its_own_requests(vault: VaultService) -> None:
    mine = make_app(vault, "mine")
    other = make_app(vault, "other")
    request = vault.request_access(mine, ["read:memories"], "assistant")
    with pytest.raises(NotFound):
        vault.consent_status(other, request.id)
    assert [r.id for r in vault.list_access(mine).pending] == [request.id]
    assert vault.list_access(other).pending == []


@pytest.mark.parametrize("scopes", [[], ["read:notes"], ["export:*"], ["admin:*"]])
def test_requests_for_malformed_or_owner_only_scopes_are_rejected(vault: VaultService, scopes: list[str]) -> None:
    with pytest.raises(InvalidInput):
        vault.request_access(make_app(vault), scopes, "assistant")


def test_a_request_needs_a_purpose(vault: VaultService) -> None:
    with pytest.raises(InvalidInput):
        vault.request_access(make_app(vault), ["read:memories"], "  ")


def test_the_owner_does_not_request_access(vault: VaultService) -> None:
    with pytest.raises(InvalidInput):
        vault.request_access(OWNER, ["read:memories"], "assistant")
