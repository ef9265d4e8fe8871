"""The owner's consent pages in real Chromium (Debian's, driven by Playwright), against a real uvicorn server.

A client starts OAuth with PKCE S256; the owner logs in, narrows and approves; the client's
next MCP call sees exactly the narrowed grant. The client's redirect server is a rogue one on
another loopback port (127.0.0.1 and localhost): it records every header the browser sends
it and replays what it got; it gets no cookie, no page URL and nothing beyond the approval.
Missing chromium, playwright or axe-core FAILS these tests (scripts/install-browser-tools.sh).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx2
import pytest

from mcp_server.http import create_app
from schemas.items import MemoryIn
from tests.conftest import PASSPHRASE
from tests.e2e.conftest import serve_in_thread
from tests.e2e.console import DOCS, axe_violations
from tests.e2e.test_oauth import call_tool
from vault import OWNER, VaultService


@dataclass
class Rogue:
    """A client's redirect server that records every request (path and headers) and serves an attack page."""

    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)
    attack_html: str = ""


def _rogue_handler(rogue: Rogue) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            rogue.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
            body = (rogue.attack_html if self.path.startswith("/attack") else "<!doctype html><title>cb</title>ok").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def rogue() -> Iterator[Rogue]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _rogue_handler(Rogue(0)))
    state = Rogue(server.server_address[1])
    server.RequestHandlerClass = _rogue_handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def base(vault: VaultService) -> Iterator[str]:
    vault.remember(OWNER, MemoryIn(text="Standup is at 9:30 every weekday", space="work", sensitivity="low"))
    vault.remember(OWNER, MemoryIn(text="My salary review standup is in March", space="work", sensitivity="high"))
    vault.remember(OWNER, MemoryIn(text="My standup desk helps my back pain", space="health", sensitivity="high"))
    yield from serve_in_thread(lambda url: create_app(vault, url))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("redirect_host", "redirect_path"),
    # A redirect under the vault's own paths (/o/…, /login) is refused at registration (tests/e2e/test_oauth.py).
    [("127.0.0.1", "/cb"), ("localhost", "/cb")],
)
def test_owner_narrows_in_chromium_and_a_rogue_redirect_server_gets_nothing_beyond_the_approval(
    base: str, rogue: Rogue, browser: Any, redirect_host: str, redirect_path: str
) -> None:
    redirect_uri = f"http://{redirect_host}:{rogue.port}{redirect_path}"
    with httpx2.Client(timeout=30, follow_redirects=False) as http:
        client_id = http.post(f"{base}/register", json={"client_name": "Notes App", "redirect_uris": [redirect_uri]}).json()["client_id"]
        verifier, challenge = pkce()
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "s-1",
                 "scope": "search:memories read:memories", "code_challenge": challenge, "code_challenge_method": "S256",
                 "resource": f"{base}/mcp"}  # fmt: skip
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{base}/authorize?{urlencode(query)}")
        assert page.locator("h1").inner_text() == "Unlock to decide"
        assert axe_violations(page) == []
        if redirect_path == "/cb":
            page.screenshot(path=str(DOCS / "console-login.png"), full_page=True)
        page.fill("#passphrase", PASSPHRASE)
        with page.expect_response(f"{base}/login") as posted:
            page.click("button[type=submit]")
        # Chromium posted the form with our own Origin (not "null"): the guard let it through.
        assert posted.value.request.header_value("origin") == base
        assert posted.value.status == 303, posted.value.text()
        assert page.locator("h1").inner_text() == "Allow access?", page.content()
        page_url = page.url
        assert axe_violations(page) == []
        if redirect_path == "/cb":
            page.screenshot(path=str(DOCS / "console-consent.png"), full_page=True)
        page.uncheck("input[name=scope][value='read:memories']")
        page.check("input[name=space][value=work]")
        page.select_option("#sens", "medium")
        with page.expect_navigation(url=f"{redirect_uri}*"):
            page.click("button[value=approve]")

        # What the rogue redirect server saw: the code and state, and no cookie or page URL of ours.
        (visit,) = [v for v in rogue.seen if v["path"].startswith(redirect_path)]
        back = parse_qs(urlsplit(visit["path"]).query)
        assert back["state"] == ["s-1"] and back["iss"] == [base]
        assert "cookie" not in visit["headers"], visit["headers"]
        assert "referer" not in visit["headers"], visit["headers"]
        # Chromium holds no cookie of ours for the client's server (same host, another port)...
        assert context.cookies(redirect_uri) == []
        owner_cookies = {c["name"]: c for c in context.cookies(page_url)}
        assert owner_cookies["cv_session"]["path"] == urlsplit(page_url).path.removesuffix(urlsplit(page_url).path.split("/", 3)[3])
        # ...and whatever path of its own it sends the (still logged-in) browser to, it is sent no session.
        page.goto(f"{base}/login")  # the back-off device id is set again (its path is fixed: /login)
        for path in ("/", "/o/", "/login", "/consent/", "/static/console.css", "/o/x/status"):
            page.goto(f"http://{redirect_host}:{rogue.port}{path}")
        for visit in rogue.seen:
            assert "cv_session" not in visit["headers"].get("cookie", ""), visit
            # Only the back-off device id (Path=/login) can reach it: not a credential (docs/threat-model.md).
            sent = visit["headers"].get("cookie", "")
            assert sent == "" or (visit["path"] == "/login" and re.fullmatch(r"cv_device=[A-Za-z0-9_-]{43}", sent)), visit
        page.goto(page_url.rsplit("/oauth/", 1)[0] + "/")
        assert page.locator("h1").inner_text() == "Inbox"

        # The replay: whatever headers it got, sent back to the vault, win nothing.
        replay = {k: v for k, v in visit["headers"].items() if k not in ("host", "content-length", "connection", "accept-encoding")}
        widened = http.post(f"{base}/authorize", headers=replay, data={"scope": "search:* read:* write:* delete:*", "decision": "approve",
                            "client_id": client_id, "redirect_uri": redirect_uri, "code_challenge": challenge})  # fmt: skip
        assert widened.status_code in (404, 405) and "location" not in widened.headers
        assert http.get(f"{base}/o/x/", headers=replay).headers["location"] == "/login"
        again = http.get(f"{base}/authorize?{urlencode({**query, 'scope': 'read:*'})}", headers=replay)
        assert again.status_code == 303 and again.headers["location"].startswith("/consent/oauth/")
        door = http.get(f"{base}{again.headers['location']}", headers=replay)
        assert door.status_code == 303 and door.headers["location"].startswith("/login?next=oauth")

        # The code buys exactly what the owner approved, and the next MCP call sees only that.
        issued = http.post(f"{base}/token", data={"grant_type": "authorization_code", "client_id": client_id, "code": back["code"][0],
                           "redirect_uri": redirect_uri, "code_verifier": verifier, "resource": f"{base}/mcp"})  # fmt: skip
        assert issued.status_code == 200, issued.text
        tokens = issued.json()
        assert tokens["scope"] == "search:memories#space=work;sens=medium"
        # Playwright's sync API runs an event loop in this thread: the MCP client gets its own thread.
        with ThreadPoolExecutor(1) as pool:
            found = pool.submit(anyio.run, call_tool, base, tokens["access_token"], "search_context", {"query": "standup"}).result()
        texts = json.dumps(found.structured_content)
        assert "9:30" in texts and "salary" not in texts and "back pain" not in texts
        context.close()


