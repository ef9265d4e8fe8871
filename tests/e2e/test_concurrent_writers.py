"""Two host apps, each with its own `ctxvault mcp` process, write at once and lose nothing."""

from __future__ import annotations

import os
import sys

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import PASSPHRASE
from tests.e2e.conftest import CTXVAULT, ROOT
from vault import OWNER, Settings, VaultService, open_vault

WRITES_PER_APP = 12


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tokens(vault: VaultService) -> dict[str, str]:
    out = {}
    for name in ("writer-a", "writer-b"):
        out[name] = vault.add_app(OWNER, name).token
        vault.grant(OWNER, name, ["write:memories", "read:memories"])
    vault.close()
    return out


@pytest.mark.anyio
async def test_two_mcp_processes_writing_at_once_lose_no_write(tokens: dict[str, str], settings: Settings) -> None:
    results: dict[str, list[str]] = {name: [] for name in tokens}

    async def host(name: str) -> None:
        # Exact duplicates are merged by content hash; near-duplicate merging is off so every write must land.
        env = {**os.environ, "CTXVAULT_PASSPHRASE": PASSPHRASE, "CTXVAULT_APP_TOKEN": tokens[name], "CTXVAULT_DEDUP_THRESHOLD": "1.01"}
        params = StdioServerParameters(command=sys.executable, args=[*CTXVAULT[1:], "mcp", "--app", name], env=env, cwd=str(ROOT))
        async with Client(params) as client, anyio.create_task_group() as tg:
            for i in range(WRITES_PER_APP):

                async def write(i: int = i) -> None:
                    result = await client.call_tool("remember", {"text": f"{name} wrote fact {i} at step {i * 7 + 3}"})
                    assert not result.is_error, result.content
                    assert result.structured_content is not None
                    results[name].append(result.structured_content["item"]["id"])

                tg.start_soon(write)

    with anyio.fail_after(300):
        async with anyio.create_task_group() as tg:
            for name in tokens:
                tg.start_soon(host, name)

    ids = {i for name in tokens for i in results[name]}
    assert len(ids) == 2 * WRITES_PER_APP
    with open_vault(settings, PASSPHRASE) as svc:
        page = svc.list_items(OWNER, kinds=["memory"], limit=500)
    assert {i.id for i in page.items} == ids
    writers = {i.provenance.created_by for i in page.items}
    assert len(writers) == 2 and all(w.startswith("app:") for w in writers)
