"""Status in process: the search index state, and Lock now (every owner session ends; a forged post does nothing)."""

from __future__ import annotations

import httpx2
import pytest

from tests.mcp_server.console_client import as_owner, hidden_token
from vault import OWNER, VaultService
from vault.errors import InvalidToken


def test_status_shows_the_index_and_the_lock_button(vault: VaultService) -> None:
    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, str]:
        return await client.get(f"{console}/status"), console

    page, console = as_owner(vault, run)
    assert "Search index" in page.text and "Searchable units" in page.text and "Vector index" in page.text
    assert f'action="{console}/status/lock"' in page.text


def test_lock_now_ends_every_owner_session_and_unused_links(vault: VaultService) -> None:
    link = vault.owner_login_link(OWNER)

    async def run(client: httpx2.AsyncClient, console: str) -> tuple[httpx2.Response, httpx2.Response, httpx2.Response]:
        page = await client.get(f"{console}/status")
        forged = await client.post(f"{console}/status/lock", data={"token": "forged"})
        locked = await client.post(f"{console}/status/lock", data={"token": hidden_token(page.text, f"{console}/status/lock")})
        return forged, locked, await client.get(f"{console}/status")

    forged, locked, after = as_owner(vault, run)
    assert forged.status_code == 403
    assert locked.status_code == 200 and "Every owner session has ended" in locked.text
    assert "cv_session=" in locked.headers["set-cookie"] and "Max-Age=0" in locked.headers["set-cookie"]
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
    with pytest.raises(InvalidToken):
        vault.redeem_owner_login(link)  # minted before Lock now
