"""Dynamic client registration is bounded in the core: field lengths, redirect URIs, unused clients (issue 29)."""

from __future__ import annotations

import pytest

from vault import OWNER, VaultService
from vault.errors import InvalidInput, NotFound, TooLarge
from vault.oauth import (
    MAX_CLIENT_NAME_CHARS,
    MAX_REDIRECT_URI_CHARS,
    MAX_REDIRECT_URIS,
    MAX_UNUSED_DYNAMIC_CLIENTS,
    s256,
)

REDIRECT = "http://127.0.0.1:9/cb"


def stored_clients(vault: VaultService) -> int:
    return int(vault.store.one("SELECT count(*) FROM oauth_clients")[0])


def test_a_long_client_name_or_too_many_or_long_redirect_uris_are_refused_and_nothing_is_stored(vault: VaultService) -> None:
    with pytest.raises(TooLarge, match="client_name"):
        vault.oauth_register("x" * (10 << 20), [REDIRECT])
    with pytest.raises(TooLarge, match="redirect_uris"):
        vault.oauth_register("ok", [f"http://127.0.0.1:9/cb{n}" for n in range(20_000)])
    with pytest.raises(TooLarge, match="redirect_uri"):
        vault.oauth_register("ok", ["https://client.example/" + "a" * MAX_REDIRECT_URI_CHARS])
    assert stored_clients(vault) == 0
    # At the limits themselves it is accepted.
    client = vault.oauth_register("n" * MAX_CLIENT_NAME_CHARS, [f"http://127.0.0.1:9/cb{n}" for n in range(MAX_REDIRECT_URIS)])
    assert len(client.redirect_uris) == MAX_REDIRECT_URIS and vault.oauth_register(None, [REDIRECT]).client_name == "MCP client"


@pytest.mark.parametrize(
    "uri",
    ["https://", "https://user:pw@client.example/cb", "https://client.example/cb\x1b[2J", "https:///path", "http://evil.example/cb",
     "https://client.example/cb#frag", "javascript:alert(1)"],
)  # fmt: skip
def test_a_malformed_redirect_uri_is_refused(vault: VaultService, uri: str) -> None:
    with pytest.raises(InvalidInput):
        vault.oauth_register("ok", [uri])
    assert stored_clients(vault) == 0


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:9/o/k/cb", "http://localhost:9/o/", "http://[::1]:9/o", "http://127.0.0.1:9/%6F/x", "http://127.0.0.1:9/login",
     "http://127.0.0.1:9/login/link", "https://client.example/o/cb"],
)  # fmt: skip
def test_a_redirect_uri_under_the_owner_cookie_paths_is_refused(vault: VaultService, uri: str) -> None:
    # Defence in depth: the owner's cookies live under /o/<key>/ and /login (browsers share cookies across ports).
    with pytest.raises(InvalidInput, match="vault's own path"):
        vault.oauth_register("ok", [uri])
    with pytest.raises(InvalidInput, match="vault's own path"):
        vault.oauth_client("https://client.example/c.json", {"client_id": "https://client.example/c.json", "redirect_uris": [uri]})
    assert stored_clients(vault) == 0
    vault.oauth_register(
        "ok", ["http://127.0.0.1:9/other", "http://127.0.0.1:9/cb/o/", "http://127.0.0.1:9/logins", "http://127.0.0.1:9/consent/cb"]
    )


def test_unused_dynamic_clients_are_capped_and_the_oldest_go_first(vault: VaultService) -> None:
    first = vault.oauth_register("first", [REDIRECT])
    approved = vault.oauth_approve(OWNER, first.client_id, ["search:*"], redirect_uri=REDIRECT, code_challenge=s256("v" * 43), resource="r")
    assert approved.app_id
    ids = [vault.oauth_register(f"c{n}", [REDIRECT]).client_id for n in range(3 * MAX_UNUSED_DYNAMIC_CLIENTS)]
    # The unused ones are capped; the newest stay, and the approved one is never pruned.
    assert stored_clients(vault) == MAX_UNUSED_DYNAMIC_CLIENTS + 1
    assert vault.oauth_client(first.client_id).app_id == approved.app_id
    assert vault.oauth_client(ids[-1]).client_name == f"c{3 * MAX_UNUSED_DYNAMIC_CLIENTS - 1}"
    with pytest.raises(NotFound):
        vault.oauth_client(ids[0])


def test_a_client_waiting_for_the_owner_is_never_pruned(vault: VaultService) -> None:
    waiting = vault.oauth_register("waiting", [REDIRECT])
    for n in range(MAX_UNUSED_DYNAMIC_CLIENTS + 5):
        vault.oauth_register(f"flood{n}", [REDIRECT], pending={waiting.client_id})
    assert vault.oauth_client(waiting.client_id).client_name == "waiting"
    assert stored_clients(vault) == MAX_UNUSED_DYNAMIC_CLIENTS + 1


@pytest.mark.parametrize("name", ["Notes\u202eppa", "zero\u200bwidth", "esc\x1b[2J", "tag\U000e0041", "line\u2028two"])
def test_a_client_name_with_control_or_format_characters_is_refused(vault: VaultService, name: str) -> None:
    with pytest.raises(InvalidInput, match="control or format"):
        vault.oauth_register(name, [REDIRECT])
    url = "https://client.example/c.json"
    with pytest.raises(InvalidInput, match="control or format"):
        vault.oauth_client(url, {"client_id": url, "client_name": name, "redirect_uris": [REDIRECT]})
    assert stored_clients(vault) == 0
    assert vault.oauth_register("Café ✓ 日本 עברית", [REDIRECT]).client_name == "Café ✓ 日本 עברית"
