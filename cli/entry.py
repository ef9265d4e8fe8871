"""The `ctxvault` console script: `ctxvault mcp` is handed to the unlock agent when one runs.

A host app starts a new `ctxvault mcp` for every session and waits for its first answer.
Importing the CLI, the MCP SDK and the service costs ~1.3 s, so when an unlock agent for
this vault is running (it pre-imported all of that once, see cli/agent.py), this
launcher imports only the standard library and vault.session, passes its stdin, stdout
and stderr, argv, environment and working directory to the agent, and waits for the
exit code of the child that serves them. Anything else, or any failure before the
hand-over, runs the CLI in this process exactly as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from vault import session
from vault.errors import VaultError
from vault.settings import Settings

VALUED_ROOT_OPTIONS = ("--vault", "--passphrase-file")
"""The root options of cli/app.py that take a value (tests/cli/test_entry.py keeps the two in step)."""

AGENT_COMMAND = "mcp"


def invocation(args: Sequence[str]) -> tuple[str | None, Path | None]:
    """The subcommand of a `ctxvault` command line and its ``--vault``, read as click reads them.

    Only the root options are understood; any other option before the subcommand
    (``--help``, a typo) gives no subcommand, so the CLI itself answers it.
    """
    vault: Path | None = None
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, has_value, value = arg.partition("=")
        if name in VALUED_ROOT_OPTIONS:
            if not has_value:
                if not rest:
                    return None, None
                value = rest.pop(0)
            if name == "--vault":
                vault = Path(value)
        elif arg.startswith("-"):
            return None, None
        else:
            return arg, vault
    return None, None


def through_agent(argv: Sequence[str]) -> int | None:
    """Serve ``argv`` in a child of the unlock agent; its exit code, or None to run it here."""
    command, vault = invocation(argv[1:])
    if command != AGENT_COMMAND:
        return None
    try:
        settings = Settings.from_env(home=vault)  # the home cli/context.py would open
        return session.run_in_agent(settings, AGENT_COMMAND, argv, env=os.environ, cwd=os.getcwd())
    except VaultError as exc:
        # Raised only after the hand-over (the session locked under a running server):
        # reported as cli/errors.py reports every VaultError, without loading rich.
        sys.stderr.write(f"error: {exc.message}\n")
        return exc.exit_code
    except Exception:
        # Before the hand-over nothing was lost: the in-process path is always correct.
        return None


def main() -> None:
    try:
        code = through_agent(sys.argv)
    except KeyboardInterrupt:
        sys.exit(130)  # our exit closes the connection, which ends the child
    if code is not None:
        sys.exit(code)
    from cli.app import main as cli_main

    cli_main()
