"""Export / import in process: downloads, the capped upload, the preview of the same file, its confirm, every refusal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx2
import pytest

from mcp_server.console import transfer
from mcp_server.forms import staged_suffix
from schemas.items import MemoryIn
from tests.mcp_server.console_client import as_owner, hidden_token
from vault import OWNER, VaultService
from vault.portable.bundle import AGE_MAGIC

SECRET = "a long export passphrase"
JSONL = (json.dumps({"type": "entity", "name": "Ada", "entityType": "person", "observations": ["Ada prefers green tea"]}) + "\n").encode()


def staged_files(vault: VaultService) -> list[Path]:
    root = vault.settings.home / "transfer"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def _upload(client: httpx2.AsyncClient, console: str, data: bytes, name: str, **fields: str) -> httpx2.Response:
    page = await client.get(f"{console}/transfer")
    token = hidden_token(page.text, f"{console}/transfer/import")
    return await client.post(f"{console}/transfer/import", data={"token": token, **fields}, files={"file": (name, data)})


def test_export_downloads_an_age_bundle_and_keeps_no_copy(vault: VaultService) -> None:
    vault.remember(OWNER, MemoryIn(text="Standup is at 10:00", space="work"))

    async def run(client: httpx2.AsyncClient, console: str) -> httpx2.Response:
        page = await client.get(f"{console}/transfer")
        token = hidden_token(page.text, f"{console}/transfer/export")
        return await client.post(f"{console}/transfer/export", data={"token": token, "protect": "passphrase", "passphrase": SECRET})

    answer = as_owner(vault, run)
    assert answer.status_code == 200, answer.text
    assert re.fullmatch(r'attachment; filename="ctxvault-export-\d{8}-\d{6}\.age"', answer.headers["content-disposition"])
    assert answer.content.startswith(AGE_MAGIC) and answer.headers["cache-control"] == "no-store"
    assert staged_files(vault) == []


@pytest.mark.parametrize(
    ("fields", "status", "said"),
    [
        ({"protect": "passphrase", "passphrase": "short"}, 400, "12 characters"),
        ({"protect": "recipient", "recipient": ""}, 400, "age recipient"),
        ({"protect": "recipient", "recipient": "age1nope"}, 400, "not a valid age"),
        ({"protect": "passphrase", "passphrase": SECRET, "max_sensitivity": "extreme"}, 400, "not valid"),
    ],
)
def test_export_refuses_bad_choices_on_the_page(vault: VaultService, fields: dict[str, str], status: int, said: str) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> httpx2.Response:
        page = await client.get(f"{console}/transfer")
        token = hidden_token(page.text, f"{console}/transfer/export")
        return await client.post(f"{console}/transfer/export", data={"token": token, **fields})

    answer = as_owner(vault, run)
    assert answer.status_code == status and said in answer.text and "role=alert" in answer.text
    assert staged_files(vault) == []


def test_export_without_the_forms_token_is_refused(vault: VaultService) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> httpx2.Response:
        return await client.post(f"{console}/transfer/export", data={"token": "forged", "passphrase": SECRET})

    assert as_owner(vault, run).status_code == 403


def test_import_previews_then_imports_the_same_upload_once(vault: VaultService) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, int, httpx2.Response, httpx2.Response, str]:
        sent = await _upload(client, console, JSONL, "memory.jsonl")
        assert sent.status_code == 303, sent.text
        preview = await client.get(sent.headers["location"])
        before = vault.list_items(OWNER).total
        token = hidden_token(preview.text, sent.headers["location"])
        done = await client.post(sent.headers["location"], data={"token": token, "decision": "import"})
        again = await client.post(sent.headers["location"], data={"token": token, "decision": "import"})
        result = await client.get(f"{console}{done.headers['location'].split(console, 1)[-1]}")
        return preview, before, done, again, result.text

    preview, before, done, again, result = as_owner(vault, run)
    assert "Preview (dry run)" in preview.text and "<td>New items</td><td>1" in preview.text and "memory.jsonl" in preview.text
    assert before == 0  # the preview wrote nothing
    assert done.status_code == 303 and done.headers["location"].endswith("/transfer?done=imported")
    assert [i.text for i in vault.list_items(OWNER).items] and "Imported." in result and "What the import did" in result
    assert again.status_code == 404  # decided once
    assert staged_files(vault) == []


def test_cancel_discards_the_upload(vault: VaultService) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> httpx2.Response:
        sent = await _upload(client, console, JSONL, "memory.jsonl")
        assert staged_files(vault)
        preview = await client.get(sent.headers["location"])
        token = hidden_token(preview.text, sent.headers["location"])
        return await client.post(sent.headers["location"], data={"token": token, "decision": "cancel"})

    assert as_owner(vault, run).headers["location"].endswith("?done=cancelled")
    assert staged_files(vault) == [] and vault.list_items(OWNER).total == 0


def test_a_bundle_round_trips_with_its_passphrase_and_a_wrong_one_is_refused(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="Standup is at 10:00", space="work")).item

    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, httpx2.Response]:
        page = await client.get(f"{console}/transfer")
        token = hidden_token(page.text, f"{console}/transfer/export")
        bundle = await client.post(f"{console}/transfer/export", data={"token": token, "protect": "passphrase", "passphrase": SECRET})
        wrong = await _upload(client, console, bundle.content, "export.age", passphrase="not the passphrase")
        right = await _upload(client, console, bundle.content, "export.age", passphrase=SECRET)
        return wrong, await client.get(right.headers["location"])

    wrong, preview = as_owner(vault, run)
    assert wrong.status_code >= 400 and "role=alert" in wrong.text
    assert "<td>Unchanged</td><td>1" in preview.text and "would change nothing" in preview.text
    assert vault.get_item(OWNER, item.id).text == "Standup is at 10:00"


def test_an_upload_past_the_cap_is_refused_and_leaves_no_file(vault: VaultService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "IMPORT_UPLOAD_BYTES", 1024)

    async def run(client: httpx2.AsyncClient, console: str) -> httpx2.Response:
        return await _upload(client, console, b"x" * 4096, "big.jsonl")

    answer = as_owner(vault, run)
    assert answer.status_code == 413 and "larger than" in answer.text
    assert staged_files(vault) == []


def test_an_upload_without_a_session_or_token_is_refused_and_leaves_no_file(vault: VaultService) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, httpx2.Response]:
        forged = await client.post(f"{console}/transfer/import", data={"token": "forged"}, files={"file": ("m.jsonl", JSONL)})
        client.cookies.clear()
        logged_out = await _upload_raw(client, console)
        return forged, logged_out

    forged, logged_out = as_owner(vault, run)
    assert forged.status_code == 403 and logged_out.status_code == 403
    assert staged_files(vault) == []


async def _upload_raw(client: httpx2.AsyncClient, console: str) -> httpx2.Response:
    return await client.post(f"{console}/transfer/import", data={"token": "x"}, files={"file": ("m.jsonl", JSONL)})


def test_not_multipart_and_two_files_are_refused(vault: VaultService) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, httpx2.Response, httpx2.Response]:
        plain = await client.post(f"{console}/transfer/import", data={"token": "x"})
        page = await client.get(f"{console}/transfer")
        token = hidden_token(page.text, f"{console}/transfer/import")
        files = [("file", ("a.jsonl", JSONL)), ("file", ("b.jsonl", JSONL))]
        two = await client.post(f"{console}/transfer/import", data={"token": token}, files=files)
        forged = await client.post(f"{console}/transfer/import", data={"token": "x"}, files=files)
        return plain, two, forged

    plain, two, forged = as_owner(vault, run)
    assert plain.status_code == 400 and "multipart/form-data" in plain.text
    assert two.status_code == 400 and "one file" in two.text
    assert forged.status_code == 403  # the token, sent first, is refused before the first file is read
    assert staged_files(vault) == []


def test_another_session_cannot_see_or_confirm_an_upload(vault: VaultService) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> str:
        sent = await _upload(client, console, JSONL, "memory.jsonl")
        return str(sent.headers["location"]).split(console, 1)[1]

    path = as_owner(vault, run)

    async def other(client: httpx2.AsyncClient, console: str) -> httpx2.Response:
        return await client.get(f"{console}{path}")

    assert as_owner(vault, other).status_code in (303, 404)


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("export.age", ".age"), ("../../etc/passwd", ".upload"), ("C:\\x\\memory.JSONL", ".jsonl"), ("a.sh", ".upload"), ("", ".upload")],
)
def test_staged_names_keep_only_a_known_suffix(name: str, suffix: str) -> None:
    assert staged_suffix(name) == suffix
