"""An app talking to the served vault the way a real one does: the mcp Client over Streamable HTTP with its bearer token."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult


async def _call(base: str, token: str, name: str, args: dict[str, Any]) -> CallToolResult:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        return await client.call_tool(name, args)


def call(base: str, token: str, name: str, **args: Any) -> CallToolResult:
    """One tool call by the app holding ``token`` (a fresh connection: what it may do is looked up afresh).

    Run in its own thread: Playwright's sync API keeps an event loop running in the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(anyio.run, _call, base, token, name, args).result(timeout=60)
        except BaseExceptionGroup as group:
            # The client's task group wraps the server's refusal (e.g. 403 insufficient_scope): raise that.
            refused = group.subgroup(MCPError)
            if refused is None:
                raise
            found: BaseException = refused
            while isinstance(found, BaseExceptionGroup):
                found = found.exceptions[0]
            raise found from group


def scopes_now(base: str, token: str) -> list[str]:
    """The scopes the app holds right now, as ``list_access`` answers it."""
    result = call(base, token, "list_access")
    assert not result.is_error, result
    assert isinstance(result.structured_content, dict)
    scopes: list[str] = result.structured_content["scopes"]
    return scopes


def can_read(base: str, token: str, item_id: str) -> bool:
    """Whether the app may read ``item_id`` now (refused by the step-up check, or answered as not found: no)."""
    try:
        result = call(base, token, "get_item", item_id=item_id)
    except MCPError:
        return False
    return not result.is_error
