"""Export / import in Chromium: download a passphrase export, re-import that file with a preview, import a new
file with a preview and confirm it; every page and state passes axe. Playwright's download and upload APIs only."""

from __future__ import annotations

import json
import re
from pathlib import Path

from schemas.items import MemoryIn
from schemas.portable import Selection
from tests.e2e.console import OwnerPage, axe_violations
from vault import OWNER, VaultService
from vault.portable.bundle import AGE_MAGIC

SECRET = "a long export passphrase"


def _rows(page: object, caption: str) -> dict[str, str]:
    table = page.get_by_role("table", name=caption)  # type: ignore[attr-defined]
    return {r.locator("td").nth(0).inner_text(): r.locator("td").nth(1).inner_text() for r in table.locator("tbody tr").all()}


def test_export_then_reimport_with_a_preview(owner: OwnerPage, vault: VaultService, tmp_path: Path) -> None:
    kept = vault.remember(OWNER, MemoryIn(text="Standup is at 10:00", space="work")).item
    gone = vault.remember(OWNER, MemoryIn(text="Lunch at noon", space="work")).item
    page = owner.open("transfer")
    assert page.locator("h1").inner_text() == "Export / import"
    assert axe_violations(page) == []
    owner.shot("transfer")

    page.fill("#x-pass", SECRET)
    with page.expect_download() as got:
        page.click("form[action$='/transfer/export'] button[type=submit]")
    download = got.value
    assert download.suggested_filename.startswith("ctxvault-export-") and download.suggested_filename.endswith(".age")
    bundle = tmp_path / download.suggested_filename
    download.save_as(bundle)
    assert bundle.read_bytes().startswith(AGE_MAGIC)
    assert SECRET not in page.url and "passphrase" not in page.url

    vault.forget(OWNER, gone.id)
    vault.purge(OWNER)
    page.set_input_files("#i-file", str(bundle))
    page.fill("#i-pass", SECRET)
    page.click("form[action$='/transfer/import'] button[type=submit]")
    page.wait_for_url("**/transfer/import/**")
    assert page.locator("h1").inner_text() == "Import preview"
    preview = _rows(page, "Preview (dry run)")
    assert preview["Format"] == "bundle" and preview["Unchanged"] == "1" and preview["Skipped"] == "1"
    assert "purged in this vault" in page.get_by_role("table", name="Skipped").inner_text()
    assert axe_violations(page) == []
    owner.shot("transfer-preview")

    page.get_by_role("button", name="Import it").click()
    page.wait_for_url("**/transfer?done=imported")
    assert page.locator("[role=status]").first.inner_text() == "Imported."
    assert _rows(page, "What the import did")["Unchanged"] == "1"
    assert vault.get_item(OWNER, kept.id).text == "Standup is at 10:00"
    assert axe_violations(page) == []


def test_a_new_file_is_previewed_then_imported_and_a_wrong_passphrase_is_shown(
    owner: OwnerPage, vault: VaultService, tmp_path: Path
) -> None:
    notes = tmp_path / "memory.jsonl"
    notes.write_text(json.dumps({"type": "entity", "name": "Ada", "entityType": "person", "observations": ["Ada likes green tea"]}) + "\n")
    page = owner.open("transfer")
    page.set_input_files("#i-file", str(notes))
    page.click("form[action$='/transfer/import'] button[type=submit]")
    page.wait_for_url("**/transfer/import/**")
    assert _rows(page, "Preview (dry run)")["New items"].startswith("1")
    assert vault.list_items(OWNER).total == 0  # the preview wrote nothing
    page.get_by_role("button", name="Import it").click()
    page.wait_for_url("**/transfer?done=imported")
    assert vault.list_items(OWNER).total == 1

    # An error state: a bundle with the wrong passphrase, answered on the page (the script shows the alert in place).
    vault.export_bundle(OWNER, Selection(), tmp_path / "x.age", passphrase=SECRET)
    page = owner.open("transfer")
    page.set_input_files("#i-file", str(tmp_path / "x.age"))
    page.fill("#i-pass", "not the passphrase")
    page.click("form[action$='/transfer/import'] button[type=submit]")
    said = page.locator("form[action$='/transfer/import'] [data-error]")
    from playwright.sync_api import expect

    expect(said).to_have_text(re.compile(r"\S"))
    assert "passphrase" in said.inner_text().lower() or "decrypt" in said.inner_text().lower(), said.inner_text()
    assert axe_violations(page) == []
