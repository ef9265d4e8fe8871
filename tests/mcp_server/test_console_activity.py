"""The Activity page in process: the report, filters, downloads, hostile text, a broken chain, a logged-out browser."""

from __future__ import annotations

import csv
import io
import json

import httpx2
import pytest

from mcp_server.console.activity import csv_cell
from schemas.items import MemoryIn
from tests.mcp_server.console_client import as_owner
from vault import OWNER, VaultService
from vault.errors import ScopeDenied

HOSTILE = '=HYPERLINK("http://x")<script>alert(1)</script>\u202e\x1b[2J'


@pytest.fixture
def busy(vault: VaultService) -> dict[str, str]:
    work = vault.remember(OWNER, MemoryIn(text="Standup is at 10:00", space="work")).item.id
    vault.remember(OWNER, MemoryIn(text="Dentist on Friday", space="health"))
    vault.add_app(OWNER, "reader")
    vault.grant(OWNER, "reader", ["read:memories#space=work"], purpose="testing")
    reader = vault.principal_for_app("reader")
    vault.get_item(reader, work)
    with pytest.raises(ScopeDenied):
        vault.remember(reader, MemoryIn(text="sneaky", space="work"))
    vault.add_app(OWNER, "other")
    other = vault.principal_for_app("other")
    vault.request_access(other, ["read:memories"], HOSTILE)
    return {"work": work, "reader": reader.app_id or "", "other": other.app_id or ""}


def test_the_report_shows_each_app_with_what_it_saw_and_its_denials(vault: VaultService, busy: dict[str, str]) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> httpx2.Response:
        return await client.get(f"{console}/activity")

    page = as_owner(vault, run)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert "Chain verified" in html
    assert f'/activity/app/{busy["reader"]}">What <bdi>reader</bdi> saw' in html
    assert f'/vault/item/{busy["work"]}"' in html
    assert "was refused" in html and "tried to <bdi>write memory in space work</bdi>" in html
    # Hostile purposes are escaped and isolated, never markup.
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_filter_by_app_and_event_narrows_the_timeline(vault: VaultService, busy: dict[str, str]) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, httpx2.Response]:
        return (
            await client.get(f"{console}/activity", params={"app": busy["other"]}),
            await client.get(f"{console}/activity", params={"app": "reader", "event": "deny"}),
        )

    other, denials = as_owner(vault, run)
    timeline = other.text.split("Timeline, newest first")[1]
    assert "asked for access" in timeline and "saw items" not in timeline
    rows = denials.text.split("Timeline, newest first")[1].count("<tr>") - 1
    assert rows == 1 and "was refused" in denials.text


def test_bad_filters_answer_an_error_on_the_page(vault: VaultService, busy: dict[str, str]) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, httpx2.Response, httpx2.Response]:
        return (
            await client.get(f"{console}/activity", params={"since": "yesterday"}),
            await client.get(f"{console}/activity", params={"app": "nobody"}),
            await client.get(f"{console}/activity", params={"before": "x"}),
        )

    date, app, before = as_owner(vault, run)
    assert date.status_code == 400 and "use a date such as" in date.text
    assert app.status_code == 404 and "no app &#x27;nobody&#x27;" in app.text
    assert before.status_code == 400


def test_pages_go_back_with_older_entries(vault: VaultService, busy: dict[str, str]) -> None:
    for _ in range(60):
        vault.get_item(vault.principal_for_app("reader"), busy["work"])

    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, httpx2.Response]:
        first = await client.get(f"{console}/activity", params={"app": "reader"})
        older = first.text.split("rel=next")[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        return first, await client.get(older)

    first, second = as_owner(vault, run)
    assert "Older entries" in first.text and "Newest entries" in second.text
    assert "Older entries" not in second.text


def test_downloads_are_attachments_and_csv_cells_cannot_be_formulas(vault: VaultService, busy: dict[str, str]) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, httpx2.Response]:
        return await client.get(f"{console}/activity/export.json"), await client.get(f"{console}/activity/export.csv?app=other")

    as_json, as_csv = as_owner(vault, run)
    assert as_json.headers["content-disposition"].startswith('attachment; filename="ctxvault-activity-')
    entries = json.loads(as_json.text)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert any(e["purpose"] == HOSTILE for e in entries)
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows and {r["app"] for r in rows} == {"other"}
    asked = next(r for r in rows if r["event"] == "consent_request")
    assert asked["purpose"] == "'" + HOSTILE
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_cell_neutralises_every_formula_start(text: str) -> None:
    assert csv_cell(text) == "'" + text
    assert csv_cell("plain") == "plain" and csv_cell(None) == "" and csv_cell(3) == "3"


def test_a_broken_chain_is_shown_with_the_entry_where_it_breaks(vault: VaultService, busy: dict[str, str]) -> None:
    vault.store.execute("UPDATE audit SET purpose = 'edited' WHERE seq = 3")

    async def run(client: httpx2.AsyncClient, console: str) -> httpx2.Response:
        return await client.get(f"{console}/activity")

    page = as_owner(vault, run)
    assert "The audit log is broken at entry 3" in page.text and "Chain verified" not in page.text


def test_what_an_app_saw_links_each_item(vault: VaultService, busy: dict[str, str]) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, httpx2.Response, str]:
        return (
            await client.get(f"{console}/activity/app/{busy['reader']}"),
            await client.get(f"{console}/activity/app/nobody"),
            console,
        )

    saw, missing, console = as_owner(vault, run)
    assert "What reader saw" in saw.text
    assert f'href="{console}/vault/item/{busy["work"]}"><bdi>Standup is at 10:00</bdi>' in saw.text
    assert "Dentist" not in saw.text
    assert missing.status_code == 404


def test_a_logged_out_browser_gets_the_login_never_the_log(vault: VaultService, busy: dict[str, str]) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> list[httpx2.Response]:
        client.cookies.clear()
        return [await client.get(f"{console}/{path}") for path in ("activity", "activity/export.csv", f"activity/app/{busy['reader']}")]

    for answer in as_owner(vault, run):
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
