"""The door of /mcp over HTTP: the bearer token first, then a capped body, then step-up.

In this order, before the SDK or the core sees the request:

1. A bearer token the vault refuses (unknown, expired, revoked, another audience) is
   audited through the core (``authenticate_bearer``) and left to the SDK's 401, which
   points at the resource metadata; a request without a token gets that 401 unaudited (it
   is how a client discovers where to log in). Nothing of either body is read.
2. The body of an authenticated POST is streamed with a cap (``MAX_BODY_BYTES``): a
   declared or actual size past it is answered 413 without reading the rest.
3. A body that is not JSON, or nests too deep for the parser, is a 400 JSON-RPC parse error.
4. A tools/call for which the app holds no scope at all answers 403 ``insufficient_scope``
   naming the scope (MCP authorization, step-up: the SDK checks one server-wide list only);
   the core audits that denial as it would the same call over stdio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
import pydantic_core
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server.server import VaultAccess
from vault.errors import InvalidToken, VaultError
from vault.principal import Principal
from vault.service import VaultService

T = TypeVar("T")

# The largest JSON-RPC request /mcp reads: a remembered text is a sentence or two, a
# search query at most 2,000 characters; 4 MiB leaves room and bounds memory per request.
MAX_BODY_BYTES = 4 << 20
PARSE_ERROR, INVALID_REQUEST = -32700, -32600


def oauth_token_check(resource: str) -> Callable[[VaultService, str], Principal | None]:
    def check(svc: VaultService, token: str) -> Principal | None:
        try:
            return svc.authenticate_oauth(token, resource)
        except VaultError:
            return None

    return check


def _jsonrpc_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}, status_code=status)


class StepUp:
    """Token, body cap, parse and step-up checks for POST /mcp (see the module docstring)."""

    def __init__(self, app: ASGIApp, access: VaultAccess, resource: str, resource_metadata: str) -> None:
        self.app = app
        self.access = access
        self.resource = resource
        self.resource_metadata = resource_metadata

    async def _read(self, fn: Callable[[VaultService], T]) -> T:
        """Run ``fn`` on a reader (token checks and step-up change no item), off the event loop."""
        return await anyio.to_thread.run_sync(lambda: self.access.read(fn))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != "/mcp":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            await self.app(scope, receive, send)  # the SDK's 401, with the metadata pointer
            return
        token = auth[7:].strip()
        client = (scope.get("client") or ("unknown", 0))[0]
        try:
            principal = await self._read(lambda svc: svc.authenticate_bearer(token, self.resource, str(client)))
        except InvalidToken:
            await self.app(scope, receive, send)  # audited above; the SDK answers 401 without reading the body
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await self._read_capped(headers, receive)
        if body is None:
            await _jsonrpc_error(413, INVALID_REQUEST, f"the request body is larger than {MAX_BODY_BYTES >> 20} MiB")(scope, receive, send)
            return
        try:
            message = pydantic_core.from_json(body)
        except ValueError as exc:
            # Also a nesting past the parser's limit: a clear 400, never a RecursionError.
            await _jsonrpc_error(400, PARSE_ERROR, f"Parse error: {exc}")(scope, receive, send)
            return
        needed = await self._missing(principal, message)
        if needed is not None:
            header = f'Bearer error="insufficient_scope", scope="{needed}", resource_metadata="{self.resource_metadata}"'
            await JSONResponse(
                {"error": "insufficient_scope", "error_description": f"this app holds no {needed} scope; request it", "scope": needed},
                status_code=403,
                headers={"WWW-Authenticate": header},
            )(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _read_capped(headers: dict[str, str], receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it is known to pass ``MAX_BODY_BYTES`` (the rest is never read)."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return None
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return bytes(body)  # the client went away; the app sees the disconnect itself
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                return None
            if not message.get("more_body", False):
                return bytes(body)

    async def _missing(self, principal: Principal, message: object) -> str | None:
        if not isinstance(message, dict) or message.get("method") != "tools/call":
            return None
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        if not isinstance(name, str):
            return None
        return await self._read(lambda svc: svc.step_up(principal, name))
