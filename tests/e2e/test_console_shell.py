"""The console's frame in Chromium: every section is reachable from the navigation, passes axe, and
answers a logged-out browser with the login form (never a page of the vault)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_server.console.html import SECTIONS
from tests.e2e.console import OwnerPage, axe_violations


def test_status_shows_the_vault_and_passes_axe(owner: OwnerPage) -> None:
    page = owner.open("status")
    assert page.locator("h1").inner_text() == "Status"
    assert "Embedding model" in page.content()
    assert axe_violations(page) == []
    owner.shot("status")


@pytest.mark.parametrize(("path", "label"), [s for s in SECTIONS if s[0] in ("", "status")])
def test_a_logged_out_browser_is_sent_to_the_login_form(browser: Any, owner: OwnerPage, path: str, label: str) -> None:
    stranger = browser.new_context()
    page = stranger.new_page()
    page.goto(f"{owner.console}/{path}")
    assert page.locator("h1").inner_text() == "Unlock to decide" and "Inbox" not in page.content()
    stranger.close()
    # The owner's own page is the section itself, marked as current in the navigation.
    owner.open(path)
    assert owner.page.locator("nav [aria-current=page]").inner_text() == label
