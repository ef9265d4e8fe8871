"""The console's Vault pages in process (httpx through Starlette's TestClient against the real app and vault):
CSRF and session checks on every action, the fixed notices, the upload's caps, hostile text made visible."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from html import unescape
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mcp_server.forms import MAX_FORM_BYTES, safe_filename
from mcp_server.http import create_app
from schemas.items import MemoryIn, SearchQuery
from vault import OWNER, VaultService
from vault.settings import Settings

BASE = "http://127.0.0.1:8765"
LIMIT = 32 * 1024
HOSTILE = "ok <script>alert(1)</script> \u202eevil\u202c \x1b[2J\x1b[31mred"


@pytest.fixture
def settings(home: Path) -> Settings:
    """A small document limit, so an oversized upload is cheap to send."""
    return replace(Settings.from_env(), max_document_bytes=LIMIT)


@pytest.fixture
def client(vault: VaultService) -> Iterator[tuple[TestClient, str]]:
    """A client logged in as the owner through the one-time link; yields it and the console's base path."""
    with TestClient(create_app(vault, BASE), base_url=BASE, follow_redirects=False) as http:
        link = vault.owner_login_link(OWNER)
        answer = http.post("/login/link", data={"link": link})
        assert answer.status_code == 303, answer.text
        yield http, answer.headers["location"].rstrip("/")


