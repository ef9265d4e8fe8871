"""The console in process for fast tests: an httpx client on the ASGI app, logged in as the owner by a one-time link."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2

from mcp_server.http import create_app
from vault import OWNER, VaultService

BASE = "http://127.0.0.1:8765"


def hidden_token(html: str, action: str) -> str:
    """The CSRF token of the form posting to ``action`` on a page."""
    form = re.search(rf'<form method=post action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert form is not None, html
    found = re.search(r'name="token" value="([^"]+)"', form[1])
    assert found is not None
    return found[1]


def as_owner(vault: VaultService, run: Callable[[httpx2.AsyncClient, str], Awaitable[Any]]) -> Any:
    """Run ``run(client, console)`` with ``console`` the logged-in owner's base path (``/o/<key>``)."""
    app = create_app(vault, BASE)

    async def go() -> Any:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE, follow_redirects=False) as client:
            link = vault.owner_login_link(OWNER)
            logged = await client.post("/login/link", data={"link": link})
            assert logged.status_code == 303, logged.text
            return await run(client, logged.headers["location"].rstrip("/"))

    return anyio.run(go)
