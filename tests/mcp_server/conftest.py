"""Fixtures for the MCP adapter: a seeded vault and in-memory clients on both protocol eras."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from mcp import Client

from mcp_server.server import VaultAccess, build_server
from schemas.items import MemoryIn
from vault import OWNER, Principal, VaultService

ERAS = ["legacy", "auto"]  # 2025-11-25 initialize handshake; 2026-07-28 stateless (auto picks it in-process)
Connect = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def seeded(vault: VaultService) -> dict[str, str]:
    """A few items in two spaces; returns their ids by name."""
    ids = {
        "coffee": vault.remember(OWNER, MemoryIn(text="I drink my coffee black, no sugar", tags=["food"])).item.id,
        "project": vault.remember(OWNER, MemoryIn(text="The Atlas project ships in March", space="work")).item.id,
        "diet": vault.set_preference(OWNER, "diet", "vegetarian").item.id,
        "tone": vault.set_preference(OWNER, "tone", "concise and direct", space="work").item.id,
    }
    return ids


@pytest.fixture(params=ERAS)
def era(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def connect(vault: VaultService, era: str) -> Connect:
    """Open an in-memory Client to a server that identifies every caller as ``principal``."""

    @asynccontextmanager
    async def open_client(principal: Principal = OWNER, **kwargs: object) -> AsyncIterator[Client]:
        server = build_server(VaultAccess(vault, lambda _: principal))
        # raise_exceptions only on the modern path: a legacy connection never sanitises (SDK testing docs).
        async with Client(server, mode=era, raise_exceptions=era != "legacy", **kwargs) as client:  # type: ignore[arg-type]
            yield client

    return open_client


@pytest.fixture
def app_principal(vault: VaultService) -> Principal:
    """A registered app with no grants, identified by its token as a transport would."""
    created = vault.add_app(OWNER, "tester")
    return vault.authenticate_app(created.token)
