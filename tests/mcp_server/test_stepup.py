"""The /mcp door over HTTP, in process: denials audited, bodies capped before they are read (issue 23 §3, issue 29).

Real-server counterparts (uvicorn on a socket) are in tests/security/test_http_limits.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx2
from typer.testing import CliRunner

from cli.app import app as cli_app
from mcp_server.http import create_app
from mcp_server.stepup import MAX_BODY_BYTES
from tests.conftest import PASSPHRASE
from vault import OWNER, VaultService
from vault.oauth import s256

BASE = "http://127.0.0.1:8765"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
SEARCH = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_context", "arguments": {"query": "tea"}}}
CHUNK = 64 * 1024


def over_http(vault: VaultService, run: Callable[[httpx2.AsyncClient], Awaitable[Any]]) -> Any:
    app = create_app(vault, BASE)

    async def go() -> Any:
        # A mounted app's lifespan never runs: /mcp needs its session manager started by hand.
        async with (
            app.state.mcp_server.session_manager.run(),
            httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as client,
        ):
            return await run(client)

    return anyio.run(go)


def bearer(token: str) -> dict[str, str]:
    return {**ACCEPT, "Authorization": f"Bearer {token}"}


def test_a_step_up_refusal_is_audited_and_the_chain_verifies(vault: VaultService, monkeypatch: Any) -> None:
    token = vault.add_app(OWNER, "cursor").token

    async def call(client: httpx2.AsyncClient) -> httpx2.Response:
        return await client.post("/mcp", json=SEARCH, headers=bearer(token))

    answer = over_http(vault, call)
    assert answer.status_code == 403 and 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    denials = vault.audit_entries(OWNER, app="cursor", event="deny")
    assert [(d.scope, d.detail["what"]) for d in denials] == [("search:*", "search_context (HTTP step-up)")]
    vault.verify_audit(OWNER)
    vault.close()
    monkeypatch.setenv("CTXVAULT_PASSPHRASE", PASSPHRASE)
    shown = CliRunner().invoke(cli_app, ["audit", "--app", "cursor", "--event", "deny", "--json"], catch_exceptions=False)
    assert [e["detail"]["what"] for e in json.loads(shown.stdout)] == ["search_context (HTTP step-up)"]
    assert CliRunner().invoke(cli_app, ["audit", "verify"], catch_exceptions=False).exit_code == 0


def test_refused_tokens_are_audited_per_client_with_their_count(vault: VaultService) -> None:
    async def guesses(client: httpx2.AsyncClient) -> list[int]:
        return [(await client.post("/mcp", json=SEARCH, headers=bearer(f"cvt_guess{n}"))).status_code for n in range(7)]

    assert over_http(vault, guesses) == [401] * 7
    denials = [e for e in vault.audit_entries(OWNER, event="deny") if e.detail.get("via") == "http"]
    # One entry at once, the rest of the burst counted in one more: none dropped, no flood.
    assert [e.detail["count"] for e in denials] == [1, 6]
    assert {e.principal for e in denials} == {"unknown"} and {e.detail["client"] for e in denials} == {"127.0.0.1"}
    vault.verify_audit(OWNER)


def test_a_removed_apps_oauth_token_is_refused_and_filed_under_that_app(vault: VaultService) -> None:
    client = vault.oauth_register("Inspector", ["http://127.0.0.1:9999/cb"])
    verifier = "v" * 43
    approved = vault.oauth_approve(
        OWNER, client.client_id, ["search:memories"], redirect_uri="http://127.0.0.1:9999/cb", code_challenge=s256(verifier),
        resource=f"{BASE}/mcp",
    )  # fmt: skip
    tokens = vault.oauth_exchange(client.client_id, approved.code, "http://127.0.0.1:9999/cb", verifier, f"{BASE}/mcp")
    app_name = vault.show_app(OWNER, approved.app_id).app
    assert app_name is not None
    vault.remove_app(OWNER, app_name.name)

    async def call(c: httpx2.AsyncClient) -> httpx2.Response:
        return await c.post("/mcp", json=SEARCH, headers=bearer(tokens.access_token))

    assert over_http(vault, call).status_code == 401
    denials = vault.audit_entries(OWNER, app=approved.app_id, event="deny")
    assert [(d.principal, d.detail["count"]) for d in denials] == [(f"app:{approved.app_id}", 1)]


class CountingBody:
    """A request body of ``total`` bytes made on demand; counts how much the server pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += CHUNK
            yield b" " * CHUNK


def test_a_huge_body_is_refused_without_being_read(vault: VaultService) -> None:
    token = vault.add_app(OWNER, "cursor").token
    bodies = {name: CountingBody(500 << 20) for name in ("chunked", "declared", "no_token", "bad_token")}

    async def posts(client: httpx2.AsyncClient) -> dict[str, int]:
        declared = {"Content-Length": str(500 << 20)}
        return {
            "chunked": (await client.post("/mcp", content=bodies["chunked"], headers=bearer(token))).status_code,
            "declared": (await client.post("/mcp", content=bodies["declared"], headers={**bearer(token), **declared})).status_code,
            "no_token": (await client.post("/mcp", content=bodies["no_token"], headers=ACCEPT)).status_code,
            "bad_token": (await client.post("/mcp", content=bodies["bad_token"], headers=bearer("cvt_nope"))).status_code,
        }

    assert over_http(vault, posts) == {"chunked": 413, "declared": 413, "no_token": 401, "bad_token": 401}
    # The server pulled at most the cap (plus one chunk) of a chunked body, and nothing of the others.
    assert bodies["chunked"].sent <= MAX_BODY_BYTES + CHUNK
    assert {name: b.sent for name, b in bodies.items() if name != "chunked"} == {"declared": 0, "no_token": 0, "bad_token": 0}


def test_a_body_just_under_the_cap_is_still_served(vault: VaultService) -> None:
    token = vault.add_app(OWNER, "cursor").token
    client_info = {"name": "x" * (MAX_BODY_BYTES - 300), "version": "1"}
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client_info}
    padded = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
    assert MAX_BODY_BYTES - 400 < len(padded) <= MAX_BODY_BYTES

    async def initialize(client: httpx2.AsyncClient) -> httpx2.Response:
        return await client.post("/mcp", content=padded, headers=bearer(token))

    answer = over_http(vault, initialize)
    assert answer.status_code == 200, answer.text[:300]


def test_deep_nesting_is_a_json_rpc_parse_error_not_a_500(vault: VaultService) -> None:
    token = vault.add_app(OWNER, "cursor").token
    deep = '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_context", "arguments": {"q": '
    deep += "[" * 100_000 + "]" * 100_000 + "}}}"

    async def call(client: httpx2.AsyncClient) -> httpx2.Response:
        return await client.post("/mcp", content=deep, headers=bearer(token))

    answer = over_http(vault, call)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32700
