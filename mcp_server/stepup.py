"""Step-up for MCP over HTTP: 403 ``insufficient_scope`` before the core runs a tools/call.

The SDK checks one server-wide scope list only, so a tools/call for which the app holds
no scope at all is answered here, naming the scope it would need (MCP authorization, step-up).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio.to_thread
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server.server import VaultAccess
from vault.errors import VaultError
from vault.principal import Principal


def oauth_token_check(access: VaultAccess, resource: str) -> Callable[[str], Principal | None]:
    def check(token: str) -> Principal | None:
        try:
            return access.service.authenticate_oauth(token, resource)
        except VaultError:
            return None

    return check


class StepUp:
    """403 ``insufficient_scope`` for a tools/call the caller holds no scope for at all (MCP authorization, step-up)."""

    def __init__(self, app: ASGIApp, access: VaultAccess, identify: Callable[[str], Principal | None], resource_metadata: str) -> None:
        self.app = app
        self.access = access
        self.identify = identify
        self.resource_metadata = resource_metadata

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/mcp":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        needed = await self._missing(scope, body)
        if needed is not None:
            header = f'Bearer error="insufficient_scope", scope="{needed}", resource_metadata="{self.resource_metadata}"'
            await JSONResponse(
                {"error": "insufficient_scope", "error_description": f"this app holds no {needed} scope; request it", "scope": needed},
                status_code=403,
                headers={"WWW-Authenticate": header},
            )(scope, receive, send)
            return
        await self.app(scope, replay, send)

    async def _missing(self, scope: Scope, body: bytes) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        try:
            message = json.loads(body)
        except ValueError:
            return None
        if not isinstance(message, dict) or message.get("method") != "tools/call":
            return None
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        if not isinstance(name, str):
            return None
        token = auth[7:].strip()

        def check() -> str | None:
            with self.access.lock:
                principal = self.identify(token)
                return None if principal is None else self.access.service.scope_needed(principal, name)

        return await anyio.to_thread.run_sync(check)
