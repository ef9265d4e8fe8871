"""The OAuth flow end to end with a real HTTP client: discovery → authorize with PKCE →
owner logs in and approves on the page → token → tool call → 403 step-up → refresh rotation."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from mcp_server.http import create_app
from schemas.items import MemoryIn
from tests.conftest import PASSPHRASE
from tests.e2e.conftest import serve_in_thread
from vault import OWNER, VaultService

REDIRECT = "http://127.0.0.1:9/callback"
CIMD_URL = "https://client.example/cv-client.json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def base(vault: VaultService) -> Iterator[str]:
    vault.remember(OWNER, MemoryIn(text="I drink my coffee black, no sugar"))

    async def fetch(url: str) -> dict[str, object]:
        assert url == CIMD_URL
        return {"client_id": CIMD_URL, "client_name": "Metadata Client", "redirect_uris": [REDIRECT]}

    yield from serve_in_thread(lambda url: create_app(vault, url, fetch_metadata=fetch))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden_fields(html: str) -> dict[str, str]:
    # As a browser does: attribute values are HTML-unescaped.
    return {k: unescape(v) for k, v in re.findall(r'<input type=hidden name="([^"]+)" value="([^"]*)">', html)}


@dataclass
class Flow:
    http: httpx2.Client
    base: str

    def discover(self) -> dict[str, str]:
        refused = self.http.post(f"{self.base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.status_code == 401
        prm_url = re.search(r'resource_metadata="([^"]+)"', refused.headers["www-authenticate"])[1]  # type: ignore[index]
        prm = self.http.get(prm_url).json()
        issuer = prm["authorization_servers"][0]
        meta: dict[str, str] = self.http.get(f"{issuer}/.well-known/oauth-authorization-server").json()
        assert meta["issuer"] == issuer and "S256" in meta["code_challenge_methods_supported"]
        return {**meta, "resource": prm["resource"]}

    def authorize(self, meta: dict[str, str], client_id: str, scope: str, challenge: str, state: str = "st-1") -> str:
        """Drive the owner's pages; return the redirect the browser is sent to."""
        query = {
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": scope, "state": state,
            "code_challenge": challenge, "code_challenge_method": "S256", "resource": meta["resource"],
        }  # fmt: skip
        page = self.http.get(f"{meta['authorization_endpoint']}?{urlencode(query)}")
        if "passphrase" in page.text:
            login = hidden_fields(page.text)
            logged = self.http.post(f"{self.base}/consent/login", data={**login, "passphrase": PASSPHRASE})
            assert logged.status_code == 303
            page = self.http.get(f"{self.base}{logged.headers['location']}")
        assert page.status_code == 200 and "Allow access?" in page.text
        decided = self.http.post(f"{self.base}/authorize", data={**hidden_fields(page.text), "decision": "approve"})
        assert decided.status_code == 303
        return str(decided.headers["location"])

    def token(self, meta: dict[str, str], **form: str) -> httpx2.Response:
        return self.http.post(meta["token_endpoint"], data={**form, "resource": meta["resource"]})


@pytest.fixture
def flow(base: str) -> Iterator[Flow]:
    with httpx2.Client(follow_redirects=False, timeout=30) as http:
        yield Flow(http, base)


