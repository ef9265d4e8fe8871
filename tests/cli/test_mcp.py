"""`ctxvault mcp` over real stdio, `unlock`/`lock`, and the unattended key sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.cli.conftest import Invoke
from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, VaultService, session
from vault.errors import InvalidInput
from vault.unlock import open_store, unlock_key

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "sentence_transformers", "faiss", "onnxruntime")
# Runs the real CLI entry point and reports, at exit, which heavy modules were ever imported.
WRAPPER = (
    "import atexit, json, sys\n"
    "out = sys.argv.pop(1)\n"
    f"atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules))))\n"
    "from cli.app import main\n"
    "sys.argv[0] = 'ctxvault'\n"
    "main()\n"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def stdio_params(*args: str, env: dict[str, str], report: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-c", WRAPPER, str(report), *args], env=env, cwd=str(ROOT))


@pytest.mark.anyio
@pytest.mark.parametrize("era", ["legacy", "auto"])
async def test_stdio_server_answers_on_both_eras_without_loading_torch(app_token: str, tmp_path: Path, era: str) -> None:
    report = tmp_path / "heavy.json"
    env = {**os.environ, "CTXVAULT_PASSPHRASE": PASSPHRASE, "CTXVAULT_APP_TOKEN": app_token}
    with anyio.fail_after(60):
        async with Client(stdio_params("mcp", "--app", "tester", env=env, report=report), mode=era) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            denied = await client.call_tool("search_context", {"query": "coffee"})
    assert {"search_context", "request_access", "list_access"} <= tools
    assert denied.is_error
    assert json.loads(report.read_text()) == []


def test_mcp_without_a_key_fails_with_nothing_on_stdout(app_token: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CTXVAULT_PASSPHRASE"} | {"CTXVAULT_APP_TOKEN": app_token}
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, os.devnull, "mcp", "--app", "tester"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 5
    assert done.stdout == ""
    assert "unlock" in done.stderr


def test_mcp_refuses_a_token_of_another_app(ctxvault: Invoke, vault: VaultService, app_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    vault.add_app(OWNER, "other")
    monkeypatch.setenv("CTXVAULT_APP_TOKEN", app_token)
    result = ctxvault("mcp", "--app", "other")
    assert result.exit_code == 8


def test_mcp_refuses_an_unknown_token(ctxvault: Invoke, app_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXVAULT_APP_TOKEN", "cvt_not-a-real-token")
    result = ctxvault("mcp", "--app", "tester")
    assert result.exit_code == 17  # InvalidToken


def test_unlock_session_hands_the_key_to_the_same_user_until_lock(
    ctxvault: Invoke, vault: VaultService, settings: Settings, runtime_dir: Path
) -> None:
    started = ctxvault("unlock", "--timeout", "10m", "--json")
    try:
        assert started.exit_code == 0, started.output
        sock = session.socket_path(settings)
        assert sock.stat().st_mode & 0o777 == 0o600
        assert runtime_dir.stat().st_mode & 0o777 == 0o700
        key = session.fetch_key(settings)
        assert key is not None
        with VaultService(open_store(settings, key), settings, key) as svc:
            assert svc.status(OWNER).memories == 0
    finally:
        locked = ctxvault("lock", "--json")
    assert json.loads(locked.stdout) == {"locked": True}
    assert session.fetch_key(settings) is None


def test_unlock_with_a_wrong_passphrase_starts_no_agent(
    ctxvault: Invoke, vault: VaultService, settings: Settings, runtime_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTXVAULT_PASSPHRASE", "wrong wrong wrong wrong")
    result = ctxvault("unlock")
    assert result.exit_code == 6
    assert session.status(settings) is None


def test_unlock_rejects_a_bad_timeout(ctxvault: Invoke, vault: VaultService, runtime_dir: Path) -> None:
    assert ctxvault("unlock", "--timeout", "forever").exit_code == 8


def test_agent_refuses_a_runtime_dir_others_can_enter(settings: Settings, runtime_dir: Path, vault: VaultService) -> None:
    os.chmod(runtime_dir, 0o755)
    key = unlock_key(settings, PASSPHRASE)
    with pytest.raises(InvalidInput):
        session.serve(settings, key, timeout_s=1)


def test_agent_with_no_time_left_forgets_the_key_at_once(settings: Settings, runtime_dir: Path, vault: VaultService) -> None:
    key = unlock_key(settings, PASSPHRASE)
    session.serve(settings, key, timeout_s=0)
    assert session.fetch_key(settings) is None
    assert not session.socket_path(settings).exists()


def test_connect_writes_a_host_config_with_a_new_apps_token(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    config = tmp_path / "cursor" / "mcp.json"
    result = ctxvault("connect", "cursor", "--app", "cursor", "--config", str(config))
    assert result.exit_code == 0, result.output
    entry = json.loads(config.read_text())["mcpServers"]["ctxvault"]
    assert entry["args"] == ["mcp", "--app", "cursor"]
    assert entry["env"]["CTXVAULT_APP_TOKEN"].startswith("cvt_")
    assert "CTXVAULT_PASSPHRASE" not in entry["env"]
    assert config.stat().st_mode & 0o777 == 0o600


def test_connect_keeps_other_servers_backs_up_and_shows_the_diff(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}, "theme": "dark"}))
    result = ctxvault("connect", "claude-desktop", "--config", str(config))
    assert result.exit_code == 0, result.output
    written = json.loads(config.read_text())
    assert set(written["mcpServers"]) == {"other", "ctxvault"} and written["theme"] == "dark"
    assert len(list(tmp_path.glob("claude_desktop_config.json.bak-*"))) == 1
    assert '+    "ctxvault": {' in result.stdout


def test_connect_print_writes_nothing_and_vscode_uses_its_own_shape(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    result = ctxvault("connect", "vscode", "--print", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["servers"]["ctxvault"]["type"] == "stdio"
    assert not config.exists()


def test_connect_refuses_a_config_that_is_not_json(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text("{not json")
    assert ctxvault("connect", "cursor", "--config", str(config)).exit_code == 8
    assert config.read_text() == "{not json"


@pytest.mark.anyio
async def test_a_host_can_launch_mcp_with_only_an_unlock_session(
    vault: VaultService, settings: Settings, runtime_dir: Path, tmp_path: Path
) -> None:
    vault.add_app(OWNER, "desktop")
    key = unlock_key(settings, PASSPHRASE)
    ready = threading.Event()
    agent = threading.Thread(target=session.serve, args=(settings, key, 600.0), kwargs={"ready": ready.set}, daemon=True)
    agent.start()
    assert ready.wait(timeout=30)
    env = {k: v for k, v in os.environ.items() if k not in ("CTXVAULT_PASSPHRASE", "CTXVAULT_APP_TOKEN")}
    try:
        with anyio.fail_after(60):
            async with Client(stdio_params("mcp", "--app", "desktop", env=env, report=tmp_path / "heavy.json")) as client:
                access = await client.call_tool("list_access", {})
    finally:
        session.lock(settings)
        agent.join(timeout=30)
    assert access.structured_content is not None
    assert access.structured_content["app"]["name"] == "desktop" and access.structured_content["scopes"] == []


def test_connect_never_puts_a_token_in_a_project_file(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    config = tmp_path / ".mcp.json"
    assert ctxvault("connect", "claude-code", "--config", str(config)).exit_code == 0
    entry = json.loads(config.read_text())["mcpServers"]["ctxvault"]
    assert "CTXVAULT_APP_TOKEN" not in entry["env"] and entry["args"] == ["mcp", "--app", "claude-code"]


def test_ui_prints_a_one_time_login_link_that_the_vault_redeems_once(ctxvault: Invoke, vault: VaultService) -> None:
    from urllib.parse import parse_qs, urlsplit

    from mcp_server.http import create_app
    from tests.e2e.conftest import serve_in_thread
    from vault.errors import InvalidToken

    for base in serve_in_thread(lambda url: create_app(vault, url)):
        printed = ctxvault("ui", "--url", f"{base}/")
        assert printed.exit_code == 0, printed.output
        link = urlsplit(printed.stdout.strip())
        assert (f"http://{link.netloc}", link.path) == (base, "/login/link")
        assert "started" not in printed.output  # something answered: nothing else is started
        token = parse_qs(link.query)["token"][0]
        vault.redeem_owner_login(token)
        with pytest.raises(InvalidToken):
            vault.redeem_owner_login(token)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ui_without_a_server_says_so_or_starts_one_in_the_background(
    ctxvault: Invoke, vault: VaultService, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import subprocess

    import httpx2

    port = free_port()
    refused = ctxvault("ui", "--url", f"http://127.0.0.1:{port}", "--no-serve")
    assert refused.exit_code == 18 and "nothing answers" in refused.output
    started = ctxvault("ui", "--url", f"http://127.0.0.1:{port}")
    try:
        assert started.exit_code == 0, started.output
        assert "started `ctxvault serve`" in started.output
        link = started.stdout.strip().splitlines()[-1]
        assert httpx2.get(link, timeout=10).status_code == 200
    finally:
        found = subprocess.run(["pgrep", "-f", f"serve --host 127.0.0.1 --port {port}"], capture_output=True, text=True)
        for pid in found.stdout.split():
            os.kill(int(pid), signal.SIGTERM)
    assert found.stdout.split(), "the background server was not found"


def test_ui_open_gives_the_browser_a_private_file_never_the_token(
    ctxvault: Invoke, vault: VaultService, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    from mcp_server.http import create_app
    from tests.e2e.conftest import serve_in_thread

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda uri: opened.append(uri) or True)
    for base in serve_in_thread(lambda url: create_app(vault, url)):
        printed = ctxvault("ui", "--url", base, "--open")
        assert printed.exit_code == 0, printed.output
    token = printed.stdout.strip().rsplit("token=", 1)[1]
    (uri,) = opened
    assert uri.startswith("file://") and token not in uri
    page = Path(uri.removeprefix("file://"))
    assert page.stat().st_mode & 0o777 == 0o600 and page.parent.stat().st_mode & 0o777 == 0o700
    assert token in page.read_text()


def test_connect_print_registers_no_app_and_mints_no_token(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    shown = ctxvault("connect", "cursor", "--app", "desk", "--print", "--config", str(config))
    assert shown.exit_code == 0, shown.output
    env = json.loads(shown.stdout)["mcpServers"]["ctxvault"]["env"]
    assert not env["CTXVAULT_APP_TOKEN"].startswith("cvt_")  # a placeholder: no token exists yet
    assert "Nothing was changed" in shown.stderr and "ctxvault connect cursor --app desk" in shown.stderr
    assert json.loads(ctxvault("apps", "list", "--json").stdout) == [] and not config.exists()
    assert not any(e["event"] == "app_add" for e in json.loads(ctxvault("audit", "--json").stdout))
    # The next connect registers the app and writes its real token; a later one keeps that token.
    assert ctxvault("connect", "cursor", "--app", "desk", "--config", str(config)).exit_code == 0
    token = json.loads(config.read_text())["mcpServers"]["ctxvault"]["env"]["CTXVAULT_APP_TOKEN"]
    assert token.startswith("cvt_")
    again = ctxvault("connect", "cursor", "--app", "desk", "--print", "--config", str(config))
    assert json.loads(again.stdout)["mcpServers"]["ctxvault"]["env"]["CTXVAULT_APP_TOKEN"] == token
    assert ctxvault("connect", "cursor", "--app", "desk", "--config", str(config)).exit_code == 0
    assert json.loads(config.read_text())["mcpServers"]["ctxvault"]["env"]["CTXVAULT_APP_TOKEN"] == token
    rotated = ctxvault("connect", "cursor", "--app", "desk", "--print", "--rotate-token", "--config", str(config))
    assert "cvt_" not in rotated.stdout  # printing a rotation rotates nothing
    assert json.loads(config.read_text())["mcpServers"]["ctxvault"]["env"]["CTXVAULT_APP_TOKEN"] == token