def token(html: str, action: str) -> str:
    """The token of the form posting to ``action``."""
    form = re.search(rf'<form method=post action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert form is not None, html
    found = re.search(r'name="token" value="([^"]+)"', form[1])
    assert found is not None
    return unescape(found[1])


def remember(vault: VaultService, text: str, **kw: object) -> str:
    return vault.remember(OWNER, MemoryIn(text=text, **kw)).item.id  # type: ignore[arg-type]


def test_adding_a_memory_redirects_to_its_page_with_a_fixed_notice(client: tuple[TestClient, str], vault: VaultService) -> None:
    http, con = client
    page = http.get(f"{con}/vault").text
    answer = http.post(
        f"{con}/vault/add", data={"token": token(page, f"{con}/vault/add"), "text": "I like green tea", "tags": "drinks, tea"}
    )
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert re.fullmatch(rf"{re.escape(con)}/vault/item/[0-9A-Z]+\?done=added", location)
    shown = http.get(location).text
    assert "I like green tea" in shown and "Memory added." in shown and "drinks, tea" in shown
    # The notice comes from a fixed dict: a URL cannot make the page say something else.
    assert "pwned" not in http.get(location.replace("done=added", "done=pwned")).text


def test_every_action_refuses_a_missing_or_foreign_token(client: tuple[TestClient, str], vault: VaultService) -> None:
    http, con = client
    one, other = remember(vault, "first memory"), remember(vault, "second memory")
    page = http.get(f"{con}/vault/item/{one}").text
    forget_one = token(page, f"{con}/vault/item/{one}/forget")
    # A token for one item's form does not work on another item, nor for another action.
    assert http.post(f"{con}/vault/item/{other}/forget", data={"token": forget_one}).status_code == 403
    assert http.post(f"{con}/vault/item/{one}/purge", data={"token": forget_one}).status_code == 403
    for action in ("edit", "restore", "forget", "unforget", "purge"):
        assert http.post(f"{con}/vault/item/{one}/{action}", data={"token": "x"}).status_code == 403
    assert http.post(f"{con}/vault/add", data={"text": "t"}).status_code == 403
    assert http.post(f"{con}/vault/preference", data={"key": "a", "value": "b"}).status_code == 403
    assert vault.get_item(OWNER, one).text == "first memory" and vault.get_item(OWNER, other)


def test_a_logged_out_browser_gets_the_login_form_and_changes_nothing(vault: VaultService, client: tuple[TestClient, str]) -> None:
    _, con = client
    item = remember(vault, "kept memory")
    with TestClient(create_app(vault, BASE), base_url=BASE, follow_redirects=False) as stranger:
        for path in ("vault", f"vault/item/{item}", f"vault/item/{item}/purge"):
            answer = stranger.get(f"{con}/{path}")
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
        assert stranger.post(f"{con}/vault/item/{item}/purge", data={"token": "x"}).status_code == 303
    assert vault.get_item(OWNER, item).text == "kept memory"


def test_hostile_text_is_escaped_and_its_controls_made_visible(client: tuple[TestClient, str], vault: VaultService) -> None:
    http, con = client
    item = remember(vault, HOSTILE, tags=["x"])
    for html in (http.get(f"{con}/vault").text, http.get(f"{con}/vault/item/{item}").text, http.get(f"{con}/vault?q=evil").text):
        assert "<script>alert" not in html and "&lt;script&gt;" in html
        # The edit box holds the text exactly as stored (escaped), so saving it changes nothing; everywhere else it is shown.
        html = re.sub(r"<textarea[^>]*>.*?</textarea>", "", html, flags=re.S)
        assert "\u202e" not in html and "\x1b" not in html
        assert "\\u202e" in html and "\\x1b[2J" in html


def test_edit_keeps_the_old_version_and_restore_brings_it_back(client: tuple[TestClient, str], vault: VaultService) -> None:
    http, con = client
    item = remember(vault, "old words")
    url = f"{con}/vault/item/{item}"
    answer = http.post(f"{url}/edit", data={"token": token(http.get(url).text, f"{url}/edit"), "text": "new words", "space": "work",
                                             "tags": "a b", "sensitivity": "medium"})  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=edited")
    now = vault.get_item(OWNER, item)
    assert (now.text, now.space, now.tags, now.sensitivity) == ("new words", "work", ["a", "b"], "medium")
    page = http.get(url).text
    assert "old words" in page and "Restore version 1" in page
    restored = http.post(f"{url}/restore", data={"token": token(page, f"{url}/restore"), "version": "1"})
    assert restored.headers["location"].endswith("?done=restored")
    assert vault.get_item(OWNER, item).text == "old words"
    bad = http.post(f"{url}/restore", data={"token": token(http.get(url).text, f"{url}/restore"), "version": "99"})
    assert bad.status_code == 404 and "no version 99" in bad.text


def test_forget_unforget_and_purge_with_its_confirmation(client: tuple[TestClient, str], vault: VaultService) -> None:
    http, con = client
    item = remember(vault, "a secret to drop")
    url = f"{con}/vault/item/{item}"
    http.post(f"{url}/forget", data={"token": token(http.get(url).text, f"{url}/forget")})
    assert vault.list_items(OWNER).total == 0
    page = http.get(url).text
    assert "Forgotten" in page and "a secret to drop" in page
    assert "a secret to drop" in http.get(f"{con}/vault").text  # listed under Forgotten
    http.post(f"{url}/unforget", data={"token": token(page, f"{url}/unforget")})
    assert vault.get_item(OWNER, item).text == "a secret to drop"
    assert [h.item_id for h in vault.search(OWNER, _query("secret")).hits] == [item]
    confirm = http.get(f"{url}/purge").text
    assert "This cannot be undone" in confirm and "a secret to drop" in confirm and item in confirm
    gone = http.post(f"{url}/purge", data={"token": token(confirm, f"{url}/purge")})
    assert gone.headers["location"] == f"{con}/vault?done=purged"
    assert http.get(url).status_code == 404
    assert vault.search(OWNER, _query("secret")).hits == []


def _query(text: str) -> SearchQuery:
    return SearchQuery(text=text, mode="lexical")


def _multipart(tok: str, name: str, data: bytes, boundary: str = "b0undary") -> tuple[bytes, dict[str, str]]:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n{tok}\r\n'
    head += f'--{boundary}\r\nContent-Disposition: form-data; name="space"\r\n\r\nwork\r\n'
    head += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: text/plain\r\n\r\n'
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_upload_stores_a_document_under_its_name_and_a_second_upload_replaces_it(
    client: tuple[TestClient, str], vault: VaultService
) -> None:
    http, con = client
    tok = token(http.get(f"{con}/vault").text, f"{con}/vault/upload")
    body, headers = _multipart(tok, "../../notes.md", b"# Garden\nTomatoes need sun.\n")
    answer = http.post(f"{con}/vault/upload", content=body, headers=headers)
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=uploaded"), answer.text
    doc = vault.list_items(OWNER, kinds=["document"]).items
    assert [(d.text, d.space, d.provenance.source) for d in doc] == [("Garden", "work", "document:upload:notes.md")]
    again, headers = _multipart(tok, "notes.md", b"# Garden\nTomatoes need water.\n")
    assert http.post(f"{con}/vault/upload", content=again, headers=headers).headers["location"].endswith("?done=replaced")
    assert vault.list_items(OWNER, kinds=["document"]).total == 1


def test_an_oversized_upload_is_refused_and_nothing_is_stored(client: tuple[TestClient, str], vault: VaultService) -> None:
    http, con = client
    tok = token(http.get(f"{con}/vault").text, f"{con}/vault/upload")
    body, headers = _multipart(tok, "big.txt", b"a" * (LIMIT + 1))
    answer = http.post(f"{con}/vault/upload", content=body, headers=headers)
    assert answer.status_code == 413 and "larger than the limit of 32,768 bytes" in answer.text
    # Declared too large: refused before a byte is read.
    lying = http.post(f"{con}/vault/upload", content=b"x", headers={**headers, "content-length": str(LIMIT + MAX_FORM_BYTES + 1)})
    assert lying.status_code == 413
    assert vault.list_items(OWNER).total == 0
    wrong = http.post(f"{con}/vault/upload", data={"token": tok})
    assert wrong.status_code == 400 and "multipart/form-data" in wrong.text
    assert http.post(f"{con}/vault/upload", content=_multipart("bad", "a.txt", b"hi")[0], headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\x\\notes.md", "notes.md"),
        ("a<b>.txt", "a_b_.txt"),
        ("...", "upload"),
        ("\u202etxt.md", "_txt.md"),
    ],
)
def test_an_uploaded_name_keeps_only_its_last_segment_in_harmless_characters(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe


def test_filters_narrow_the_list_and_bad_values_are_an_alert(client: tuple[TestClient, str], vault: VaultService) -> None:
    http, con = client
    remember(vault, "work plan", space="work", tags=["plan"])
    remember(vault, "health note", space="health", sensitivity="high")
    vault.set_preference(OWNER, "diet", "vegetarian")
    page = http.get(f"{con}/vault?space=work").text
    assert "work plan" in page and "health note" not in page
    page = http.get(f"{con}/vault?kind=preference").text
    assert "diet: vegetarian" in page and "work plan" not in page
    page = http.get(f"{con}/vault?sensitivity=medium").text
    assert "health note" not in page and "work plan" in page
    page = http.get(f"{con}/vault?tag=plan").text
    assert "work plan" in page and "health note" not in page
    odd = http.get(f"{con}/vault?kind=zzz&since=yesterday&page=-3")
    assert odd.status_code == 200 and "role=alert" in odd.text
