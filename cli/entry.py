"""The `ctxvault` console script: with an unlock session running, commands run in the warm agent.

Importing the CLI and the service costs ~1.3 s and an Argon2id unlock ~0.5 s more, on
every command. When an unlock agent for this vault is running (it pre-imported all of
that once and holds the key, see cli/agent.py), this launcher imports only the standard
library and vault/agent_client.py, passes its stdin, stdout and stderr (the descriptors
themselves, so bytes, terminal width and colour detection are exactly its own), argv,
environment, umask and working directory to the agent, and exits with the code of the
child that ran the command. ``ctxvault mcp`` goes to the agent's ``mcp`` program, every
other command to its ``cli`` program, except the ones in ``IN_PROCESS``. Without an
agent, or on any failure before the hand-over, the CLI runs in this process exactly as
before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from vault import agent_client
from vault.errors import VaultError

VALUED_ROOT_OPTIONS = ("--vault", "--passphrase-file")
"""The root options of cli/app.py that take a value (tests/cli/test_entry.py keeps the two in step)."""

AGENT_COMMAND = "mcp"
"""The one command served by the agent's ``mcp`` program (the stdio server a host app launches)."""

CLI_PROGRAM = "cli"
"""The agent's program that runs every other forwarded command."""

IN_PROCESS = frozenset({"init", "unlock", "lock", "passwd", "recover", "purge", "serve", "ui"})
"""Commands that never run in the agent, and why (docs/architecture.md lists them too):

- init, passwd, recover: they ask for or change the passphrase itself; a hidden prompt
  needs the launcher's controlling terminal, which the agent's child does not have.
- unlock, lock: they start and end the agent.
- purge: without --yes it asks for confirmation on the terminal; it is rare and slow anyway.
- serve: a long-running HTTP server owns its own process, port and lifetime.
- ui: it may open the owner's browser, which belongs to the launcher's desktop session; it
  already takes the key from the session, so it pays no KDF.
"""


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


class _Home(NamedTuple):
    home: Path


def program_for(command: str | None) -> str | None:
    """The agent program that runs ``command``, or None when it runs in this process."""
    if command is None or command in IN_PROCESS:
        return None
    return AGENT_COMMAND if command == AGENT_COMMAND else CLI_PROGRAM


def through_agent(argv: Sequence[str]) -> int | None:
    """Run ``argv`` in a child of the unlock agent; its exit code, or None to run it here."""
    command, vault = invocation(argv[1:])
    program = program_for(command)
    if program is None:
        return None
    try:
        home = agent_client.vault_home(os.environ, vault)  # the home cli/context.py would open
        return agent_client.run_in_agent(_Home(home), program, argv, env=os.environ, cwd=os.getcwd())
    except VaultError as exc:
        # Raised only after the hand-over (the session locked under a running command):
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