def test_an_error_redirect_to_a_rogue_client_carries_no_cookie_and_leaves_none_in_chromium(base: str, rogue: Rogue, browser: Any) -> None:
    redirect_uri = f"http://127.0.0.1:{rogue.port}/cb"
    with httpx2.Client(timeout=30) as http:
        client_id = http.post(f"{base}/register", json={"client_name": "Rogue", "redirect_uris": [redirect_uri]}).json()["client_id"]
    _, challenge = pkce()
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "s-2", "scope": "search:memories",
             "code_challenge": challenge, "code_challenge_method": "S256", "resource": f"{base}/mcp"}  # fmt: skip
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base}/authorize?{urlencode(query)}")
    page.fill("#passphrase", PASSPHRASE)
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Allow access?"
    assert {c["name"] for c in context.cookies([page.url, f"{base}/login"])} == {"cv_session", "cv_device"}
    # While the owner is logged in, the rogue makes the browser ask for an owner-only scope: an error redirect to it.
    with page.expect_navigation(url=f"{redirect_uri}*"):
        page.goto(f"{base}/authorize?{urlencode({**query, 'scope': 'export:*'})}")
    (visit,) = [v for v in rogue.seen if v["path"].startswith("/cb")]
    assert parse_qs(urlsplit(visit["path"]).query)["error"] == ["invalid_scope"]
    assert "cookie" not in visit["headers"], visit["headers"]
    assert context.cookies(redirect_uri) == [] and context.cookies(f"{base}/login") == []
    context.close()


@pytest.mark.parametrize("referrer", ["no-referrer", "origin"])
def test_a_cross_site_form_post_from_another_loopback_port_is_refused_in_chromium(
    base: str, rogue: Rogue, browser: Any, referrer: str
) -> None:
    # no-referrer makes Chromium send "Origin: null"; origin sends the rogue's own origin: both are refused.
    rogue.attack_html = (
        f"<!doctype html><meta name=referrer content={referrer}><title>win a prize</title>"
        f'<form method=post action="{base}/login"><input name=passphrase value=guess>'
        "<input name=token value=x><input name=next value=''><button id=go>go</button></form>"
    )
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{rogue.port}/attack")
    with page.expect_response(f"{base}/login") as answer:
        page.click("#go")
    assert answer.value.status == 403
    assert answer.value.json() == {"error": "forbidden_origin"}
    assert answer.value.request.header_value("origin") == ("null" if referrer == "no-referrer" else f"http://127.0.0.1:{rogue.port}")
    page.close()


def test_the_one_time_link_logs_chromium_in_and_the_pages_pass_axe(base: str, vault: VaultService, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/login/link?token={vault.owner_login_link(OWNER)}")
    assert axe_violations(page) == []
    page.click("main button[type=submit]")
    assert page.locator("h1").inner_text() == "Inbox"
    assert axe_violations(page) == []
    console = urlsplit(page.url).path
    (session,) = [c for c in context.cookies(page.url) if c["name"] == "cv_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == console
    assert [c for c in context.cookies(f"{base}/") if c["name"] == "cv_session"] == []
    page.click("nav button[type=submit]")
    assert page.locator("h1").inner_text() == "Logged out"
    assert [c for c in context.cookies(f"{base}{console}") if c["name"] == "cv_session"] == []
    context.close()
