"""The OAuth flow end to end with a real HTTP client: discovery → authorize with PKCE →
owner logs in and approves on the page → token → tool call → 403 step-up → refresh rotation."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
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

from mcp_server.forms import MAX_FORM_BYTES
from mcp_server.http import create_app
from schemas.items import MemoryIn
from tests.conftest import PASSPHRASE
from tests.e2e.conftest import serve_in_thread
from vault import OWNER, VaultService
from vault.oauth import MAX_UNUSED_DYNAMIC_CLIENTS
from vault.owner_sessions import FREE_FAILURES

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


def ticked(html: str) -> list[str]:
    return [unescape(v) for v in re.findall(r'<input type=checkbox name=scope value="([^"]*)" checked>', html)]


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

    def open_page(self, meta: dict[str, str], query: dict[str, str]) -> httpx2.Response:
        """GET /authorize and follow our own redirects (never the client's) to the page the owner sees."""
        answer = self.http.get(f"{meta['authorization_endpoint']}?{urlencode(query)}")
        while answer.status_code == 303 and answer.headers["location"].startswith("/"):
            answer = self.http.get(f"{self.base}{answer.headers['location']}")
        return answer

    def login(self, page: httpx2.Response) -> httpx2.Response:
        logged = self.http.post(f"{self.base}/login", data={**hidden_fields(page.text), "passphrase": PASSPHRASE})
        assert logged.status_code == 303, logged.text
        answer = logged
        while answer.status_code == 303 and answer.headers["location"].startswith("/"):
            answer = self.http.get(f"{self.base}{answer.headers['location']}")
        return answer

    def authorize(
        self, meta: dict[str, str], client_id: str, scope: str, challenge: str, state: str = "st-1", choose: list[str] | None = None
    ) -> str:
        """Drive the owner's pages; return the redirect the browser is sent to."""
        query = {
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": scope, "state": state,
            "code_challenge": challenge, "code_challenge_method": "S256", "resource": meta["resource"],
        }  # fmt: skip
        page = self.open_page(meta, query)
        if "passphrase" in page.text:
            page = self.login(page)
        assert page.status_code == 200 and "Allow access?" in page.text, page.text
        action = re.search(r'<form method=post action="([^"]+)"', page.text)[1]  # type: ignore[index]
        chosen = ticked(page.text) if choose is None else choose
        decided = self.http.post(f"{self.base}{action}", data={**hidden_fields(page.text), "scope": chosen, "decision": "approve"})
        assert decided.status_code == 303, decided.text
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
    page = flow.open_page(meta, query)
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


def client_query(flow: Flow, meta: dict[str, str], scope: str | None = None) -> dict[str, str]:
    client_id = flow.http.post(meta["registration_endpoint"], json={"redirect_uris": [REDIRECT]}).json()["client_id"]
    _, challenge = pkce()
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "code_challenge": challenge,
             "code_challenge_method": "S256", "state": "st-9"}  # fmt: skip
    return query | ({"scope": scope} if scope is not None else {})


def decide(flow: Flow, page: httpx2.Response, **form: str | list[str]) -> httpx2.Response:
    action = re.search(r'<form method=post action="([^"]+)"', page.text)[1]  # type: ignore[index]
    return flow.http.post(f"{flow.base}{action}", data={**hidden_fields(page.text), **form})


def test_the_decision_form_needs_the_owner_session_and_its_form_token(flow: Flow) -> None:
    meta = flow.discover()
    page = flow.login(flow.open_page(meta, client_query(flow, meta, "search:memories")))
    assert decide(flow, page, token="guess", scope="search:memories", decision="approve").status_code == 403
    # The old decision endpoint, which took the scopes from the form, is gone.
    forged = flow.http.post(f"{flow.base}/authorize", data={"scope": "read:*", "decision": "approve", "client_id": "x"})
    assert forged.status_code in (404, 405)
    # Without the session cookie the right token is refused as well.
    fields = hidden_fields(page.text)
    flow.http.cookies.clear()
    assert decide(flow, page, **fields, scope="search:memories", decision="approve").status_code == 403


def test_form_tokens_are_server_side_and_never_equal_a_cookie(flow: Flow) -> None:
    meta = flow.discover()
    login = flow.open_page(meta, client_query(flow, meta, "search:memories"))
    page = flow.login(login)
    cookies = set(flow.http.cookies.values())
    tokens = {hidden_fields(login.text)["token"], hidden_fields(page.text)["token"]}
    assert cookies and not tokens & cookies
    session = next(c for c in flow.http.cookies.jar if c.name == "cv_session")
    # Under the session's secret path: no other server on this host (another port) is sent it.
    assert re.fullmatch(r"/o/[A-Za-z0-9_-]{24}/", session.path) and session.has_nonstandard_attr("HttpOnly")
    assert page.url.path.startswith(session.path)
    assert session.get_nonstandard_attr("SameSite", "").lower() == "strict"


