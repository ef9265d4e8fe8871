"""Many real MCP clients at once over stdio and HTTP, then a bulk import while they search: 0 errors, 0 lost (issue 27).

The driver is bench/load.py (``python -m bench load``): it starts `ctxvault mcp` processes and one
`ctxvault serve` with Streamable HTTP clients of the official SDK, each with its own app token,
writing and searching the same vault at once, then imports while servers answer searches, and
checks as the owner that every acknowledged write is there and found. The default run is short
(small counts); ``-m slow`` is the run whose figures docs/reliability.md gives.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from fastapi import FastAPI
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench import load
from mcp_server.http import create_app
from schemas.items import MemoryIn
from tests.e2e.conftest import serve_in_thread
from vault import OWNER, VaultService

# How long a read may take while the writer is held; a serialised read waits for ever, so any bound
# proves it, and this one leaves room for a machine running four test suites at once.
READ_BOUND_S = 60


def _assert_clean(report: dict[str, Any]) -> None:
    assert report["mixed"]["errors"] == [], report["mixed"]["errors"][:5]
    assert report["import"]["errors"] == [], report["import"]["errors"][:5]
    assert report["import"]["import_exit"] == 0
    assert report["acknowledged"] == sum(s["calls"] for op, s in report["mixed"]["ops"].items() if op.endswith("remember"))
    assert report["lost"] == [] and report["unfound"] == []
    assert report["mixed"]["search_misses"] == []
    assert report["import_whole"] and report["audit_ok"]
    assert report["server_log_problems"] == []
    for surface in ("stdio", "http"):
        assert report["import"]["ops"][f"{surface} search during import"]["calls"] > 0, "a server stopped answering during the import"


def test_concurrent_stdio_and_http_clients_and_an_import_lose_nothing_and_fail_nothing(tmp_path: Path) -> None:
    report = load.run(stdio=4, http=16, seconds=None, ops=3, import_items=300, searchers=4, idle_s=1.0, seed=27, workdir=tmp_path)
    _assert_clean(report)
    assert report["acknowledged"] == (4 + 16) * 3


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_load_long(tmp_path: Path) -> None:
    """LOAD_SECONDS (default 60) of 8 stdio servers and 32 HTTP clients, then an import of LOAD_IMPORT_ITEMS (20,000)."""
    report = load.run(
        stdio=8,
        http=32,
        seconds=float(os.environ.get("LOAD_SECONDS", "60")),
        ops=None,
        import_items=int(os.environ.get("LOAD_IMPORT_ITEMS", "20000")),
        searchers=8,
        idle_s=10.0,
        seed=int(os.environ.get("LOAD_SEED", "27")),
        workdir=tmp_path,
    )
    print(load._table(report))
    print(json.dumps({k: v for k, v in report.items() if k not in ("lost", "unfound")}, indent=1))
    _assert_clean(report)


@pytest.fixture
def served(vault: VaultService) -> Iterator[tuple[str, FastAPI]]:
    """``ctxvault serve``'s app over real HTTP (uvicorn), with its reader connections."""
    apps: list[FastAPI] = []

    def make(url: str) -> FastAPI:
        apps.append(create_app(vault, url))
        return apps[-1]

    for base in serve_in_thread(make):
        yield base, apps[0]


def test_reads_over_http_are_answered_while_a_write_holds_the_writer(served: tuple[str, FastAPI], vault: VaultService) -> None:
    """Token checks, step-up and read tools run on reader connections: none waits for the writer's turn."""
    base, app = served
    item = vault.remember(OWNER, MemoryIn(text="The harbour lantern is made of copper")).item.id
    token = vault.add_app(OWNER, "notes").token
    vault.grant(OWNER, "notes", ["search:memories", "read:memories", "read:preferences"], purpose="test")

    async def reads() -> list[Any]:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=READ_BOUND_S) as http,
            Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
        ):
            with anyio.fail_after(READ_BOUND_S):
                return [
                    await client.call_tool("search_context", {"query": "what is the harbour lantern made of"}),
                    await client.call_tool("get_item", {"item_id": item}),
                    await client.call_tool("get_preferences", {}),
                    await client.call_tool("list_access", {}),
                ]

    anyio.run(reads)  # the first search loads the model and the index, with the writer free
    with app.state.access.lock:  # held as a write in progress holds it (remember embeds and writes under it)
        answered = anyio.run(reads)
    assert [r.is_error for r in answered] == [False] * 4
    hits = answered[0].structured_content["hits"]
    assert hits[0]["item_id"] == item
    assert vault.verify_audit(OWNER).entries > 0
