"""The MCP Inspector CLI drives `ctxvault mcp` (stdio) and `ctxvault serve` (HTTP, bearer token).

Journey: list tools, denied before consent, results after the owner approves, nothing after revoke.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from schemas.items import MemoryIn
from tests.conftest import PASSPHRASE
from tests.e2e.conftest import CTXVAULT, Inspector
from vault import OWNER, Settings, VaultService, open_vault

EXPECTED_TOOLS = {"search_context", "get_item", "get_preferences", "remember", "forget", "list_access", "request_access"}


@pytest.fixture
def app_token(vault: VaultService) -> str:
    vault.remember(OWNER, MemoryIn(text="I drink my coffee black, no sugar"))
    token = vault.add_app(OWNER, "inspector").token
    vault.close()  # the server process opens the vault itself
    return token


def owner_service(settings: Settings) -> VaultService:
    return open_vault(settings, PASSPHRASE)


def journey(inspector: Inspector, target: list[str], settings: Settings, *, step_up: bool = False) -> None:
    """Over HTTP a tool the app holds no scope for is refused with 403 insufficient_scope (step-up);
    over stdio it is a tool error naming request_access."""
    denied_exit, denied_marker = (1, "Insufficient scope") if step_up else (5, "request_access")
    tools = inspector(target, "--method", "tools/list")
    assert {t["name"] for t in tools["tools"]} >= EXPECTED_TOOLS  # type: ignore[attr-defined]

    def search(exit_code: int = 0) -> dict[str, object]:
        args = ("--method", "tools/call", "--tool-name", "search_context", "--tool-arg", "query=coffee")
        return inspector(target, *args, exit_code=exit_code)

    denied = search(exit_code=denied_exit)
    assert denied_marker in json.dumps(denied)
    asked = inspector(
        target, "--method", "tools/call", "--tool-name", "request_access",
        "--tool-arg", 'scopes=["search:memories"]', "--tool-arg", "purpose=answer about my habits",
    )  # fmt: skip
    request_id = asked["structuredContent"]["request"]["id"]  # type: ignore[index]
    with owner_service(settings) as svc:
        grant = svc.approve_consent(OWNER, request_id)
    allowed = search()
    assert not allowed.get("isError") and "coffee black" in json.dumps(allowed["structuredContent"])
    with owner_service(settings) as svc:
        svc.revoke(OWNER, grant.id)
    after = search(exit_code=denied_exit)
    assert denied_marker in json.dumps(after) and "coffee black" not in json.dumps(after)


def test_inspector_over_stdio_sees_nothing_before_consent_and_nothing_after_revoke(
    inspector: Inspector, app_token: str, settings: Settings, home: Path
) -> None:
    env = [f"CTXVAULT_HOME={home}", f"CTXVAULT_PASSPHRASE={PASSPHRASE}", f"CTXVAULT_APP_TOKEN={app_token}", "HF_HUB_OFFLINE=1"]
    env += [f"CTXVAULT_KDF_{k}={v}" for k, v in (("MEMORY_KIB", "8192"), ("ITERATIONS", "1"), ("LANES", "1"))]
    target = [a for pair in (("-e", e) for e in env) for a in pair] + ["--", *CTXVAULT, "mcp", "--app", "inspector"]
    journey(inspector, target, settings)


def test_inspector_over_http_with_a_bearer_token_follows_the_same_journey(
    inspector: Inspector, app_token: str, settings: Settings, served: str
) -> None:
    target = [f"{served}/mcp", "--transport", "http", "--header", f"Authorization: Bearer {app_token}"]
    journey(inspector, target, settings, step_up=True)


def test_http_without_a_token_is_refused_with_a_pointer_to_the_metadata(app_token: str, served: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    request = urllib.request.Request(f"{served}/mcp", data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    refused.value.close()
    assert refused.value.code == 401
    assert f'resource_metadata="{served}/.well-known/oauth-protected-resource/mcp"' in refused.value.headers["www-authenticate"]