def test_a_client_naming_no_scope_is_offered_nothing_ticked_and_gets_only_what_the_owner_picks(flow: Flow) -> None:
    meta = flow.discover()
    query = client_query(flow, meta)
    page = flow.login(flow.open_page(meta, query))
    assert page.status_code == 200 and ticked(page.text) == [] and "gets <strong>nothing</strong>" in page.text
    assert "Search your memories in every space" in page.text  # plain words
    nothing = decide(flow, page, decision="approve")
    assert nothing.status_code == 400 and "location" not in nothing.headers
    chosen = decide(flow, page, scope="search:memories", decision="approve")
    assert chosen.status_code == 303
    code = parse_qs(urlsplit(chosen.headers["location"]).query)["code"][0]
    assert code


@pytest.mark.parametrize("scope", ["export:*", "admin:*", "read:secrets", "read:memories#space=Bad Space"])
def test_owner_only_or_malformed_scopes_are_refused_before_the_page_with_the_reason(flow: Flow, scope: str) -> None:
    meta = flow.discover()
    refused = flow.http.get(f"{meta['authorization_endpoint']}?{urlencode(client_query(flow, meta, scope))}")
    assert refused.status_code == 303
    back = parse_qs(urlsplit(refused.headers["location"]).query)
    assert refused.headers["location"].startswith(REDIRECT) and back["error"] == ["invalid_scope"]
    assert scope.split("#")[0].split(":")[0] in back["error_description"][0] or "space" in back["error_description"][0]


def test_the_decision_approves_only_what_the_page_showed_narrowed_never_more(flow: Flow) -> None:
    meta = flow.discover()
    query = client_query(flow, meta, "search:memories read:memories")
    verifier, challenge = pkce()
    query["code_challenge"] = challenge
    page = flow.login(flow.open_page(meta, query))
    wider = decide(flow, page, scope=["search:memories", "delete:*"], decision="approve")
    assert wider.status_code == 400 and "location" not in wider.headers
    narrowed = decide(flow, page, scope=["search:memories"], space=["work"], sens="medium", expires="1d", decision="approve")
    assert narrowed.status_code == 303
    code = parse_qs(urlsplit(narrowed.headers["location"]).query)["code"][0]
    issued = flow.token(meta, grant_type="authorization_code", client_id=query["client_id"], code=code, redirect_uri=REDIRECT,
                        code_verifier=verifier)  # fmt: skip
    assert issued.json()["scope"] == "search:memories#space=work;sens=medium"


def test_an_unknown_expiry_is_refused_on_the_page_and_never_becomes_a_grant_without_end(flow: Flow, vault: VaultService) -> None:
    meta = flow.discover()
    page = flow.login(flow.open_page(meta, client_query(flow, meta, "search:memories")))
    refused = decide(flow, page, scope="search:memories", expires="100y", decision="approve")
    assert refused.status_code == 400 and "location" not in refused.headers
    assert "expires must be one of 1h, 1d, 30d" in refused.text and "Allow access?" in refused.text
    assert vault.store.one("SELECT count(*) FROM grants")[0] == 0


def test_two_concurrent_decisions_issue_one_grant_and_one_code(vault: VaultService) -> None:
    apps: list[Any] = []

    def make(url: str) -> Any:
        apps.append(create_app(vault, url))
        return apps[-1]

    served = serve_in_thread(make)
    base = next(served)
    try:
        with httpx2.Client(follow_redirects=False, timeout=30) as http:
            flow = Flow(http, base)
            meta = flow.discover()
            page = flow.login(flow.open_page(meta, client_query(flow, meta, "search:memories")))
            answers: list[httpx2.Response] = []
            # Hold the vault lock so that both decisions are in flight before either reaches the core.
            with apps[0].state.access.lock:
                posts = [threading.Thread(target=lambda: answers.append(decide(flow, page, scope="search:memories", decision="approve")))
                         for _ in range(2)]  # fmt: skip
                for post in posts:
                    post.start()
                time.sleep(1)
            for post in posts:
                post.join()
    finally:
        served.close()
    assert sorted(a.status_code for a in answers) == [303, 404]
    assert vault.store.one("SELECT count(*) FROM grants")[0] == 1
    assert vault.store.one("SELECT count(*) FROM oauth_codes")[0] == 1


