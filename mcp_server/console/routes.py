"""Install the console on the vault's FastAPI app: static files, login, decisions, one module per page."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from mcp_server.console import activity, apps, decide, inbox, login, status, transfer, vaultview
from mcp_server.console.context import Call, Console, Cookies
from mcp_server.console.html import STATIC_FILES, STATIC_PREFIX, static_file
from mcp_server.server import VaultAccess
from vault.owner_sessions import OwnerSessions

PAGES = (login, decide, inbox, apps, activity, vaultview, transfer, status)


def install(app: FastAPI, access: VaultAccess, issuer: str, sessions: OwnerSessions, cookies: Cookies, call: Call) -> Console:
    """Add every console route to ``app`` (before the /mcp mount); returns the shared parts."""
    console = Console(access, issuer, sessions, cookies, call)

    @app.get(STATIC_PREFIX + "{name}")
    async def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return Response("not found", status_code=404, media_type="text/plain")
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        return Response(static_file(name), media_type=STATIC_FILES[name], headers=headers)

    for module in PAGES:
        module.install(app, console)
    return console
