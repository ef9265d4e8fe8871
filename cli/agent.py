"""The unlock agent as `ctxvault unlock` starts it: the core's agent, warmed with `ctxvault mcp`.

The core (vault/session.py) holds the key and knows how to fork a child onto a launcher's
stdio; it must not import adapters. This module is the adapter's half: it names the one
program the agent may start (``mcp``, run through the same `cli.app.main` as an ordinary
`ctxvault mcp`, so identity, token checks, errors and exit codes are the same) and
imports its code once, before the agent reports ready. torch, faiss and onnxruntime stay
out: the server loads them only when a search needs them, and a child that does so
loads them itself (tests/cli/test_entry.py checks the children's memory maps).

    python -m cli.agent   # reads {"home", "key", "timeout_s"} as one JSON line on stdin
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from cli.entry import AGENT_COMMAND, invocation
from vault import session

if TYPE_CHECKING:
    from vault.service import VaultService


def preload() -> None:
    """Do once what every `ctxvault mcp` does before its first answer (~1.3 s, once per unlock).

    Imports (typer, rich, the service, the MCP SDK and its pydantic types), then the click
    command tree, then one throwaway server: its first build fills pydantic's schema
    caches (~40 ms), and its service is never called.
    """
    import anyio._backends._asyncio  # noqa: F401 - anyio.run loads its backend lazily
    import mcp.server.stdio  # noqa: F401

    from cli.app import command
    from mcp_server.server import VaultAccess, build_server
    from vault import OWNER

    command()
    build_server(VaultAccess(cast("VaultService", None), lambda: OWNER))


def run_mcp(argv: Sequence[str]) -> int:
    """`ctxvault mcp …` in a child of the agent; the exit code it would have had in its own process."""
    from cli.app import main

    if invocation(argv[1:])[0] != AGENT_COMMAND:
        sys.stderr.write(f"error: the unlock agent only starts `ctxvault {AGENT_COMMAND}`\n")
        return 2
    try:
        main()
    except SystemExit as exc:
        return _exit_status(exc.code)
    return 0


def _exit_status(code: object) -> int:
    """What the interpreter would exit with for ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def main() -> None:
    session.agent_main(programs={AGENT_COMMAND: run_mcp}, preload=preload)


if __name__ == "__main__":
    main()