async def call_tool(base: str, access_token: str, name: str, args: dict[str, Any]) -> CallToolResult:
    headers = {"Authorization": f"Bearer {access_token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        return await client.call_tool(name, args)


def test_oauth_flow_from_discovery_to_tool_call_with_step_up_and_refresh_rotation(flow: Flow) -> None:
    meta = flow.discover()
    registered = flow.http.post(meta["registration_endpoint"], json={"client_name": "Test Client", "redirect_uris": [REDIRECT]})
    assert registered.status_code == 201
    client_id = registered.json()["client_id"]
    verifier, challenge = pkce()

    location = flow.authorize(meta, client_id, "search:memories", challenge)
    back = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT) and back["state"] == ["st-1"] and back["iss"] == [meta["issuer"]]
    code = back["code"][0]

    wrong = flow.token(
        meta, grant_type="authorization_code", client_id=client_id, code=code, redirect_uri=REDIRECT, code_verifier=verifier + "x"
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    issued = flow.token(
        meta, grant_type="authorization_code", client_id=client_id, code=code, redirect_uri=REDIRECT, code_verifier=verifier
    )
    # The wrong verifier above consumed nothing: the code is marked used only when every binding matches.
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "search:memories"

    result = anyio.run(call_tool, flow.base, tokens["access_token"], "search_context", {"query": "coffee"})
    assert "coffee black" in str(result.structured_content)

    step_up = flow.http.post(
        f"{flow.base}/mcp",
        json={"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "remember", "arguments": {"text": "x"}}},
        headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json, text/event-stream"},
    )
    assert step_up.status_code == 403
    assert 'error="insufficient_scope"' in step_up.headers["www-authenticate"]
    assert 'scope="write:memories"' in step_up.headers["www-authenticate"]

    rotated = flow.token(meta, grant_type="refresh_token", client_id=client_id, refresh_token=tokens["refresh_token"])
    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != tokens["refresh_token"]
    replayed = flow.token(meta, grant_type="refresh_token", client_id=client_id, refresh_token=tokens["refresh_token"])
    assert replayed.status_code == 400
    # Reusing a rotated refresh token revokes the whole family, including the newest access token.
    after = flow.http.post(
        f"{flow.base}/mcp", json={"jsonrpc": "2.0", "id": 8, "method": "ping"},
        headers={"Authorization": f"Bearer {rotated.json()['access_token']}"},
    )  # fmt: skip
    assert after.status_code == 401


def test_a_code_is_single_use(flow: Flow) -> None:
    meta = flow.discover()
    client_id = flow.http.post(meta["registration_endpoint"], json={"redirect_uris": [REDIRECT]}).json()["client_id"]
    verifier, challenge = pkce()
    code = parse_qs(urlsplit(flow.authorize(meta, client_id, "search:*", challenge)).query)["code"][0]
    form = {"grant_type": "authorization_code", "client_id": client_id, "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    assert flow.token(meta, **form).status_code == 200
    assert flow.token(meta, **form).status_code == 400


def test_a_client_id_metadata_document_client_can_be_authorized(flow: Flow) -> None:
    meta = flow.discover()
    _, challenge = pkce()
    location = flow.authorize(meta, CIMD_URL, "read:*", challenge)
    assert "code=" in location


def test_an_unknown_metadata_client_is_neither_fetched_nor_stored_before_the_owner_logs_in(flow: Flow, vault: VaultService) -> None:
    meta = flow.discover()
    _, challenge = pkce()
    query = {"response_type": "code", "client_id": CIMD_URL, "redirect_uri": REDIRECT, "code_challenge": challenge,
             "code_challenge_method": "S256"}  # fmt: skip
    page = flow.http.get(f"{meta['authorization_endpoint']}?{urlencode(query)}")
    assert page.status_code == 200 and "passphrase" in page.text
    assert vault.store.one("SELECT 1 FROM oauth_clients WHERE client_id = ?", [CIMD_URL]) is None
    # A test of the test: after the owner's login the same request does fetch and store it.
    assert "code=" in flow.authorize(meta, CIMD_URL, "read:*", challenge)
    assert vault.store.one("SELECT 1 FROM oauth_clients WHERE client_id = ?", [CIMD_URL]) is not None


def test_authorize_refuses_an_unregistered_redirect_and_a_foreign_resource(flow: Flow) -> None:
    meta = flow.discover()
    client_id = flow.http.post(meta["registration_endpoint"], json={"redirect_uris": [REDIRECT]}).json()["client_id"]
    _, challenge = pkce()
    common = {"response_type": "code", "client_id": client_id, "code_challenge": challenge, "code_challenge_method": "S256"}
    evil = flow.http.get(f"{meta['authorization_endpoint']}?{urlencode({**common, 'redirect_uri': 'https://evil.example/cb'})}")
    assert evil.status_code == 400 and "location" not in evil.headers
    foreign = flow.http.get(
        f"{meta['authorization_endpoint']}?{urlencode({**common, 'redirect_uri': REDIRECT, 'resource': 'https://other.example/mcp'})}"
    )
    assert foreign.status_code == 303 and "error=invalid_target" in foreign.headers["location"]


def test_the_decision_form_needs_the_owner_session_and_its_csrf_token(flow: Flow) -> None:
    meta = flow.discover()
    client_id = flow.http.post(meta["registration_endpoint"], json={"redirect_uris": [REDIRECT]}).json()["client_id"]
    _, challenge = pkce()
    forged = flow.http.post(
        f"{flow.base}/authorize",
        data={
            "csrf": "guess",
            "decision": "approve",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "scope": "read:*",
        },
    )
    assert forged.status_code == 403


def test_a_wrong_owner_passphrase_is_refused_on_the_login_page(flow: Flow) -> None:
    meta = flow.discover()
    client_id = flow.http.post(meta["registration_endpoint"], json={"redirect_uris": [REDIRECT]}).json()["client_id"]
    _, challenge = pkce()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = flow.http.get(f"{meta['authorization_endpoint']}?{urlencode(query)}")
    refused = flow.http.post(f"{flow.base}/consent/login", data={**hidden_fields(page.text), "passphrase": "not it at all"})
    assert refused.status_code == 401 and "cv_owner" not in refused.headers.get("set-cookie", "")


def test_repeated_wrong_passphrases_lock_the_login_page_for_a_while(flow: Flow) -> None:
    meta = flow.discover()
    client_id = flow.http.post(meta["registration_endpoint"], json={"redirect_uris": [REDIRECT]}).json()["client_id"]
    _, challenge = pkce()
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "code_challenge": challenge,
             "code_challenge_method": "S256"}  # fmt: skip
    form = hidden_fields(flow.http.get(f"{meta['authorization_endpoint']}?{urlencode(query)}").text)
    for _ in range(5):
        assert flow.http.post(f"{flow.base}/consent/login", data={**form, "passphrase": "a wrong guess"}).status_code == 401
    locked = flow.http.post(f"{flow.base}/consent/login", data={**form, "passphrase": PASSPHRASE})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert "cv_owner" not in locked.headers.get("set-cookie", "")


def test_the_owner_approves_an_mcp_access_request_on_the_consent_page(flow: Flow, vault: VaultService) -> None:
    app = vault.authenticate_app(vault.add_app(OWNER, "asker").token)
    asked = vault.request_access(app, ["search:memories"], "recall my habits")
    page = flow.http.get(f"{flow.base}{asked.link}")
    assert "passphrase" in page.text
    logged = flow.http.post(f"{flow.base}/consent/login", data={**hidden_fields(page.text), "passphrase": PASSPHRASE})
    assert logged.status_code == 303 and logged.headers["location"] == asked.link
    page = flow.http.get(f"{flow.base}{asked.link}")
    assert "recall my habits" in page.text and "search:memories" in page.text
    decided = flow.http.post(f"{flow.base}{asked.link}", data={**hidden_fields(page.text), "decision": "approve"})
    assert decided.status_code == 200 and "Approved" in decided.text
    assert vault.list_access(app).scopes == ["search:memories"]


def test_a_pre_registered_app_is_an_oauth_client_that_acts_as_itself(flow: Flow, vault: VaultService) -> None:
    vault.add_app(OWNER, "preapp", redirect_uris=[REDIRECT])
    meta = flow.discover()
    verifier, challenge = pkce()
    code = parse_qs(urlsplit(flow.authorize(meta, "preapp", "search:memories", challenge)).query)["code"][0]
    issued = flow.token(meta, grant_type="authorization_code", client_id="preapp", code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    assert issued.status_code == 200
    assert vault.authenticate_oauth(issued.json()["access_token"], meta["resource"]).name == "preapp"
