"""The unlock agent as `ctxvault unlock` starts it: the core's agent, warmed with the whole CLI.

The core (vault/session.py) holds the key and knows how to fork a child onto a launcher's
stdio; it must not import adapters. This module is the adapter's half: it names the
programs the agent may start and imports their code once, before the agent reports ready:

- ``mcp`` runs `ctxvault mcp` (the stdio server a host app launches);
- ``cli`` runs any other command but those cli/entry.py keeps in-process (``IN_PROCESS``);
- its background worker embeds the backlog (vault/backlog.py), pausing while a ``cli`` child runs;
- its refresh keeps the sealed vector index loaded and in step (vault/sealed_index.py), so a child's
  `search` or `add` takes it from the agent's memory instead of loading and decrypting it.

Both run the same `cli.app.main` as an ordinary `ctxvault`, so parsing, errors, output
and exit codes are the same; the child opens the vault with the session's key
(cli/context.py), so it pays no Argon2id. The query encoder (ONNX, one thread) and faiss
are loaded here too, so a `search` or an `add` (dedup) does not load them; torch stays
out (its thread pools are not safe to fork, and its import costs ~4 s).

    python -m cli.agent   # reads {"home", "key", "timeout_s"} as one JSON line on stdin
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cli.entry import AGENT_COMMAND, CLI_PROGRAM, IN_PROCESS, invocation
from vault import session

if TYPE_CHECKING:
    from vault.crypto import DataKey
    from vault.service import VaultService
    from vault.settings import Settings

_CONSOLES: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
"""Every rich Console built while the CLI was imported, with its arguments (see ``fresh_consoles``)."""


def preload() -> None:
    """Do once what every command does before its first answer (~1.3 s, once per unlock).

    Imports (typer, rich, the service, the MCP SDK and its pydantic types), then the click
    command tree, then one throwaway server: its first build fills pydantic's schema
    caches (~40 ms), and its service is never called. Then one table rendered (rich's
    first render costs ~60 ms more than the next), and the search stack if it can load
    without torch.
    """
    import anyio._backends._asyncio  # noqa: F401 - anyio.run loads its backend lazily
    import mcp.server.stdio  # noqa: F401
    from rich.console import Console

    built = Console.__init__

    def recording(self: Console, *args: Any, **kwargs: Any) -> None:
        _CONSOLES.append((self, args, kwargs))
        built(self, *args, **kwargs)

    Console.__init__ = recording  # type: ignore[method-assign] # undone below, before any child exists
    try:
        from cli.app import command
        from mcp_server.server import VaultAccess, build_server
    finally:
        Console.__init__ = built  # type: ignore[method-assign]
    from vault import OWNER

    command()
    build_server(VaultAccess(cast("VaultService", None), lambda _: OWNER))
    warm_rendering()
    with contextlib.suppress(Exception):  # a child that searches then loads what it needs itself
        warm_search()


def warm_rendering() -> None:
    """Render one table as `ctxvault list` does, into nothing: rich loads and compiles what it needs on first use."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="warm-up")
    for col in ("id", "kind", "space", "text", "tags", "sens."):
        table.add_column(col, overflow="fold")
    table.add_row("01M8XREM98ZZW88MF8AWWFRFT8", "memory", "personal", "A sentence, with punctuation — and ünïcode…", "a,b", "low")
    Console(file=io.StringIO(), width=80).print(table)


def warm_search() -> None:
    """Load faiss and the query encoder of the agent's vault, as a search would: only the ONNX backend.

    torch would be loaded for a model with no ONNX export: then nothing is loaded here.
    The tokenizer runs without its thread pool here, so a forked child starts with none.
    """
    from vault.embed import load_embedder, onnx_file
    from vault.index import VectorIndex
    from vault.pref_match import task_bank
    from vault.settings import Settings

    settings = Settings.from_env()
    if os.environ.get("CTXVAULT_EMBED_BACKEND", "auto") not in ("auto", "onnx") or not onnx_file(settings.model).exists():
        return
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    VectorIndex(1, settings.ann_threshold)  # imports faiss and sets its one search thread
    embedder = load_embedder(settings)
    embedder.encode_query("warm up")
    task_bank(embedder)  # the generic tasks a preference ranking compares with (vault/pref_match.py)


def fresh_consoles() -> None:
    """Build the CLI's rich consoles again, as their modules did, for this child's terminal and environment.

    A Console reads its colour system, COLUMNS, NO_COLOR and FORCE_COLOR when it is built:
    built in the agent, whose stdio is /dev/null, it would print plain text to a terminal.
    """
    for console, args, kwargs in _CONSOLES:
        console.__init__(*args, **kwargs)


def run(argv: Sequence[str], commands: Callable[[str | None], bool]) -> int:
    """Run the CLI on ``argv`` in a child of the agent; the exit code it would have had in its own process."""
    from cli.app import main

    if not commands(invocation(argv[1:])[0]):
        sys.stderr.write("error: the unlock agent does not run this command\n")
        return 2
    fresh_consoles()
    # click names the program after argv[0] unless __main__ is a package's module, as the
    # agent's (`python -m cli.agent`) is: the child runs the launcher's script, not that.
    sys.modules["__main__"].__package__ = None
    try:
        main()
    except SystemExit as exc:
        return _exit_status(exc.code)
    return 0


def run_mcp(argv: Sequence[str]) -> int:
    """`ctxvault mcp …`, as its own process would run it."""
    return run(argv, lambda command: command == AGENT_COMMAND)


def run_cli(argv: Sequence[str], in_process: Collection[str] = IN_PROCESS) -> int:
    """Any other forwarded command (cli/entry.py decides which), as its own process would run it."""
    return run(argv, lambda command: command is not None and command != AGENT_COMMAND and command not in in_process)


def _exit_status(code: object) -> int:
    """What the interpreter would exit with for ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def embed_backlog(settings: Settings, key: DataKey, paused: Callable[[], bool]) -> None:
    """The agent's background worker: embed the units lacking a vector, yielding to every CLI command."""
    from vault import backlog

    backlog.embed(settings, key, paused)


def warm_index(settings: Settings, key: DataKey) -> None:
    """The agent's refresh: the vault's sealed index, loaded once and kept in step with its files (only if faiss was preloaded)."""
    if "faiss" not in sys.modules:
        return  # warm_search found no ONNX encoder: the children load everything themselves
    from vault import sealed_index
    from vault.index import index_file

    model = _vault_models.get(settings.home) or _vault_models.setdefault(settings.home, _recorded_model(settings, key))
    sealed_index.warm(index_file(settings.index_dir, model), key, model, settings.ann_threshold)


# The vault's model, read once per agent: after `reindex --model` the children load the new model's
# index themselves (correct, without the warm copy) until the next `ctxvault unlock`.
_vault_models: dict[Path, str] = {}


def _recorded_model(settings: Settings, key: DataKey) -> str:
    from vault import vault_model
    from vault.unlock import open_store

    store = open_store(settings, key)
    try:
        return vault_model.recorded(store) or settings.model
    finally:
        store.close()


def main() -> None:
    session.agent_main(
        programs={AGENT_COMMAND: run_mcp, CLI_PROGRAM: run_cli},
        preload=preload,
        background=embed_backlog,
        pausing={CLI_PROGRAM},
        refresh=warm_index,
    )


if __name__ == "__main__":
    main()
