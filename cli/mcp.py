"""Serving the vault to apps: `ctxvault mcp` (stdio), `serve` (HTTP), `unlock`/`lock`, `connect`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from typing import Annotated

import anyio
import typer

from cli.context import CLIState, JsonFlag, state
from cli.errors import err_console
from cli.output import console, print_json
from vault import VaultService, session
from vault.errors import InvalidInput, VaultLocked
from vault.principal import Principal
from vault.unlock import open_store, unlock_key

_DURATION = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

AppOpt = Annotated[str, typer.Option("--app", help="The registered app this server speaks for (see `ctxvault apps`).")]


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
    app.command("serve")(serve)
    app.command("unlock")(unlock)
    app.command("lock")(lock)


def open_unattended(st: CLIState) -> VaultService:
    """Open the vault without a prompt: the unlock session, else --passphrase-file or CTXVAULT_PASSPHRASE.

    Raises:
        VaultLocked: none of them is available.
    """
    settings = st.settings
    key = session.fetch_key(settings)
    if key is not None:
        return VaultService(open_store(settings, key), settings, key)
    if st.passphrase_file is None and not os.environ.get("CTXVAULT_PASSPHRASE"):
        raise VaultLocked("the vault is locked: run `ctxvault unlock`, or set CTXVAULT_PASSPHRASE or --passphrase-file")
    key = unlock_key(settings, st.passphrase())
    return VaultService(open_store(settings, key), settings, key)


def app_identity(svc: VaultService, app: str) -> tuple[Principal, str | None]:
    """Who the stdio server speaks for: the app holding CTXVAULT_APP_TOKEN, else ``app`` by name.

    The name alone is enough only because this process already holds the data key, which is
    the owner's authority; the client's self-reported name is never consulted.

    Raises:
        WrongPassphrase: an unknown token. InvalidInput: the token belongs to another app.
        NotFound: no such app.
    """
    token = os.environ.get("CTXVAULT_APP_TOKEN")
    if token:
        principal = svc.authenticate_app(token)
        if principal.name != app:
            raise InvalidInput(f"CTXVAULT_APP_TOKEN belongs to app {principal.name!r}, not {app!r}")
        return principal, token
    return svc.principal_for_app(app), None


def mcp(ctx: typer.Context, app: AppOpt) -> None:
    """Serve the vault to one app over MCP stdio; a host app (Claude Desktop, Cursor…) launches this.

    The key comes from `ctxvault unlock` (or CTXVAULT_PASSPHRASE); the app's identity from
    CTXVAULT_APP_TOKEN or, with the key at hand, its registered name. Only protocol goes to stdout.

    Example: CTXVAULT_APP_TOKEN=cvt_… ctxvault mcp --app claude-desktop
    """
    from mcp_server.server import VaultAccess, build_server

    svc = open_unattended(state(ctx))
    _, token = app_identity(svc, app)

    def identify() -> Principal:
        # Re-checked on every call: a rotated token or a removed app is cut off at once.
        return svc.authenticate_app(token) if token else svc.principal_for_app(app)

    server = build_server(VaultAccess(svc, identify))
    anyio.run(server.run_stdio_async)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; loopback unless you know why not.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8765,
) -> None:
    """Serve MCP over Streamable HTTP at /mcp, with bearer tokens and the owner's consent pages.

    Example: ctxvault serve --port 8765
    """
    import uvicorn

    from mcp_server.http import create_app

    svc = open_unattended(state(ctx))
    # Bind first: with --port 0 the OS picks the port, and clients may connect as soon as the line below is printed.
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    bound = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{f'[{shown}]' if ':' in shown else shown}:{bound}"
    app = create_app(svc, base_url=base)
    err_console.print(f"ctxvault: serving MCP at {base}/mcp (Ctrl-C to stop)", markup=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    server.run(sockets=[sock])


def _seconds(text: str) -> int:
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match[1]) == 0:
        raise InvalidInput(f"invalid duration {text!r}: use e.g. 30m, 8h or 2d")
    return int(match[1]) * _SECONDS[match[2]]


def unlock(
    ctx: typer.Context,
    timeout: Annotated[str, typer.Option("--timeout", help="Lock again after this long: 30m, 8h, 2d.")] = "8h",
    json_out: JsonFlag = False,
) -> None:
    """Start an unlock session: a per-user agent keeps the key in memory so host apps can launch `ctxvault mcp`.

    Example: ctxvault unlock --timeout 8h
    """
    st = state(ctx)
    settings = st.settings
    seconds = _seconds(timeout)
    key = unlock_key(settings, st.passphrase())
    session.lock(settings)
    job = json.dumps({"home": str(settings.home), "key": key.hex(), "timeout_s": seconds}) + "\n"
    # The agent detaches itself (vault/session.py); this waits for its launcher to report.
    done = subprocess.run([sys.executable, "-m", "vault.session"], input=job, capture_output=True, text=True, timeout=60, check=False)
    words = done.stdout.split()
    if done.returncode != 0 or words[:1] != ["ready"]:
        raise VaultLocked("the unlock agent did not start")
    pid = int(words[1])
    status = session.status(settings)
    left = status.seconds_left if status else seconds
    if json_out:
        print_json({"unlocked": True, "seconds_left": left, "pid": pid})
    else:
        console.print(f"Unlocked for {timeout} (agent pid {pid}). `ctxvault lock` ends it early.")


def lock(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """End the unlock session; the agent forgets the key.

    Example: ctxvault lock
    """
    was = session.lock(state(ctx).settings)
    if json_out:
        print_json({"locked": was})
    else:
        console.print("Locked." if was else "No unlock session was running.")
