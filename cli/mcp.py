"""Serving the vault to apps: `ctxvault mcp` (stdio), `serve` (HTTP), `unlock`/`lock`, `connect`."""

from __future__ import annotations

import difflib
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import anyio
import typer

from cli.context import CLIState, JsonFlag, state
from cli.errors import err_console
from cli.output import render, write_private
from vault import OWNER, VaultService, backlog, session
from vault.errors import InvalidInput, VaultBusy, VaultLocked
from vault.host_config import Host, host_config_path, project_file, render_config
from vault.principal import Principal
from vault.readers import READERS
from vault.unlock import open_store, unlock_key

_DURATION = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

AppOpt = Annotated[str, typer.Option("--app", help="The registered app this server speaks for (see `ctxvault apps`).")]


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
    app.command("serve")(serve)
    app.command("ui")(ui)
    app.command("unlock")(unlock)
    app.command("lock")(lock)
    app.command("connect")(connect)


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
        InvalidToken: an unknown token. InvalidInput: the token belongs to another app.
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

    def identify(on: VaultService) -> Principal:
        # Re-checked on every call: a rotated token or a removed app is cut off at once.
        return on.authenticate_app(token) if token else on.principal_for_app(app)

    server = build_server(VaultAccess(svc, identify))
    anyio.run(server.run_stdio_async)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; loopback unless you know why not.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port).")] = 8765,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate: serve HTTPS (needs --tls-key).")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key for --tls-cert.")] = None,
    insecure_http: Annotated[
        bool, typer.Option("--insecure-http", help="Serve plain HTTP on a non-loopback --host anyway (tokens and passphrase in cleartext).")
    ] = False,
    readers: Annotated[
        int,
        typer.Option("--readers", min=0, max=16, help="Connections that answer read calls side by side (0: one call at a time)."),
    ] = READERS,
) -> None:
    """Serve MCP over Streamable HTTP at /mcp, with bearer tokens, OAuth and the owner's consent page.

    Beyond loopback (e.g. --host 0.0.0.0) it needs --tls-cert and --tls-key, or --insecure-http.
    Searches, reads and token checks run on --readers connections of their own, beside each
    other and beside the one writer, whose calls (remember, forget, the console) take turns.

    Example: ctxvault serve --port 8765
    """
    import uvicorn

    from mcp_server.http import create_app, is_loopback

    if (tls_cert is None) != (tls_key is None):
        raise InvalidInput("--tls-cert and --tls-key go together")
    if tls_cert is None and not is_loopback(host):
        if not insecure_http:
            raise InvalidInput(
                f"--host {host} is reachable from other machines: serve HTTPS with --tls-cert and --tls-key, or pass "
                "--insecure-http to accept that bearer tokens and the owner's passphrase cross the network in cleartext"
            )
        err_console.print(
            f"WARNING: serving PLAIN HTTP on {host}, beyond this machine: anyone on the network path can read bearer "
            "tokens, the owner's passphrase typed on the consent page, and every answer. Use --tls-cert/--tls-key.",
            markup=False,
            style="bold red",
        )
    svc = open_unattended(state(ctx))
    # Bind first: with --port 0 the OS picks the port, and clients may connect as soon as the line below is printed.
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    bound = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    scheme = "https" if tls_cert else "http"
    base = f"{scheme}://{f'[{shown}]' if ':' in shown else shown}:{bound}"
    app = create_app(svc, base_url=base, readers=readers)
    err_console.print(f"ctxvault: serving MCP at {base}/mcp (Ctrl-C to stop)", markup=False)
    tls = {"ssl_certfile": str(tls_cert), "ssl_keyfile": str(tls_key)} if tls_cert and tls_key else {}
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **tls))  # type: ignore[arg-type]
    server.run(sockets=[sock])


def ui(
    ctx: typer.Context,
    url: Annotated[str, typer.Option("--url", help="Where `ctxvault serve` answers.")] = "http://127.0.0.1:8765",
    open_browser: Annotated[bool, typer.Option("--open", help="Also open the console in the default browser.")] = False,
    start: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start `ctxvault serve` in the background when nothing answers at --url.")
    ] = True,
) -> None:
    """Open your console: a one-time link that logs your browser in (works once, for 5 minutes).

    Uses the unlock session when there is one, so no passphrase is typed; the link logs in
    even while wrong passphrases have the login page backing off. When nothing answers at
    --url (a loopback address), `ctxvault serve` is started in the background first (it needs
    the unlock session, CTXVAULT_PASSPHRASE or --passphrase-file; its log is serve.log in
    the vault directory). With --open the browser is given a private file that leads to the
    link, so the token never appears on a process command line.

    Example: ctxvault ui --open
    """
    st = state(ctx)
    svc = st.service()  # the session's key when one runs
    base = url.rstrip("/")
    if not _answers(base):
        if not start:
            raise VaultBusy(f"nothing answers at {base}: run `ctxvault serve` first")
        _start_server(st, base)
    token = svc.owner_login_link(OWNER)
    link = f"{base}/login/link?token={token}"
    typer.echo(link)
    if open_browser:
        import webbrowser

        webbrowser.open(_link_file(st.settings.home, link).as_uri())


