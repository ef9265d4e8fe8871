"""The console's Vault page in Chromium: browse, filter and search; an item with its history; edit and
restore; forget, unforget and purge (after its confirmation); upload with progress, an oversized upload
refused in place with nothing stored; hostile memory text shown inert; axe clean in every state."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from schemas.items import MemoryIn, SearchQuery
from tests.e2e.console import OwnerPage, axe_violations
from vault import OWNER, VaultService
from vault.settings import Settings

LIMIT = 256 * 1024
HOSTILE = "Evil <script>alert('x')</script> \u202egnp.exe\u202c \x1b[2J\x1b[31mred"
# Patches XHR in the page (an init script, outside the page's CSP) to note, across the navigation that
# follows, the upload's last progress event and the value the form's <progress> showed at that moment.
WATCH_PROGRESS = """
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (body) {
  this.upload.addEventListener("progress", (e) => {
    const bar = document.querySelector("form[data-progress] progress");
    sessionStorage.setItem("cv-progress", JSON.stringify({loaded: e.loaded, total: e.total, value: bar.value, max: bar.max}));
  });
  return send.call(this, body);
};
"""


@pytest.fixture
def settings(home: Path) -> Settings:
    """A small document limit, so the oversized upload is quick to send."""
    return replace(Settings.from_env(), max_document_bytes=LIMIT)


def seed(vault: VaultService) -> dict[str, str]:
    ids = {
        "tea": vault.remember(OWNER, MemoryIn(text="I drink green tea every morning", tags=["drinks"])).item.id,
        "plan": vault.remember(OWNER, MemoryIn(text="The quarterly plan is due on Friday", space="work", tags=["plan"])).item.id,
        "health": vault.remember(OWNER, MemoryIn(text="Allergic to penicillin", space="health", sensitivity="high")).item.id,
        "hostile": vault.remember(OWNER, MemoryIn(text=HOSTILE, tags=["odd"])).item.id,
    }
    ids["diet"] = vault.set_preference(OWNER, "diet", "vegetarian").item.id
    return ids


def rows(page: Any) -> list[str]:
    return [r.inner_text() for r in page.locator("#found ~ table tbody tr, section[aria-labelledby=found] tbody tr").all()]


def no_dialog(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))
    return seen


def test_browse_filter_and_search_and_hostile_text_is_inert(owner: OwnerPage, vault: VaultService) -> None:
    page = owner.open("vault")
    assert "The vault is empty" in page.content()
    assert axe_violations(page) == []
    ids = seed(vault)
    dialogs = no_dialog(page)
    page = owner.open("vault")
    assert len(rows(page)) == 5
    # Hostile text: escaped, its bidi override and ANSI escapes shown as text, no script ran.
    link = page.locator(f'a[href$="/vault/item/{ids["hostile"]}"]')
    assert "<script>alert('x')</script>" in link.inner_text() and "\\u202e" in link.inner_text() and "\\x1b[2J" in link.inner_text()
    assert page.locator("main script").count() == 0 and dialogs == []
    assert axe_violations(page) == []
    owner.shot("vault")
    # Filters through the GET form.
    page.select_option("select[name=space]", "work")
    page.click("form[role=search] button[type=submit]")
    assert "space=work" in page.url and [r.split("\t")[1] for r in rows(page)] == ["The quarterly plan is due on Friday"]
    page.goto(f"{owner.console}/vault")
    page.select_option("select[name=kind]", "preference")
    page.click("form[role=search] button[type=submit]")
    assert [r.split("\t")[1] for r in rows(page)] == ["diet: vegetarian"]
    page.goto(f"{owner.console}/vault?sensitivity=medium")
    assert "Allergic" not in page.locator("main").inner_text()
    page.goto(f"{owner.console}/vault?tag=drinks")
    assert [r.split("\t")[1] for r in rows(page)] == ["I drink green tea every morning"]
    # Search (the core's hybrid search) by meaning and words.
    page.goto(f"{owner.console}/vault")
    page.fill("input[name=q]", "penicillin allergy")
    page.click("form[role=search] button[type=submit]")
    assert page.locator("#found").inner_text() == "Search results"
    assert rows(page)[0].split("\t")[1] == "Allergic to penicillin"
    assert axe_violations(page) == []
    page.goto(f"{owner.console}/vault?q=zzzqqqxxx&kind=document")
    assert "Nothing matches." in page.content() and axe_violations(page) == []


def test_open_edit_restore_an_item(owner: OwnerPage, vault: VaultService) -> None:
    ids = seed(vault)
    page = owner.open("vault")
    page.click(f'a[href$="/vault/item/{ids["tea"]}"]')
    assert page.locator("h1").inner_text() == "Memory"
    assert "Written by" in page.content() and "No earlier version." in page.content()
    assert axe_violations(page) == []
    page.fill("form[action$=edit] textarea[name=text]", "I drink jasmine tea every morning")
    page.fill("form[action$=edit] input[name=tags]", "drinks, tea")
    page.click("form[action$=edit] button[type=submit]")
    assert "done=edited" in page.url
    assert page.locator("[role=status]").inner_text().startswith("Saved.")
    assert page.locator(".itemtext").inner_text() == "I drink jasmine tea every morning"
    history = page.locator("section[aria-labelledby=hist] tbody tr")
    assert history.count() == 1 and "I drink green tea every morning" in history.first.inner_text()
    assert axe_violations(page) == []
    owner.shot("item")
    page.click("text=Restore version 1")
    assert "done=restored" in page.url and page.locator(".itemtext").inner_text() == "I drink green tea every morning"
    assert page.locator("section[aria-labelledby=hist] tbody tr").count() == 2
    assert vault.get_item(OWNER, ids["tea"]).text == "I drink green tea every morning"
    assert axe_violations(page) == []
    # The hostile memory's own page: inert too.
    dialogs = no_dialog(page)
    page.goto(f"{owner.console}/vault/item/{ids['hostile']}")
    assert "\\u202e" in page.locator(".itemtext").inner_text() and dialogs == [] and page.locator("main script").count() == 0
    assert axe_violations(page) == []


def test_forget_unforget_then_purge_after_the_confirmation(owner: OwnerPage, vault: VaultService) -> None:
    ids = seed(vault)
    page = owner.open(f"vault/item/{ids['health']}")
    page.click("form[action$=forget] button")
    page.wait_for_url("**done=forgotten*")
    page.locator(".forgotten-note").wait_for()  # waits for the page the redirect led to (never a race with the load)
    assert page.locator(".forgotten-note").is_visible()
    assert vault.search(OWNER, SearchQuery(text="penicillin", mode="lexical")).hits == []
    assert axe_violations(page) == []
    page.goto(f"{owner.console}/vault")
    assert "Forgotten (1)" in page.content()
    page.goto(f"{owner.console}/vault/item/{ids['health']}")
    page.click("form[action$=unforget] button")
    assert "done=unforgotten" in page.url
    assert [h.item_id for h in vault.search(OWNER, SearchQuery(text="penicillin", mode="lexical")).hits] == [ids["health"]]
    page.click("text=Purge for good…")
    assert page.locator("h1").inner_text() == "Purge for good?"
    said = page.locator("main").inner_text()
    assert "This cannot be undone" in said and "Allergic to penicillin" in said and ids["health"] in said
    assert axe_violations(page) == []
    page.click("form[action$=purge] button")
    assert page.url.endswith("/vault?done=purged") and "Purged" in page.locator("[role=status]").inner_text()
    page.goto(f"{owner.console}/vault?q=penicillin")
    assert "Allergic" not in page.locator("main").inner_text()
    assert ids["health"] not in [h.item_id for h in vault.search(OWNER, SearchQuery(text="penicillin")).hits]
    answer = page.goto(f"{owner.console}/vault/item/{ids['health']}")
    assert answer is not None and answer.status == 404 and axe_violations(page) == []


def test_upload_with_progress_and_an_oversized_upload_refused(owner: OwnerPage, vault: VaultService, tmp_path: Path) -> None:
    owner.context.add_init_script(WATCH_PROGRESS)
    page = owner.open("vault")
    form = page.locator("form[data-progress]")
    assert form.locator("progress").is_visible()
    assert "at most 256 KiB" in form.inner_text()
    note = tmp_path / "garden.md"
    note.write_text("# Garden notes\n" + "Tomatoes need six hours of sun and deep watering.\n" * 800)  # ~40 KB, ~35 chunks to embed
    xhr: list[str] = []
    page.on("request", lambda r: xhr.append(r.url) if r.resource_type == "xhr" else None)
    form.locator("input[type=file]").set_input_files(str(note))
    form.locator("input[name=space]").fill("home")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/vault/item/[0-9A-Z]+\?done=uploaded$"), timeout=60_000)
    assert [u for u in xhr if u.endswith("/vault/upload")], xhr  # sent by console.js, with progress
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('cv-progress'))")
    assert seen["loaded"] == seen["total"] > note.stat().st_size and seen["value"] == seen["max"] == seen["total"]
    assert page.locator("h1").inner_text() == "Document" and "Garden notes" in page.locator(".itemtext").inner_text()
    assert "upload:garden.md" in page.content()
    assert axe_violations(page) == []
    # Past the limit: the message beside the form, nothing stored.
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (LIMIT + 1))
    page = owner.open("vault")
    form = page.locator("form[data-progress]")
    form.locator("input[type=file]").set_input_files(str(big))
    form.locator("button[type=submit]").click()
    error = form.locator("[data-error]")
    error.wait_for(state="visible")
    assert "larger than the limit of 262,144 bytes" in error.inner_text()
    assert axe_violations(page) == []
    assert [d.text for d in vault.list_items(OWNER, kinds=["document"]).items] == ["Garden notes"]


def test_without_script_the_forms_still_work(browser: Any, owner: OwnerPage, vault: VaultService, tmp_path: Path) -> None:
    plain = browser.new_context(java_script_enabled=False, storage_state=owner.context.storage_state())
    page = plain.new_page()
    page.goto(f"{owner.console}/vault")
    page.fill("form[action$='/vault/add'] textarea[name=text]", "Written without script")
    page.click("form[action$='/vault/add'] button[type=submit]")
    assert "done=added" in page.url and page.locator(".itemtext").inner_text() == "Written without script"
    note = tmp_path / "plain.txt"
    note.write_text("Plain upload, no script.")
    page.goto(f"{owner.console}/vault")
    page.locator("form[data-progress] input[type=file]").set_input_files(str(note))
    page.click("form[data-progress] button[type=submit]")
    assert "done=uploaded" in page.url and page.locator("h1").inner_text() == "Document"
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (LIMIT + 1))
    page.goto(f"{owner.console}/vault")
    page.locator("form[data-progress] input[type=file]").set_input_files(str(big))
    page.click("form[data-progress] button[type=submit]")
    assert "larger than the limit" in page.locator("[role=alert]").first.inner_text()
    assert vault.list_items(OWNER, kinds=["document"]).total == 1
    plain.close()
