"""Status in Chromium: the search index rows, and Lock now ending the owner's session (axe clean before and after)."""

from __future__ import annotations

from tests.e2e.console import OwnerPage, axe_violations


def test_lock_now_logs_this_browser_out(owner: OwnerPage) -> None:
    page = owner.open("status")
    assert page.get_by_role("table", name="Search index").is_visible()
    page.get_by_role("button", name="Lock now").click()
    assert page.locator("h1").inner_text() == "Locked"
    assert "Every owner session has ended" in page.locator("[role=status]").inner_text()
    assert axe_violations(page) == []
    page = owner.open("status")
    assert page.locator("h1").inner_text() == "Unlock to decide"
