"""The Apps page in Chromium: grants in words, revoke cuts the app off on its next call, rotate shows
the new token once (the old one dies), remove after a confirmation, add an app with its host config."""

from __future__ import annotations

import json

from schemas.items import MemoryIn
from tests.e2e.console import OwnerPage, axe_violations
from tests.e2e.mcp_app import call, can_read, scopes_now
from vault import OWNER, VaultService

# A purpose is the app's own text (it asked with it): it must stay text on the page.
HOSTILE = "<img src=x onerror=window.pwned=1>\u202eSearch"


def test_revoke_from_the_apps_page_cuts_the_app_off(owner: OwnerPage, vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="I drink my coffee black", space="personal")).item.id
    token = vault.add_app(OWNER, "planner").token
    vault.grant(OWNER, "planner", ["read:memories#space=personal"], purpose="Coffee orders")
    vault.grant(OWNER, "planner", ["search:memories"], purpose=HOSTILE)
    assert can_read(owner.base, token, item)

    page = owner.open("apps")
    card = page.locator("section.app", has_text="planner")
    text = card.inner_text()
    assert "Read your memories in the space personal" in text and "Coffee orders" in text and "until revoked" in text
    assert HOSTILE in text and page.evaluate("typeof window.pwned") == "undefined" and page.locator("main img").count() == 0
    assert "Last seen:" in text and "never" not in text.split("Last seen:")[1].split("·")[0]
    assert axe_violations(page) == []
    owner.shot("apps")

    card.locator("tr", has_text="Coffee orders").get_by_role("button", name="Revoke").click()
    assert "Revoked" in page.locator("[role=status]").inner_text()
    assert not can_read(owner.base, token, item)
    assert scopes_now(owner.base, token) == ["search:memories"]
    page.locator("section.app", has_text="planner").get_by_role("button", name="Revoke all").click()
    assert scopes_now(owner.base, token) == []
    assert "No live grant" in page.locator("section.app", has_text="planner").inner_text()
    assert axe_violations(page) == []


def test_rotate_shows_the_token_once_and_the_old_one_dies(owner: OwnerPage, vault: VaultService) -> None:
    old = vault.add_app(OWNER, "planner").token
    page = owner.open("apps")
    page.get_by_role("button", name="Rotate token").click()
    new = page.locator("#new-token").input_value()
    assert new and new != old and new not in page.url
    assert "shown this once" in page.locator("[role=alert]").inner_text()
    assert json.loads(page.locator("pre").first.inner_text())["mcpServers"]["ctxvault"]["env"]["CTXVAULT_APP_TOKEN"] == new
    assert axe_violations(page) == []
    assert not call(owner.base, new, "list_access").is_error
    try:
        call(owner.base, old, "list_access")
    except Exception:  # the SDK client raises on the 401 of an unknown token
        pass
    else:
        raise AssertionError("the old token still works")
    # The token is not on the Apps page afterwards.
    assert new not in owner.open("apps").content()


def test_remove_needs_its_confirmation(owner: OwnerPage, vault: VaultService) -> None:
    vault.add_app(OWNER, "planner")
    vault.grant(OWNER, "planner", ["read:*"])
    page = owner.open("apps")
    page.get_by_role("link", name="Remove…").click()
    assert page.locator("h1").inner_text() == "Remove planner?"
    assert "1 live grant" in page.content()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Remove this app").click()
    assert "removed" in page.locator("[role=status]").inner_text()
    assert [a.name for a in vault.list_apps(OWNER)] == []


def test_add_an_app_and_see_the_host_config(owner: OwnerPage, vault: VaultService) -> None:
    page = owner.open("apps")
    assert "No app is registered yet" in page.content()
    assert axe_violations(page) == []  # the empty state
    page.fill("#app-name", "cursor-laptop")
    page.fill("#app-redirect", "http://127.0.0.1:7777/cb")
    page.get_by_role("button", name="Add").click()
    assert page.locator("h1").inner_text() == "App cursor-laptop added"
    token = page.locator("#new-token").input_value()
    configs = page.locator("pre").all_inner_texts()
    entry = json.loads(configs[0])["mcpServers"]["ctxvault"]
    assert entry["args"] == ["mcp", "--app", "cursor-laptop"] and entry["env"]["CTXVAULT_APP_TOKEN"] == token
    assert axe_violations(page) == []
    assert vault.list_apps(OWNER)[0].redirect_uris == ["http://127.0.0.1:7777/cb"]
    # A bad name answers on the page, with the reason.
    page = owner.open("apps")
    page.fill("#app-name", "Bad Name!")
    page.get_by_role("button", name="Add").click()
    assert page.locator("[role=alert]").count() == 1
    assert axe_violations(page) == []
    page = owner.open("apps/config?app=cursor-laptop")
    assert "CTXVAULT_APP_TOKEN" not in page.content() and '"cursor-laptop"' in page.content()
    assert axe_violations(page) == []
