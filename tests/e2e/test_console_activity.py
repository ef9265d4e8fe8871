"""Activity in Chromium: an app reads an item and is refused another; the page shows the disclosure and the
denial, filters by app without JavaScript's help, links what the app saw, downloads JSON and CSV; axe is clean."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from schemas.items import MemoryIn
from tests.e2e.console import OwnerPage, axe_violations
from vault import OWNER, VaultService
from vault.errors import NotFound, ScopeDenied

HOSTILE = "=cmd|' /C calc'!A0 <img src=x onerror=alert(1)> \u202eevil"


@pytest.fixture
def activity(vault: VaultService) -> dict[str, str]:
    work = vault.remember(OWNER, MemoryIn(text="Standup is at 10:00", space="work")).item.id
    health = vault.remember(OWNER, MemoryIn(text="Dentist on Friday", space="health", sensitivity="high")).item.id
    vault.add_app(OWNER, "cursor")
    vault.grant(OWNER, "cursor", ["read:memories#space=work"], purpose="coding help")
    cursor = vault.principal_for_app("cursor")
    vault.get_item(cursor, work)
    with pytest.raises(NotFound):
        vault.get_item(cursor, health)  # outside its grant: it learns nothing, not even that the item exists
    with pytest.raises(ScopeDenied):
        vault.remember(cursor, MemoryIn(text="I was here", space="health"))  # refused and audited
    vault.add_app(OWNER, "claude")
    vault.request_access(vault.principal_for_app("claude"), ["search:memories"], HOSTILE)
    return {"work": work, "health": health, "cursor": cursor.app_id or ""}


def test_activity_shows_the_disclosure_and_the_denial_and_filters_by_app(owner: OwnerPage, activity: dict[str, str]) -> None:
    page = owner.open("activity")
    assert page.locator("h1").inner_text() == "Activity"
    assert "Chain verified" in page.locator(".verified").inner_text()
    row = page.get_by_role("table", name="Per app").locator("tr", has_text="cursor")
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "1" and cells[3] == "1", cells  # one item seen, one denial
    timeline = page.get_by_role("table", name=re.compile("^Timeline"))
    assert timeline.locator("tr", has_text="saw items").locator(f'a[href$="/vault/item/{activity["work"]}"]').count() == 1
    assert "tried to write memory in space health" in timeline.locator("tr", has_text="was refused").inner_text()
    # Hostile text is shown as text: no element was made of it.
    assert page.locator("img[src=x]").count() == 0 and "<img src=x onerror=alert(1)>" in timeline.inner_text()
    assert axe_violations(page) == []
    owner.shot("activity")

    # The filter is a plain GET form.
    page.select_option("#f-app", label="cursor")
    page.click("form[role=search] button[type=submit]")
    assert f"app={activity['cursor']}" in page.url
    texts = page.get_by_role("table", name=re.compile("^Timeline")).locator("tbody tr").all_inner_texts()
    assert texts and all("claude" not in t for t in texts)
    assert axe_violations(page) == []

    page.get_by_role("table", name="Per app").locator("tr", has_text="cursor").get_by_role("link", name="What cursor saw").click()
    assert page.locator("h1").inner_text() == "What cursor saw"
    assert (
        page.get_by_role("link", name="Standup is at 10:00").get_attribute("href", timeout=5000).endswith(f"/vault/item/{activity['work']}")
    )
    assert "Dentist" not in page.content() and activity["health"] not in page.content()
    assert axe_violations(page) == []


def test_activity_downloads_json_and_csv(owner: OwnerPage, activity: dict[str, str], tmp_path: Path) -> None:
    page = owner.open("activity")
    with page.expect_download() as got:
        page.get_by_role("link", name="JSON").click()
    entries = json.loads(Path(got.value.path()).read_text())
    assert got.value.suggested_filename.endswith(".json")
    assert {e["event"] for e in entries} >= {"disclose", "deny", "consent_request"}
    with page.expect_download() as got:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(got.value.path()).read_text())))
    asked = next(r for r in rows if r["event"] == "consent_request")
    assert asked["purpose"] == "'" + HOSTILE  # a spreadsheet shows it, never runs it


def test_activity_empty_and_error_states_pass_axe(owner: OwnerPage, vault: VaultService) -> None:
    page = owner.open("activity")
    assert "No app has done anything yet." in page.content()
    assert axe_violations(page) == []
    page = owner.open("activity?since=not-a-date")
    assert page.locator("[role=alert]").first.inner_text().startswith("From: use a date")
    assert axe_violations(page) == []
    vault.add_app(OWNER, "tampered")
    vault.store.execute("UPDATE audit SET detail = '{\"edited\": true}' WHERE seq = 1")
    page = owner.open("activity")
    assert "broken at entry 1" in page.locator(".broken").inner_text()
    assert axe_violations(page) == []
