"""The Inbox in Chromium: an app asks over MCP, the owner sees what it would reach, narrows and
approves; the app's next call holds exactly the narrowed grant. Bulk deny; hostile text stays text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest

from schemas.items import MemoryIn
from tests.e2e.console import OwnerPage, axe_violations
from tests.e2e.mcp_app import call, can_read, scopes_now
from vault import OWNER, VaultService

HOSTILE = "<script>window.pwned=1</script>\u202eevil<img src=x onerror=window.pwned=2>"
# Client names refuse control and format characters (U+202E included): markup is all that is left to try.
HOSTILE_NAME = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"


@dataclass
class Vault:
    work: str
    personal: str
    secret: str
    token: str


@pytest.fixture
def stocked(vault: VaultService) -> Iterator[Vault]:
    work = vault.remember(OWNER, MemoryIn(text="The quarterly review is on Friday", space="work", sensitivity="medium")).item.id
    personal = vault.remember(OWNER, MemoryIn(text="I drink my coffee black", space="personal")).item.id
    secret = vault.remember(OWNER, MemoryIn(text="Salary negotiation notes", space="work", sensitivity="high")).item.id
    yield Vault(work, personal, secret, vault.add_app(OWNER, "planner").token)


def test_the_owner_narrows_and_approves_and_the_app_holds_exactly_that(owner: OwnerPage, stocked: Vault) -> None:
    base = owner.base
    page = owner.open("")
    assert "No app is waiting" in page.content()
    assert axe_violations(page) == []  # the empty state

    asked = call(base, stocked.token, "request_access", scopes=["read:memories", "search:memories"], purpose="Plan my week")
    assert not asked.is_error, asked
    assert scopes_now(base, stocked.token) == []

    page = owner.open("")
    card = page.locator("section.request")
    assert card.count() == 1
    text = card.inner_text()
    assert "planner" in text and "Plan my week" in text
    assert "Read your memories in every space, high sensitivity included" in text
    # What the grant would reach: 3 memories (work medium, work high, personal low), and the preview as the app.
    assert "It could see 3 items" in text
    assert card.locator("table tbody tr").count() == 3
    card.locator("details.preview summary").click()
    assert "Salary negotiation notes" in card.locator("details.preview").inner_text()
    card.locator("details.narrow summary").click()
    assert axe_violations(page) == []  # a request, narrowing open
    owner.shot("inbox")

    # Narrow: drop search, only the work space, up to medium, for a day.
    card.locator("input[name=scope][value='search:memories']").uncheck()
    card.locator("input[name=space][value=work]").check()
    card.locator("select[name=sens]").select_option("medium")
    card.locator("select[name=expires]").select_option("1d")
    card.get_by_role("button", name="Approve narrowed").click()
    assert "Approved" in page.locator("[role=status]").inner_text()
    page.get_by_text("No app is waiting").first.wait_for()
    assert axe_violations(page) == []  # the answer

    # The app's next call: exactly the narrowed grant, nothing more.
    assert scopes_now(base, stocked.token) == ["read:memories#space=work;sens=medium"]
    assert can_read(base, stocked.token, stocked.work)
    assert not can_read(base, stocked.token, stocked.secret)
    assert not can_read(base, stocked.token, stocked.personal)


def test_approve_as_asked_and_deny(owner: OwnerPage, stocked: Vault) -> None:
    base = owner.base
    call(base, stocked.token, "request_access", scopes=["read:memories#space=personal"], purpose="Coffee")
    page = owner.open("")
    page.get_by_role("button", name="Approve as asked").click()
    assert "Approved" in page.locator("[role=status]").inner_text()
    assert scopes_now(base, stocked.token) == ["read:memories#space=personal"]
    assert can_read(base, stocked.token, stocked.personal) and not can_read(base, stocked.token, stocked.work)

    call(base, stocked.token, "request_access", scopes=["read:*"], purpose="More")
    page = owner.open("")
    # Narrowing everything away is refused on the page, with the reason; nothing is granted.
    card = page.locator("section.request")
    card.locator("details.narrow summary").click()
    card.locator("input[name=scope]").uncheck()
    card.get_by_role("button", name="Approve narrowed").click()
    assert "tick at least one scope" in page.locator("[role=alert]").inner_text()
    assert axe_violations(page) == []  # the error state
    assert scopes_now(base, stocked.token) == ["read:memories#space=personal"]
    page.locator("section.request").get_by_role("button", name="Deny", exact=True).click()
    assert "Denied" in page.locator("[role=status]").inner_text()
    assert scopes_now(base, stocked.token) == ["read:memories#space=personal"]


def test_bulk_deny_one_app_then_everything(owner: OwnerPage, stocked: Vault, vault: VaultService) -> None:
    base = owner.base
    other = vault.add_app(OWNER, "other").token
    for purpose in ("one", "two", "three"):
        call(base, stocked.token, "request_access", scopes=["read:*"], purpose=purpose)
    call(base, other, "request_access", scopes=["search:*"], purpose="other's")
    page = owner.open("")
    assert page.locator("section.request").count() == 4
    planner = page.locator("section.request", has_text="planner").first
    planner.get_by_role("button", name="Deny everything from this app").click()
    assert "that app was denied" in page.locator("[role=status]").inner_text()
    assert page.locator("section.request").count() == 1 and "other" in page.locator("section.request").inner_text()
    page.get_by_role("button", name="Deny all").click()
    page.wait_for_url("**done=denied-all*")
    page.get_by_text("No app is waiting").first.wait_for()  # the page the redirect led to, once loaded
    assert vault.list_consent(OWNER) == []
    assert {r.status for r in vault.list_consent(OWNER, status=None)} == {"denied"}


def test_hostile_purpose_and_client_name_stay_text(owner: OwnerPage, stocked: Vault) -> None:
    base = owner.base
    call(base, stocked.token, "request_access", scopes=["read:memories"], purpose=HOSTILE)
    # An OAuth client names itself; the owner's browser starts its authorization (the page holds it).
    with httpx2.Client(timeout=30) as http:
        client_id = http.post(f"{base}/register", json={"client_name": HOSTILE_NAME, "redirect_uris": ["http://127.0.0.1:9/cb"]}).json()[
            "client_id"
        ]
    query = (
        f"response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=read%3Amemories"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSw2zHcE&code_challenge_method=S256&state=s"
    )
    owner.page.goto(f"{owner.console}/authorize?{query}")
    assert owner.page.locator("h1").inner_text() == "Allow access?"
    page = owner.open("")
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("main script, main img").count() == 0
    request = page.locator("section.request").inner_text()
    oauth = page.locator("section.oauth").inner_text()
    assert "<script>window.pwned=1</script>" in request and "<script>window.pwned=1</script>" in oauth
    assert page.locator("section.oauth bdi").first.inner_text().startswith("<script>")
    assert axe_violations(page) == []
    # The link leads to that authorization's own page; the Inbox's Deny forgets it.
    href = page.locator("section.oauth a").get_attribute("href")
    assert href is not None and re.fullmatch(r"/o/[^/]+/oauth/[A-Za-z0-9_-]+", href)
    page.locator("section.oauth").get_by_role("button", name="Deny").click()
    assert page.locator("section.oauth").count() == 0
    owner.page.goto(f"{owner.base}{href}")
    assert "expired or was decided" in owner.page.content()
