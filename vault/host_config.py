"""The MCP config a host app reads to launch ``ctxvault mcp`` for one app: one rendering for every surface.

``ctxvault connect`` writes it into the host's file; the console's Apps page shows the same text.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import assert_never

from vault.errors import InvalidInput

SERVER_NAME = "ctxvault"


class Host(StrEnum):
    claude_desktop = "claude-desktop"
    cursor = "cursor"
    vscode = "vscode"
    claude_code = "claude-code"


def host_config_path(host: Host) -> Path:
    """Where each host app reads its MCP servers (user-level, or the project for VS Code and Claude Code)."""
    home = Path.home()
    match host:
        case Host.claude_desktop:
            if sys.platform == "darwin":
                return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
            if sys.platform == "win32":
                return Path(os.environ.get("APPDATA", home)) / "Claude" / "claude_desktop_config.json"
            return Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "Claude" / "claude_desktop_config.json"
        case Host.cursor:
            return home / ".cursor" / "mcp.json"
        case Host.vscode:
            return Path.cwd() / ".vscode" / "mcp.json"
        case Host.claude_code:
            return Path.cwd() / ".mcp.json"
        case _:
            assert_never(host)


def project_file(host: Host) -> bool:
    """Whether the host reads a file inside the project (which may be committed: no token goes there)."""
    return host in (Host.vscode, Host.claude_code)


def ctxvault_command() -> str:
    found = shutil.which("ctxvault") or str(Path(sys.executable).with_name("ctxvault"))
    return str(Path(found).resolve())


def server_entry(host: Host, app: str, home: Path, token: str | None) -> dict[str, object]:
    """The host's entry for one app; ``token`` is left out for a project file."""
    token = None if project_file(host) else token
    env = {"CTXVAULT_HOME": str(home)} | ({"CTXVAULT_APP_TOKEN": token} if token else {})
    entry: dict[str, object] = {"command": ctxvault_command(), "args": ["mcp", "--app", app], "env": env}
    return {"type": "stdio", **entry} if host is Host.vscode else entry


def merge_config(host: Host, existing: dict[str, object], name: str, entry: dict[str, object]) -> dict[str, object]:
    """``existing`` (a host's config) with ``entry`` under ``name``.

    Raises:
        InvalidInput: the config's server table is not an object.
    """
    key = "servers" if host is Host.vscode else "mcpServers"
    servers = existing.get(key) or {}
    if not isinstance(servers, dict):
        raise InvalidInput(f"the config's {key!r} is not an object; fix it by hand first")
    return {**existing, key: {**servers, name: entry}}


def render_config(host: Host, app: str, home: Path, token: str | None, existing: dict[str, object] | None = None) -> str:
    """The config text ``ctxvault connect`` writes (merged into ``existing``, the file's current JSON)."""
    merged = merge_config(host, existing or {}, SERVER_NAME, server_entry(host, app, home, token))
    return json.dumps(merged, indent=2) + "\n"
