"""The OAuth state in the core: hashed storage, audience, expiry, single use."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vault import OWNER, VaultService
from vault.errors import InvalidInput, InvalidToken, ScopeDenied
from vault.items import utcnow
from vault.oauth import s256

RESOURCE = "http://127.0.0.1:8765/mcp"
REDIRECT = "http://127.0.0.1:9/cb"
VERIFIER = "v" * 50


def tokens_for(vault: VaultService, scopes: list[str] | None = None) -> tuple[str, dict[str, str]]:
    client = vault.oauth_register("Test Client", [REDIRECT])
    approved = vault.oauth_approve(
        OWNER, client.client_id, scopes or ["search:*"], redirect_uri=REDIRECT, code_challenge=s256(VERIFIER), resource=RESOURCE
    )
    issued = vault.oauth_exchange(client.client_id, approved.code, REDIRECT, VERIFIER, RESOURCE)
    return client.client_id, issued.model_dump()


def test_an_access_token_names_its_app_for_its_own_resource_only(vault: VaultService) -> None:
    _, tokens = tokens_for(vault)
    principal = vault.authenticate_oauth(tokens["access_token"], RESOURCE)
    assert principal.app_id is not None and principal.name == "test-client"
    with pytest.raises(InvalidToken):
        vault.authenticate_oauth(tokens["access_token"], "http://127.0.0.1:9999/mcp")


def test_an_expired_access_token_is_refused(vault: VaultService) -> None:
    _, tokens = tokens_for(vault)
    with pytest.raises(InvalidToken):
        vault.authenticate_oauth(tokens["access_token"], RESOURCE, now=utcnow() + timedelta(hours=2))


def test_codes_and_tokens_are_stored_only_as_hashes(vault: VaultService) -> None:
    _, tokens = tokens_for(vault)
    stored = [tuple(r) for r in vault.store.query("SELECT * FROM oauth_tokens")] + [
        tuple(r) for r in vault.store.query("SELECT * FROM oauth_codes")
    ]
    flat = repr(stored)
    assert tokens["access_token"] not in flat and tokens["refresh_token"] not in flat


def test_only_the_owner_can_approve_a_client(vault: VaultService) -> None:
    client = vault.oauth_register("Sneaky", [REDIRECT])
    app = vault.authenticate_app(vault.add_app(OWNER, "other").token)
    with pytest.raises(ScopeDenied):
        vault.oauth_approve(app, client.client_id, ["read:*"], redirect_uri=REDIRECT, code_challenge=s256(VERIFIER), resource=RESOURCE)


def test_registration_refuses_a_non_loopback_http_redirect(vault: VaultService) -> None:
    with pytest.raises(InvalidInput):
        vault.oauth_register("Bad", ["http://evil.example/cb"])


def test_a_reused_refresh_token_revokes_the_newer_tokens_too(vault: VaultService) -> None:
    client_id, tokens = tokens_for(vault)
    newer = vault.oauth_refresh(client_id, tokens["refresh_token"], RESOURCE)
    with pytest.raises(InvalidToken):
        vault.oauth_refresh(client_id, tokens["refresh_token"], RESOURCE)
    with pytest.raises(InvalidToken):
        vault.authenticate_oauth(newer.access_token, RESOURCE)


def test_step_up_names_the_missing_action_only_when_nothing_is_held(vault: VaultService) -> None:
    _, tokens = tokens_for(vault, ["search:memories"])
    app = vault.authenticate_oauth(tokens["access_token"], RESOURCE)
    assert vault.missing_scope(app, "search", "*") is None
    assert vault.missing_scope(app, "write", "memories") == "write:memories"


def test_removing_an_app_kills_its_oauth_tokens_and_unlinks_its_client(vault: VaultService) -> None:
    client_id, tokens = tokens_for(vault)
    principal = vault.authenticate_oauth(tokens["access_token"], RESOURCE)
    assert principal.name is not None
    vault.remove_app(OWNER, principal.name)
    with pytest.raises(InvalidToken):
        vault.authenticate_oauth(tokens["access_token"], RESOURCE)
    with pytest.raises(InvalidToken):
        vault.oauth_refresh(client_id, tokens["refresh_token"], RESOURCE)
    row = vault.store.one("SELECT app_id FROM oauth_clients WHERE client_id = ?", [client_id])
    assert row is not None and row[0] is None
