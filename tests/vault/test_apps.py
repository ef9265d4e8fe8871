from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from vault import OWNER, VaultService
from vault.apps import SEEN_RESOLUTION
from vault.errors import InvalidInput, InvalidToken, NotFound, ScopeDenied


def test_a_new_app_gets_a_token_that_authenticates_as_that_app(vault: VaultService) -> None:
    created = vault.add_app(OWNER, "claude-desktop")
    principal = vault.authenticate_app(created.token)
    assert principal.app_id == created.app.id and principal.name == "claude-desktop"
    assert principal.label == f"app:{created.app.id}"


def test_the_token_is_stored_only_as_its_hash(vault: VaultService) -> None:
    created = vault.add_app(OWNER, "cursor")
    rows = vault.store.query("SELECT * FROM apps")
    assert all(created.token not in [str(v) for v in tuple(r)] for r in rows)
    assert rows[0]["token_hash"] == hashlib.sha256(created.token.encode()).hexdigest()
    assert vault.list_apps(OWNER)[0].model_dump().keys().isdisjoint({"token", "token_hash"})


def test_an_unknown_token_is_rejected(vault: VaultService) -> None:
    vault.add_app(OWNER, "cursor")
    with pytest.raises(InvalidToken):
        vault.authenticate_app("cvt_not-a-real-token")


def test_authenticating_marks_the_app_as_seen(vault: VaultService) -> None:
    created = vault.add_app(OWNER, "cursor")
    assert created.app.last_seen_at is None
    seen = datetime(2030, 1, 2, tzinfo=UTC)
    vault.authenticate_app(created.token, now=seen)
    assert vault.list_apps(OWNER)[0].last_seen_at == seen


def test_a_token_checked_again_within_the_minute_writes_nothing(vault: VaultService) -> None:
    created = vault.add_app(OWNER, "cursor")
    seen = datetime(2030, 1, 2, tzinfo=UTC)
    vault.authenticate_app(created.token, now=seen)
    changes = vault.store.conn.total_changes
    vault.authenticate_app(created.token, now=seen + SEEN_RESOLUTION - timedelta(seconds=1))
    assert vault.store.conn.total_changes == changes  # a busy server's token checks are reads
    assert vault.list_apps(OWNER)[0].last_seen_at == seen
    later = seen + SEEN_RESOLUTION
    vault.authenticate_app(created.token, now=later)
    assert vault.list_apps(OWNER)[0].last_seen_at == later


def test_rotating_the_token_invalidates_the_old_one(vault: VaultService) -> None:
    old = vault.add_app(OWNER, "cursor").token
    new = vault.rotate_app_token(OWNER, "cursor").token
    assert new != old
    with pytest.raises(InvalidToken):
        vault.authenticate_app(old)
    assert vault.authenticate_app(new).name == "cursor"


def test_removing_an_app_kills_its_token_and_revokes_its_grants(vault: VaultService) -> None:
    token = vault.add_app(OWNER, "cursor").token
    grant = vault.grant(OWNER, "cursor", ["read:memories"])
    vault.remove_app(OWNER, "cursor")
    with pytest.raises(InvalidToken):
        vault.authenticate_app(token)
    assert vault.list_grants(OWNER)[0].revoked_at is not None
    assert vault.list_grants(OWNER)[0].id == grant.id
    with pytest.raises(NotFound):
        vault.principal_for_app("cursor")


@pytest.mark.parametrize("name", ["", "Has Caps", "white space", "-leading", "x" * 65])
def test_malformed_app_names_are_rejected(vault: VaultService, name: str) -> None:
    with pytest.raises(InvalidInput):
        vault.add_app(OWNER, name)


def test_app_names_are_unique(vault: VaultService) -> None:
    vault.add_app(OWNER, "cursor")
    with pytest.raises(InvalidInput):
        vault.add_app(OWNER, "cursor")


def test_redirect_uris_must_be_https_or_loopback(vault: VaultService) -> None:
    app = vault.add_app(OWNER, "web", redirect_uris=["https://example.org/cb", "http://127.0.0.1:8765/cb"]).app
    assert app.redirect_uris == ["https://example.org/cb", "http://127.0.0.1:8765/cb"]
    with pytest.raises(InvalidInput):
        vault.add_app(OWNER, "evil", redirect_uris=["http://evil.example/cb"])


def test_principal_for_app_finds_by_name_or_id(vault: VaultService) -> None:
    app = vault.add_app(OWNER, "cursor").app
    assert vault.principal_for_app("cursor") == vault.principal_for_app(app.id)
    with pytest.raises(NotFound):
        vault.principal_for_app("nobody")


def test_apps_cannot_manage_apps(vault: VaultService) -> None:
    app = vault.principal_for_app(vault.add_app(OWNER, "cursor").app.name)
    vault.grant(OWNER, "cursor", ["read:*", "write:*", "delete:*", "search:*"])
    for call in (
        lambda: vault.add_app(app, "other"),
        lambda: vault.list_apps(app),
        lambda: vault.rotate_app_token(app, "cursor"),
        lambda: vault.remove_app(app, "cursor"),
        lambda: vault.show_app(app, "cursor"),
    ):
        with pytest.raises(ScopeDenied):
            call()