def test_a_refused_choice_puts_the_authorization_back_for_another_try(flow: Flow) -> None:
    meta = flow.discover()
    page = flow.login(flow.open_page(meta, client_query(flow, meta, "search:memories")))
    assert decide(flow, page, decision="approve").status_code == 400
    assert decide(flow, page, scope="search:memories", decision="approve").status_code == 303


def test_a_register_flood_does_not_prune_a_client_waiting_for_the_owners_approval(flow: Flow) -> None:
    meta = flow.discover()
    page = flow.login(flow.open_page(meta, client_query(flow, meta, "search:memories")))
    for _ in range(MAX_UNUSED_DYNAMIC_CLIENTS + 5):
        assert flow.http.post(meta["registration_endpoint"], json={"redirect_uris": [REDIRECT]}).status_code == 201
    approved = decide(flow, page, scope="search:memories", decision="approve")
    assert approved.status_code == 303 and "code=" in approved.headers["location"]


def test_a_decision_failing_in_the_core_renders_the_error_page_not_json(flow: Flow, vault: VaultService) -> None:
    meta = flow.discover()
    query = client_query(flow, meta, "search:memories")
    page = flow.login(flow.open_page(meta, query))
    vault.store.execute("DELETE FROM oauth_clients WHERE client_id = ?", [query["client_id"]])
    gone = decide(flow, page, scope="search:memories", decision="approve")
    assert gone.status_code == 404 and gone.headers["content-type"].startswith("text/html")
    assert "Cannot continue" in gone.text and "start again from the app" in gone.text and "location" not in gone.headers


FORM_ROUTES = ["/token", "/login", "/login/link", "/o/abc/logout", "/o/abc/oauth/abc", "/o/abc/consent/abc"]