def _answers(base: str) -> bool:
    import httpx2

    try:
        httpx2.get(f"{base}/login", timeout=2.0)
    except httpx2.HTTPError:
        return False
    return True


def _start_server(st: CLIState, base: str) -> None:
    """Start `ctxvault serve` detached on ``base``'s loopback port; wait until it answers.

    Raises:
        InvalidInput: ``base`` is not a loopback http address. VaultLocked: no unattended key.
        VaultBusy: it did not answer within 30 s (see serve.log).
    """
    from urllib.parse import urlsplit

    from mcp_server.http import is_loopback

    parts = urlsplit(base)
    if parts.scheme != "http" or not parts.hostname or not is_loopback(parts.hostname):
        raise InvalidInput(f"{base} is not a loopback http address: start `ctxvault serve` there yourself")
    open_unattended(st).close()  # the same rule serve applies, reported here instead of in a log
    argv = [sys.executable, "-c", "from cli.app import main; main()"]
    if st.passphrase_file is not None:
        argv += ["--passphrase-file", str(st.passphrase_file)]
    argv += ["serve", "--host", parts.hostname, "--port", str(parts.port or 80)]
    log_path = st.settings.home / "serve.log"
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "CTXVAULT_HOME": str(st.settings.home)},
        )
    server.returncode = 0  # detached on purpose: it outlives this command and is never waited for
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _answers(base):
            err_console.print(f"ctxvault: started `ctxvault serve` at {base} (log: {log_path})", markup=False)
            return
        time.sleep(0.25)
    raise VaultBusy(f"`ctxvault serve` did not answer at {base} within 30 s; see {log_path}")


def _link_file(home: Path, link: str) -> Path:
    """A private page (0600, in a 0700 folder of the vault) that sends the browser to ``link``.

    The browser is started with the file's path, not the link: a command line is visible to
    every local user. The token in it works once, for 5 minutes; the next `ui` overwrites it."""
    folder = home / "ui"
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    page = folder / "open.html"
    fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    target = html.escape(link, quote=True)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(
            f'<!doctype html><meta charset=utf-8><meta http-equiv=refresh content="0;url={target}">'
            f'<title>Context Vault</title><a href="{target}">Open your Context Vault console</a>'
        )
    return page


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
    """Start an unlock session: a per-user agent keeps the key in memory for every command and host app.

    While it runs, `ctxvault` commands and a host's `ctxvault mcp` are served by children
    forked from the agent, which has the CLI loaded and the key at hand: no passphrase, and
    answers in a fraction of the time. init, unlock, lock, passwd, recover, purge and serve
    still run in their own process (they use the session's key all the same).
    `ctxvault lock` and the timeout stop the session and what it runs.

    Example: ctxvault unlock --timeout 8h
    """
    st = state(ctx)
    settings = st.settings
    seconds = _seconds(timeout)
    key = unlock_key(settings, st.passphrase())
    session.lock(settings)
    job = json.dumps({"home": str(settings.home), "key": key.hex(), "timeout_s": seconds}) + "\n"
    # The agent detaches itself (vault/session.py) and pre-imports `ctxvault mcp` (cli/agent.py)
    # before it reports ready; this waits for its launcher to report.
    done = subprocess.run([sys.executable, "-m", "cli.agent"], input=job, capture_output=True, text=True, timeout=60, check=False)
    words = done.stdout.split()
    if done.returncode != 0 or words[:1] != ["ready"]:
        raise VaultLocked("the unlock agent did not start")
    pid = int(words[1])
    if backlog.waiting(settings, key)[1]:
        session.embed_backlog(settings)  # the agent embeds it in the background while the session lasts
    status = session.status(settings)
    left = status.seconds_left if status else seconds
    render(
        {"unlocked": True, "seconds_left": left, "pid": pid},
        json_out,
        f"Unlocked for {timeout}: commands in this login use it (agent pid {pid}). `ctxvault lock` ends it early.",
    )


