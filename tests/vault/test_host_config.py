"""The host config ``ctxvault connect`` writes and the Apps page shows: one rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vault.errors import InvalidInput
from vault.host_config import Host, render_config


def test_a_user_level_config_carries_the_token_and_a_project_file_never_does() -> None:
    desktop = json.loads(render_config(Host.claude_desktop, "claude", Path("/v"), "cvt_x"))["mcpServers"]["ctxvault"]
    assert desktop["args"] == ["mcp", "--app", "claude"] and desktop["env"] == {"CTXVAULT_HOME": "/v", "CTXVAULT_APP_TOKEN": "cvt_x"}
    for host in (Host.vscode, Host.claude_code):
        text = render_config(host, "claude", Path("/v"), "cvt_x")
        assert "cvt_x" not in text
    assert json.loads(render_config(Host.vscode, "c", Path("/v"), None))["servers"]["ctxvault"]["type"] == "stdio"


def test_the_config_is_merged_into_what_the_file_holds() -> None:
    existing: dict[str, object] = {"mcpServers": {"other": {"command": "x"}}, "theme": "dark"}
    merged = json.loads(render_config(Host.cursor, "c", Path("/v"), None, existing))
    assert merged["theme"] == "dark" and set(merged["mcpServers"]) == {"other", "ctxvault"}
    with pytest.raises(InvalidInput):
        render_config(Host.cursor, "c", Path("/v"), None, {"mcpServers": "not an object"})
