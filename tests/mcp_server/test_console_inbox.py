"""The Inbox and Apps forms over real HTTP (no browser): each needs the session and its own form token,
an approval never exceeds the request, identical requests are one row, notices come from a fixed list."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape

import httpx2
import pytest

from mcp_server.http import create_app
from tests.e2e.conftest import serve_in_thread
from vault import OWNER, VaultService
from vault.access import ConsentRequests
from vault.principal import Principal
from vault.scopes import parse_scopes


@dataclass
class Console:
    http: httpx2.Client
    base: str
    url: str  # the session's /o/<key>

    def token(self, section: str, form_action: str) -> str:
        html = self.http.get(f"{self.url}/{section}").text
        found = re.search(
            rf'action="{re.escape(self.url)}/{form_action}" class=inline><input type=hidden name="token" value="([^"]+)"', html
        )
        if found is None:
            found = re.search(r'<input type=hidden name="token" value="([^"]+)">', html.split("</nav>", 1)[1])
        assert found is not None, html
        return unescape(found[1])


@pytest.fixture
def console(vault: VaultService) -> Iterator[Console]:
    for base in serve_in_thread(lambda url: create_app(vault, url)):
        with httpx2.Client(follow_redirects=False, timeout=30) as http:
            link = vault.owner_login_link(OWNER)
            logged = http.post(f"{base}/login/link", data={"link": link})
            assert logged.status_code == 303, logged.text
            yield Console(http, base, f"{base}{logged.headers['location']}".rstrip("/"))


@pytest.fixture
def planner(vault: VaultService) -> Principal:
    vault.add_app(OWNER, "planner")
    return vault.principal_for_app("planner")


def test_a_decision_needs_the_inbox_token_of_this_session(console: Console, vault: VaultService, planner: Principal) -> None:
    asked = vault.request_access(planner, ["read:memories"], "Plan")
    apps_token = console.token("apps", "apps/add")
    for token in ("", apps_token, "forged"):
        answer = console.http.post(f"{console.url}/inbox/approve", data={"token": token, "id": asked.id, "mode": "asked"})
        assert answer.status_code == 403
    with httpx2.Client(timeout=30) as stranger:
        assert stranger.post(f"{console.url}/inbox/deny-all", data={"token": console.token("", "inbox/deny-all")}).status_code == 403
    assert vault.list_grants(OWNER) == [] and [r.id for r in vault.list_consent(OWNER)] == [asked.id]
    # A test of the test: the right token decides.
    ok = console.http.post(f"{console.url}/inbox/approve", data={"token": console.token("", "inbox/approve"), "id": asked.id})
    assert ok.status_code == 303 and ok.headers["location"].endswith("/?done=approved")
    assert [g.scopes for g in vault.list_grants(OWNER)] == [["read:memories"]]


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"scope": "read:*"}, "was not requested"),
        ({"scope": "read:memories", "expires": "forever"}, "expires must be one of"),
        ({"scope": "read:memories", "sens": "secret"}, "sensitivity must be"),
        ({}, "tick at least one scope"),
        ({"scope": "read:memories#space=work", "space": "home"}, "none of the chosen spaces"),
    ],
)
def test_a_narrowing_never_widens_and_says_why(
    console: Console, vault: VaultService, planner: Principal, form: dict[str, str], reason: str
) -> None:
    asked = vault.request_access(planner, ["read:memories#space=work"] if "space" in form else ["read:memories"], "Plan")
    token = console.token("", "inbox/approve")
    answer = console.http.post(f"{console.url}/inbox/approve", data={"token": token, "id": asked.id, "mode": "narrow", **form})
    assert answer.status_code == 400 and reason in unescape(answer.text), answer.text
    assert vault.list_grants(OWNER) == [] and vault.list_consent(OWNER)[0].status == "pending"


def test_identical_requests_are_one_row_and_one_decision_settles_them(console: Console, vault: VaultService, planner: Principal) -> None:
    assert planner.app_id is not None
    first, second = (ConsentRequests(vault.store).create(planner.app_id, parse_scopes(["read:*"]), "Same") for _ in range(2))
    page = console.http.get(f"{console.url}/").text
    assert page.count('<section class="card request"') == 1 and "asked 2 times" in page
    answer = console.http.post(f"{console.url}/inbox/approve", data={"token": console.token("", "inbox/approve"), "id": first.id})
    assert answer.status_code == 303
    settled = {r.id: (r.status, r.grant_id) for r in vault.list_consent(OWNER, status=None)}
    (grant,) = vault.list_grants(OWNER)
    assert settled == {first.id: ("approved", grant.id), second.id: ("approved", grant.id)}


def test_a_notice_comes_from_a_fixed_list_never_from_the_url(console: Console) -> None:
    page = console.http.get(f"{console.url}/", params={"done": "<script>x</script>"}).text
    assert "<script>x" not in page and "role=status" not in page
    assert "Approved" in console.http.get(f"{console.url}/", params={"done": "approved"}).text


def test_removing_an_app_needs_the_confirmation_field(console: Console, vault: VaultService, planner: Principal) -> None:
    token = console.token("apps", "apps/rotate")
    refused = console.http.post(f"{console.url}/apps/remove", data={"token": token, "app": "planner"})
    assert refused.status_code == 400 and [a.name for a in vault.list_apps(OWNER)] == ["planner"]
    done = console.http.post(f"{console.url}/apps/remove", data={"token": token, "app": "planner", "confirm": "yes"})
    assert done.status_code == 303 and vault.list_apps(OWNER) == []


def test_a_rotated_token_is_never_in_a_url_and_the_answer_is_not_cached(console: Console, vault: VaultService, planner: Principal) -> None:
    answer = console.http.post(f"{console.url}/apps/rotate", data={"token": console.token("apps", "apps/rotate"), "app": "planner"})
    assert answer.status_code == 200 and "location" not in answer.headers
    assert answer.headers["cache-control"] == "no-store"
    token = re.search(r'id=new-token readonly value="([^"]+)"', answer.text)
    assert token is not None and vault.authenticate_app(unescape(token[1])).app_id == planner.app_id


def test_waiting_oauth_authorizations_are_listed_collapsed_and_denied_from_the_inbox(console: Console) -> None:
    redirect = "http://127.0.0.1:9/cb"
    client_id = console.http.post(f"{console.base}/register", json={"client_name": "Desk", "redirect_uris": [redirect]}).json()["client_id"]
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect, "scope": "search:memories#space=work",
             "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSw2zHcE", "code_challenge_method": "S256"}  # fmt: skip
    held = [console.http.get(f"{console.url}/authorize", params=query) for _ in range(2)]
    assert all(h.status_code == 303 and "/oauth/" in h.headers["location"] for h in held)
    page = console.http.get(f"{console.url}/").text
    assert page.count('<section class="card oauth"') == 1 and "asked 2 times" in page
    assert "Search your memories in the space work" in page
    # The row links the newest; the Inbox's Deny forgets both.
    assert held[1].headers["location"] in page
    token = console.token("", "inbox/deny-oauth")
    assert console.http.post(f"{console.url}/inbox/deny-oauth", data={"token": token, "client": client_id}).status_code == 303
    assert "card oauth" not in console.http.get(f"{console.url}/").text
    for h in held:
        assert console.http.get(f"{console.base}{h.headers['location']}").status_code == 404
