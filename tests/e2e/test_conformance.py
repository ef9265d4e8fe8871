"""The MCP conformance suite's server scenarios against our MCP app over Streamable HTTP.

The suite cannot send a bearer token, so a test harness builds the app without auth for
one granted app (``create_app(..., harness_principal=…)``, which no CLI command exposes);
auth is tested separately in test_inspector.py and test_oauth.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_server.http import create_app
from schemas.items import MemoryIn
from tests.e2e.conftest import node_env, serve_in_thread
from vault import OWNER, VaultService

# Scenarios that test a server in general rather than the suite's own fixture tools
# (tools-call-image, resources-templates-read and the like need fixtures only the suite's reference server has;
# logging-set-level and completion-complete test capabilities we do not offer: logging is deprecated in 2026-07-28).
SCENARIOS = ["server-initialize", "ping", "tools-list", "tools-call-error", "resources-list", "prompts-list", "dns-rebinding-protection"]


@pytest.fixture
def harness(vault: VaultService) -> Iterator[str]:
    vault.remember(OWNER, MemoryIn(text="I drink my coffee black"))
    vault.add_app(OWNER, "conformance")
    vault.grant(OWNER, "conformance", ["search:*", "read:*"])
    principal = vault.principal_for_app("conformance")
    yield from serve_in_thread(lambda base: create_app(vault, base, harness_principal=principal))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario_passes(conformance: Path, harness: str, scenario: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(conformance), "server", "--url", f"{harness}/mcp", "--scenario", scenario],
        env=node_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
