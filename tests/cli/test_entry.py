"""The `ctxvault` launcher: `ctxvault mcp` served by a child of a real unlock agent, or in-process.

Each test starts the agent with `ctxvault unlock` (so it runs cli/agent.py, detached, as a
user's would) and drives `ctxvault mcp` over raw JSON-RPC lines, which lets a test kill
the launcher, lock the vault under it and read its exit code.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import typer.main

from cli.app import app
from cli.entry import VALUED_ROOT_OPTIONS, invocation
from tests.cli.conftest import Invoke
from tests.conftest import PASSPHRASE
from tests.vault.test_session import children_of, ends_within
from vault import Settings, VaultService, session
from vault.errors import InvalidToken, VaultLocked

ROOT = Path(__file__).resolve().parents[2]
CTXVAULT = Path(sys.executable).with_name("ctxvault")  # the console script pip installed
HEAVY = ("torch", "faiss", "onnxruntime")
# The launcher's real entry point, reporting at exit which of these it ever imported.
WATCHED = ("mcp", "mcp_server", "typer", "pydantic", "cli.app", *HEAVY)
LAUNCHER = (
    "import atexit, json, sys\n"
    "out = sys.argv.pop(1)\n"
    f"atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(m for m in {WATCHED!r} if m in sys.modules))))\n"
    "from cli.entry import main\n"
    "sys.argv[0] = 'ctxvault'\n"
    "main()\n"
)
INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}


@dataclass
class Agent:
    pid: int
    settings: Settings

    def servers(self) -> list[int]:
        return children_of(self.pid)


class Server:
    """One `ctxvault mcp` process, spoken to in newline-delimited JSON-RPC."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )  # fmt: skip
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._ids = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def ask(self, method: str, params: Mapping[str, object] | None = None) -> dict[str, Any]:
        self._ids += 1
        self.send({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params or {}})
        reply = json.loads(self._lines.get(timeout=60))
        assert reply.get("id") == self._ids and "result" in reply, reply
        result: dict[str, Any] = reply["result"]
        return result

    def send(self, message: dict[str, object]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def handshake(self) -> None:
        assert self.ask("initialize", INITIALIZE)["serverInfo"]
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def finish(self) -> tuple[int, str]:
        """Close stdin as a host does; the exit code and stderr."""
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err.decode()


@pytest.fixture
def agent(ctxvault: Invoke, vault: VaultService, settings: Settings, runtime_dir: Path) -> Iterator[Agent]:
    started = ctxvault("unlock", "--timeout", "10m", "--json")
    assert started.exit_code == 0, started.output
    yield Agent(pid=int(json.loads(started.stdout)["pid"]), settings=settings)
    session.lock(settings)


def host_env(**extra: str) -> dict[str, str]:
    """A host's environment: no passphrase, so the key can only come from the unlock session."""
    return {k: v for k, v in os.environ.items() if k != "CTXVAULT_PASSPHRASE"} | extra


def launcher(report: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", LAUNCHER, str(report), *args]


def test_the_console_script_is_the_launcher() -> None:
    (script,) = entry_points(group="console_scripts", name="ctxvault")
    assert script.value == "cli.entry:main"


def test_mcp_is_served_by_a_warm_child_of_the_agent_that_never_loaded_torch(agent: Agent, app_token: str) -> None:
    server = Server([str(CTXVAULT), "mcp", "--app", "tester"], host_env(CTXVAULT_APP_TOKEN=app_token))
    server.handshake()
    tools = {t["name"] for t in server.ask("tools/list")["tools"]}
    access = server.ask("tools/call", {"name": "list_access", "arguments": {}})
    (child,) = agent.servers()
    maps = Path(f"/proc/{child}/maps").read_text()
    code, err = server.finish()
    assert {"search_context", "request_access", "list_access"} <= tools
    assert access["structuredContent"]["app"]["name"] == "tester"
    # faiss and the ONNX query encoder come loaded from the agent (cli/agent.py warm_search); torch never.
    assert "torch" not in maps
    assert (code, err) == (0, "")
    assert ends_within(child, 30)  # it reports its exit code just before it exits
    session.status(agent.settings)  # a turn of the agent's loop after the child ended
    assert agent.servers() == []  # reaped: no zombie


def test_the_launcher_imports_neither_the_sdk_nor_the_cli(agent: Agent, app_token: str, tmp_path: Path) -> None:
    report = tmp_path / "launcher.json"
    # --vault names the vault, as the CLI reads it, even with CTXVAULT_HOME pointing elsewhere.
    env = host_env(CTXVAULT_APP_TOKEN=app_token, CTXVAULT_HOME=str(tmp_path / "elsewhere"))
    server = Server(launcher(report, "--vault", str(agent.settings.home), "mcp", "--app", "tester"), env)
    server.handshake()
    assert server.ask("tools/list")["tools"]
    assert server.finish() == (0, "")
    assert json.loads(report.read_text()) == []


def test_without_an_agent_the_launcher_serves_in_process(app_token: str, runtime_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "launcher.json"
    server = Server(launcher(report, "mcp", "--app", "tester"), host_env(CTXVAULT_APP_TOKEN=app_token, CTXVAULT_PASSPHRASE=PASSPHRASE))
    server.handshake()
    assert server.ask("tools/list")["tools"]
    assert server.finish() == (0, "")
    imported = json.loads(report.read_text())
    assert {"mcp", "mcp_server", "cli.app"} <= set(imported)
    assert not set(HEAVY) & set(imported)


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=ROOT, input="", capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "code"),
    [(["mcp", "--app", "tester"], InvalidToken.exit_code), (["mcp", "--app"], 2), (["mcp", "--app", "nobody"], InvalidToken.exit_code)],
)
def test_errors_are_alike_through_the_agent_and_in_process(
    agent: Agent, app_token: str, tmp_path: Path, args: list[str], code: int
) -> None:
    warm = run(launcher(tmp_path / "warm.json", *args), host_env(CTXVAULT_APP_TOKEN="cvt_not-a-real-token"))
    assert json.loads((tmp_path / "warm.json").read_text()) == []  # the agent's child answered
    session.lock(agent.settings)
    cold_env = host_env(CTXVAULT_APP_TOKEN="cvt_not-a-real-token", CTXVAULT_PASSPHRASE=PASSPHRASE)
    cold = run(launcher(tmp_path / "cold.json", *args), cold_env)
    assert "cli.app" in json.loads((tmp_path / "cold.json").read_text())
    assert warm.returncode == cold.returncode == code
    assert warm.stdout == cold.stdout == ""
    assert warm.stderr == cold.stderr != ""


def test_the_agent_starts_no_other_command(agent: Agent) -> None:
    asks_for_status = (
        "import os, sys\n"
        "from vault import session\n"
        "from vault.settings import Settings\n"
        "sys.exit(session.run_in_agent(Settings.from_env(), 'mcp', ['ctxvault', 'status'], env=os.environ, cwd=os.getcwd()))\n"
    )
    done = run([sys.executable, "-c", asks_for_status], host_env())
    assert (done.returncode, done.stdout) == (2, "")
    assert "does not run this command" in done.stderr


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_ending_the_launcher_ends_its_server(agent: Agent, app_token: str, how: signal.Signals) -> None:
    server = Server([str(CTXVAULT), "mcp", "--app", "tester"], host_env(CTXVAULT_APP_TOKEN=app_token))
    server.handshake()
    (child,) = agent.servers()
    server.proc.send_signal(how)
    server.proc.wait(timeout=60)
    assert ends_within(child, 30)  # though the host still holds its stdin open
    server.finish()
    session.status(agent.settings)
    assert agent.servers() == []


def test_lock_stops_the_servers_the_session_started(ctxvault: Invoke, agent: Agent, app_token: str) -> None:
    server = Server([str(CTXVAULT), "mcp", "--app", "tester"], host_env(CTXVAULT_APP_TOKEN=app_token))
    server.handshake()
    (child,) = agent.servers()
    assert json.loads(ctxvault("lock", "--json").stdout) == {"locked": True}
    assert not Path(f"/proc/{child}").exists()
    assert server.proc.wait(timeout=60) == VaultLocked.exit_code  # with its stdin still open
    _, err = server.finish()
    assert err.startswith("error: ") and "locked" in err


def test_the_launcher_knows_every_root_option_that_takes_a_value() -> None:
    root = typer.main.get_command(app)
    valued = {opt for p in root.params if not getattr(p, "is_flag", False) for opt in p.opts}
    assert valued == set(VALUED_ROOT_OPTIONS)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["mcp", "--app", "x"], ("mcp", None)),
        (["--vault", "/v", "mcp", "--app", "x"], ("mcp", Path("/v"))),
        (["--vault=/v", "--passphrase-file", "p", "mcp"], ("mcp", Path("/v"))),
        (["--passphrase-file=p", "status"], ("status", None)),
        (["--help", "mcp"], (None, None)),
        (["--vault"], (None, None)),
        ([], (None, None)),
    ],
)
def test_the_launcher_reads_the_command_line_as_click_does(argv: list[str], expected: tuple[str | None, Path | None]) -> None:
    assert invocation(argv) == expected
