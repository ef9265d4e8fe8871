"""HTTP: every route refuses a foreign Host (421) and a foreign Origin (403); tokens only in headers (BRIEF §4).

tests/e2e/test_conformance.py runs the conformance suite's DNS-rebinding scenario against
`/mcp` only; here the vault's own pages (OAuth metadata, authorize, consent) too, in process.
"""

from __future__ import annotations

import anyio
import httpx2

from mcp_server.http import create_app
from vault import OWNER, VaultService

BASE = "http://127.0.0.1:8765"
ROUTES = ["/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource/mcp", "/authorize", "/consent/abc", "/mcp"]
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def statuses(vault: VaultService, headers: dict[str, str]) -> dict[str, int]:
    app = create_app(vault, BASE)

    async def get_all() -> dict[str, int]:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as client:
            return {route: (await client.get(route, headers=headers)).status_code for route in ROUTES}

    return anyio.run(get_all)


def test_a_foreign_host_is_refused_on_every_route(vault: VaultService) -> None:
    assert statuses(vault, {"Host": "rebound.example:8765"}) == dict.fromkeys(ROUTES, 421)


def test_a_foreign_origin_is_refused_on_every_route(vault: VaultService) -> None:
    assert statuses(vault, {"Origin": "http://rebound.example"}) == dict.fromkeys(ROUTES, 403)


def test_the_vaults_own_host_and_origin_are_served(vault: VaultService) -> None:
    # A test of the test: the refusals above come from the Host and Origin checks.
    served = statuses(vault, {"Origin": BASE})
    assert not {421, 403} & set(served.values())


def test_a_token_in_the_url_is_not_accepted(vault: VaultService) -> None:
    token = vault.add_app(OWNER, "cursor").token
    app = create_app(vault, BASE)

    async def pings() -> tuple[int, int]:
        # A mounted app's lifespan never runs: /mcp needs its session manager started by hand.
        async with (
            app.state.mcp_server.session_manager.run(),
            httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as c,
        ):
            in_url = await c.post(f"/mcp?access_token={token}", json=PING, headers=ACCEPT)
            in_header = await c.post("/mcp", json=PING, headers={**ACCEPT, "Authorization": f"Bearer {token}"})
            return in_url.status_code, in_header.status_code

    in_url, in_header = anyio.run(pings)
    assert in_url == 401
    assert in_header != 401  # a test of the test: the same token in its header passes authentication