@pytest.mark.parametrize("path", FORM_ROUTES)
def test_every_form_route_caps_its_body_and_refuses_multipart(flow: Flow, path: str) -> None:
    url = f"{flow.base}{path}"
    huge = flow.http.post(url, data={"token": "x" * (MAX_FORM_BYTES + 1)})
    assert huge.status_code == 413, huge.text
    # Streamed without a Content-Length: refused once the cap is passed, whatever follows.
    chunks = (b"a=" + b"x" * 4096 for _ in range(64))
    streamed = flow.http.post(url, content=chunks, headers={"content-type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413
    multipart = flow.http.post(url, files={"f": ("f.bin", b"x" * 1000)})
    assert multipart.status_code == 400 and "urlencoded" in multipart.text
    under = flow.http.post(url, data={"token": "x" * (MAX_FORM_BYTES - 100)})
    assert under.status_code not in (413, 500) and "urlencoded" not in under.text


def console_of(flow: Flow) -> str:
    """The console base of the browser's session: the path of its session cookie (without the trailing /)."""
    session = next(c for c in flow.http.cookies.jar if c.name == "cv_session")
    return f"{flow.base}{session.path.rstrip('/')}"


def test_the_answer_that_sends_the_browser_to_the_client_carries_no_cookie_of_ours(flow: Flow) -> None:
    meta = flow.discover()
    page = flow.login(flow.open_page(meta, client_query(flow, meta, "search:memories")))
    decided = decide(flow, page, scope="search:memories", decision="approve")
    assert decided.status_code == 303 and decided.headers["location"].startswith(REDIRECT)
    # The back-off device id (a fixed path) is dropped; the session lives on under its secret path.
    dropped = {c.split("=")[0] for c in decided.headers.get_list("set-cookie") if "Max-Age=0" in c}
    assert dropped == {"cv_device"}
    assert "Inbox" in flow.http.get(f"{console_of(flow)}/").text
    # What a browser would send to the client's server (same host, another port): nothing of ours.
    request = flow.http.build_request("GET", decided.headers["location"])
    assert "cookie" not in request.headers


@pytest.mark.parametrize(
    "broken",
    [{"response_type": "token"}, {"code_challenge_method": "plain"}, {"resource": "https://other.example/mcp"}, {"scope": "export:*"}],
)
def test_every_error_redirect_to_the_client_drops_the_device_cookie(flow: Flow, broken: dict[str, str]) -> None:
    meta = flow.discover()
    query = client_query(flow, meta, "search:memories")
    flow.login(flow.open_page(meta, query))
    assert {"cv_session", "cv_device"} <= set(flow.http.cookies.keys())
    refused = flow.http.get(f"{meta['authorization_endpoint']}?{urlencode({**query, **broken})}")
    assert refused.status_code == 303 and refused.headers["location"].startswith(REDIRECT)
    dropped = {c.split("=")[0] for c in refused.headers.get_list("set-cookie") if "Max-Age=0" in c}
    assert dropped == {"cv_device"}
    assert "cookie" not in flow.http.build_request("GET", refused.headers["location"]).headers


def test_authorize_refuses_a_stored_redirect_under_the_owner_cookie_path_without_redirecting(flow: Flow, vault: VaultService) -> None:
    # A pre-registered app (or a client stored before the rule) naming /o/cb is refused at /authorize, shown no page.
    under = "http://127.0.0.1:9/o/cb"
    vault.add_app(OWNER, "oldapp", redirect_uris=[under])
    meta = flow.discover()
    _, challenge = pkce()
    query = {"response_type": "code", "client_id": "oldapp", "redirect_uri": under, "code_challenge": challenge,
             "code_challenge_method": "S256", "scope": "export:*"}  # fmt: skip
    refused = flow.http.get(f"{meta['authorization_endpoint']}?{urlencode(query)}")
    assert refused.status_code == 400 and "location" not in refused.headers
    assert "invalid_redirect_uri" in refused.text and "/o/" in refused.text
    registered = flow.http.post(meta["registration_endpoint"], json={"redirect_uris": [under]})
    assert registered.status_code == 400 and registered.json()["error"] == "invalid_redirect_uri"


def test_app_provided_text_on_the_consent_page_is_escaped_and_isolated_in_bdi(flow: Flow) -> None:
    meta = flow.discover()
    name = "<b>Notes</b> עברית"
    client_id = flow.http.post(meta["registration_endpoint"], json={"client_name": name, "redirect_uris": [REDIRECT]}).json()["client_id"]
    query = {**client_query(flow, meta, "search:memories"), "client_id": client_id}
    page = flow.login(flow.open_page(meta, query))
    assert "<bdi>&lt;b&gt;Notes&lt;/b&gt; עברית</bdi>" in page.text
    assert f"<bdi>{client_id}</bdi>" in page.text and f"<bdi>{REDIRECT}</bdi>" in page.text
    reversed_name = flow.http.post(meta["registration_endpoint"], json={"client_name": "Notes\u202e", "redirect_uris": [REDIRECT]})
    assert reversed_name.status_code == 400


def test_every_owner_page_carries_the_security_headers_and_no_script(flow: Flow, vault: VaultService) -> None:
    meta = flow.discover()
    login = flow.open_page(meta, client_query(flow, meta, "search:memories"))
    page = flow.login(login)
    home = flow.http.get(f"{console_of(flow)}/")
    for answer in (login, page, home):
        assert answer.status_code == 200
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["cache-control"] == "no-store" and answer.headers["x-content-type-options"] == "nosniff"
        # Scripts only as files of ours (CSP script-src 'self'), never inline.
        assert not re.search(r"<script(?![^>]*\bsrc=\"/static/)", answer.text), answer.text
        assert "<style" not in answer.text and " style=" not in answer.text and "no-referrer" not in answer.text
    assert "form-action 'self' http://127.0.0.1:9" in page.headers["content-security-policy"]


def test_a_login_from_a_foreign_or_null_origin_is_refused_and_the_vaults_own_origin_is_served(flow: Flow) -> None:
    meta = flow.discover()
    login = flow.open_page(meta, client_query(flow, meta, "search:memories"))
    form = {**hidden_fields(login.text), "passphrase": PASSPHRASE}
    for origin in ("null", "http://127.0.0.1:9", "http://evil.example"):
        refused = flow.http.post(f"{flow.base}/login", data=form, headers={"Origin": origin})
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden_origin"
    own = flow.http.post(f"{flow.base}/login", data=form, headers={"Origin": flow.base})
    assert own.status_code == 303


def test_a_wrong_owner_passphrase_is_refused_on_the_login_page(flow: Flow) -> None:
    meta = flow.discover()
    page = flow.open_page(meta, client_query(flow, meta, "search:memories"))
    refused = flow.http.post(f"{flow.base}/login", data={**hidden_fields(page.text), "passphrase": "not it at all"})
    assert refused.status_code == 401 and "cv_session" not in refused.headers.get("set-cookie", "")


def test_wrong_passphrases_lock_out_that_browser_only_and_the_cli_link_always_works(flow: Flow, vault: VaultService) -> None:
    meta = flow.discover()
    query = client_query(flow, meta, "search:memories")
    form = hidden_fields(flow.open_page(meta, query).text)
    for _ in range(5):
        wrong = flow.http.post(f"{flow.base}/login", data={**form, "passphrase": "a wrong guess"})
        assert wrong.status_code == 401
        form = hidden_fields(wrong.text)  # each form token is good for one attempt
    locked = flow.http.post(f"{flow.base}/login", data={**form, "passphrase": PASSPHRASE})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert "cv_session" not in locked.headers.get("set-cookie", "")
    # The owner's own browser (another device id) is not locked out by those guesses.
    with httpx2.Client(follow_redirects=False, timeout=30) as browser:
        owner = Flow(browser, flow.base)
        assert "Allow access?" in owner.login(owner.open_page(meta, query)).text
    # And the locked browser still logs in with a one-time link from the CLI, once.
    link = vault.owner_login_link(OWNER)
    assert "Log in" in flow.http.get(f"{flow.base}/login/link", params={"token": link}).text
    used = flow.http.post(f"{flow.base}/login/link", data={"link": link})
    assert used.status_code == 303 and "Inbox" in flow.http.get(f"{flow.base}{used.headers['location']}").text
    assert flow.http.post(f"{flow.base}/login/link", data={"link": link}).status_code == 401


def test_parallel_wrong_passphrases_cannot_pass_the_back_off_and_a_login_form_is_used_once(flow: Flow) -> None:
    meta = flow.discover()
    query = client_query(flow, meta, "search:memories")
    forms = [hidden_fields(flow.open_page(meta, query).text) for _ in range(FREE_FAILURES + 5)]
    replayed = flow.http.post(f"{flow.base}/login", data={**forms[0], "passphrase": "a wrong guess"})
    assert replayed.status_code == 401
    assert flow.http.post(f"{flow.base}/login", data={**forms[0], "passphrase": PASSPHRASE}).status_code == 403
    answers: list[int] = []
    guesses = [threading.Thread(target=lambda f=f: answers.append(
        flow.http.post(f"{flow.base}/login", data={**f, "passphrase": "a wrong guess"}).status_code)) for f in forms[1:]]  # fmt: skip
    for guess in guesses:
        guess.start()
    for guess in guesses:
        guess.join()
    # One guess before, so at most FREE_FAILURES - 1 more reach the passphrase check; the rest wait.
    assert answers.count(401) == FREE_FAILURES - 1 and answers.count(429) == len(forms) - FREE_FAILURES


def test_logout_ends_the_session(flow: Flow, vault: VaultService) -> None:
    used = flow.http.post(f"{flow.base}/login/link", data={"link": vault.owner_login_link(OWNER)})
    home = flow.http.get(f"{flow.base}{used.headers['location']}")
    assert "Inbox" in home.text
    action = re.search(r'<form method=post action="([^"]+/logout)"', home.text)[1]  # type: ignore[index]
    out = flow.http.post(f"{flow.base}{action}", data=hidden_fields(home.text))
    assert out.status_code == 200 and "Logged out" in out.text
    after = flow.http.get(f"{flow.base}{used.headers['location']}")
    assert after.status_code == 303 and after.headers["location"] == "/login"
    assert "passphrase" in flow.http.get(f"{flow.base}/login").text


def test_the_owner_approves_an_mcp_access_request_on_the_consent_page(flow: Flow, vault: VaultService) -> None:
    app = vault.authenticate_app(vault.add_app(OWNER, "asker").token)
    asked = vault.request_access(app, ["search:memories"], "recall my habits")
    door = flow.http.get(f"{flow.base}{asked.link}")
    assert door.status_code == 303 and door.headers["location"] == f"/login?next=consent%2F{asked.id}"
    page = flow.http.get(f"{flow.base}{door.headers['location']}")
    assert "passphrase" in page.text
    logged = flow.http.post(f"{flow.base}/login", data={**hidden_fields(page.text), "passphrase": PASSPHRASE})
    inside = logged.headers["location"]
    assert logged.status_code == 303 and re.fullmatch(rf"/o/[A-Za-z0-9_-]{{24}}{asked.link}", inside)
    page = flow.http.get(f"{flow.base}{inside}")
    assert "recall my habits" in page.text and "search:memories" in page.text
    decided = flow.http.post(f"{flow.base}{inside}", data={**hidden_fields(page.text), "decision": "approve"})
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