def lock(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """End the unlock session: the agent forgets the key and stops the commands and MCP servers it started.

    Example: ctxvault lock
    """
    was = session.lock(state(ctx).settings)
    render({"locked": was}, json_out, "Locked." if was else "No unlock session was running.")


TOKEN_PLACEHOLDER = "<app token: made when you run the command without --print>"
"""What `connect --print` shows where the written config would hold the app's token (none is made by printing)."""


def configured_token(host: Host, existing: dict[str, object], name: str) -> str | None:
    """The app token the config already gives our server for app ``name``: a re-run of `connect` keeps it."""
    servers = existing.get("servers" if host is Host.vscode else "mcpServers")
    entry = servers.get("ctxvault") if isinstance(servers, dict) else None
    if not isinstance(entry, dict) or entry.get("args") != ["mcp", "--app", name] or not isinstance(entry.get("env"), dict):
        return None
    token = entry["env"].get("CTXVAULT_APP_TOKEN")
    return token if isinstance(token, str) and token.startswith("cvt_") else None


def _print_note(host: Host, name: str, path: Path, *, exists: bool, rotate: bool, project_file: bool, kept: bool) -> str:
    """What `connect --print` says on stderr: that nothing changed, and the command that would do it."""
    command = f"ctxvault connect {host.value} --app {name}" + (" --rotate-token" if rotate else "")
    if not exists:
        did = f"app {name!r} is not registered yet; `{command}` registers it"
    elif rotate:
        did = f"`{command}` gives app {name!r} a new token (its old one stops working)"
    else:
        did = f"`{command}` writes this for the existing app {name!r}"
    what = " and writes this config" if not exists or rotate else ""
    token = (
        " (with no token: a project file may be committed; the host needs `ctxvault unlock`)"
        if project_file
        else " with the real token in place of the placeholder"
        if not exists or rotate
        else " (keeping the token the config holds)"
        if kept
        else " (with no token: the host needs `ctxvault unlock`, or add --rotate-token)"
    )
    return f"Nothing was changed (--print): {did}{what} to {path}{token}."


def connect(
    ctx: typer.Context,
    host: Annotated[Host, typer.Argument(help="The host app to configure.")],
    app: Annotated[str | None, typer.Option("--app", help="App name in the vault (default: the host's name); created if missing.")] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Only show the config that would be written: no app registered, no token made, no file touched.")
    ] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Config file to edit instead of the host's default.")] = None,
    rotate_token: Annotated[
        bool, typer.Option("--rotate-token", help="Give an existing app a new token and put it in the config.")
    ] = False,
) -> None:
    """Write (or print) a host app's MCP config so it launches `ctxvault mcp` for a named app.

    A new app starts with no access. Its token goes into the config (not the passphrase);
    for an existing app, run `ctxvault unlock` before the host starts, or pass --rotate-token.
    Any existing config file is backed up and the change is shown as a diff.
    --print changes nothing: where a token would go it shows a placeholder, and says which
    command registers the app and writes the config with its real token.

    Example: ctxvault connect claude-desktop --app claude
    """
    from cli.context import service

    name = app or host.value
    svc = service(ctx)
    exists = any(a.name == name for a in svc.list_apps(OWNER))
    path = config or host_config_path(host)
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        existing = json.loads(before) if before.strip() else {}
    except ValueError as exc:
        raise InvalidInput(f"{path} is not valid JSON; fix or move it first") from exc
    if not isinstance(existing, dict):
        raise InvalidInput(f"{path} does not hold a JSON object")
    token: str | None
    if print_only:  # nothing is registered or minted: a placeholder stands where a new token would go
        token = TOKEN_PLACEHOLDER if rotate_token or not exists else configured_token(host, existing, name)
    elif exists:
        token = svc.rotate_app_token(OWNER, name).token if rotate_token else configured_token(host, existing, name)
    else:
        token = svc.add_app(OWNER, name).token
    # VS Code and Claude Code read a file inside the project, which may well be committed:
    # no token there (render_config leaves it out); the host then needs an unlock session.
    in_project = project_file(host)
    after = render_config(host, name, state(ctx).settings.home, token, existing)
    if print_only:
        typer.echo(after, nl=False)
        note = _print_note(host, name, path, exists=exists, rotate=rotate_token, project_file=in_project, kept=token is not None)
        err_console.print(note, markup=False)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = path.with_name(f"{path.name}.bak-{datetime.now(UTC):%Y%m%d%H%M%S}")
        shutil.copy2(path, backup)
        err_console.print(f"Backed up {path} to {backup}", markup=False)
    write_private(path, after)  # it may hold an app token
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), str(path), str(path), lineterm="")
    typer.echo("\n".join(diff))
    note = "" if token and not in_project else " It has no token in the config: run `ctxvault unlock` before starting the host."
    err_console.print(f"Configured {host.value} to use app {name!r}; it sees nothing until you grant it.{note}", markup=False)
