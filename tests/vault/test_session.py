"""The unlock agent's programs: a launcher's stdio, env and cwd handed to a forked child.

The agent runs in its own process here (forking is only safe single-threaded) with two
toy programs; the CLI's real one, `ctxvault mcp`, is tested in tests/cli/test_entry.py.
The older key/status/lock ops are tested with `ctxvault unlock` in tests/cli/test_mcp.py.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from vault import Settings, VaultService, session
from vault.crypto import DataKey
from vault.errors import VaultLocked
from vault.unlock import unlock_key

ROOT = Path(__file__).resolve().parents[2]
FALLBACK = 99  # what LAUNCHER exits with when the agent took nothing

AGENT = """
import json, os, sys
from vault import session
from vault.crypto import DataKey
from vault.settings import Settings

def echo(argv):
    line = sys.stdin.readline()
    umask = os.umask(0); os.umask(umask)
    print(json.dumps({"line": line, "argv": list(argv), "sys_argv": sys.argv, "cwd": os.getcwd(),
                      "x": os.environ.get("X"), "umask": umask}))
    print("a word on stderr", file=sys.stderr)
    return 7

def wait(argv):
    print("waiting", flush=True)
    sys.stdin.read()
    return 0

def ready():
    print("ready", flush=True)

session.serve(Settings.from_env(), DataKey(bytes(32)), float(sys.argv[1]), ready=ready, programs={"echo": echo, "wait": wait})
"""

LAUNCHER = """
import os, sys
from vault import session
from vault.errors import VaultError
from vault.settings import Settings

try:
    code = session.run_in_agent(Settings.from_env(), sys.argv[1], sys.argv, env=os.environ, cwd=os.getcwd())
except VaultError as exc:
    print(type(exc).__name__, file=sys.stderr)
    sys.exit(exc.exit_code)
sys.exit(99 if code is None else code)
"""


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, zombies included (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def ends_within(pid: int, seconds: float) -> bool:
    """Wait for any process (not only our child) to end, through a pidfd; no polling."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    with selectors.DefaultSelector() as sel:
        sel.register(pidfd, selectors.EVENT_READ)
        ended = bool(sel.select(seconds))
    os.close(pidfd)
    return ended


@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private runtime dir: Unix socket paths are limited to ~108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="cv-"))
    monkeypatch.setenv("CTXVAULT_RUNTIME_DIR", str(path))
    yield path


def start_agent(timeout_s: float) -> subprocess.Popen[str]:
    agent = subprocess.Popen([sys.executable, "-c", AGENT, str(timeout_s)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert agent.stdout is not None
    with agent.stdout:
        assert agent.stdout.readline() == "ready\n"
    return agent


@pytest.fixture
def agent(settings: Settings, runtime_dir: Path) -> Iterator[subprocess.Popen[str]]:
    process = start_agent(600)
    yield process
    session.lock(settings)
    process.wait(timeout=30)


def launch(program: str, cwd: Path = ROOT, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, program, "--flag"],
        cwd=cwd, env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, umask=0o027,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def only_child(agent: subprocess.Popen[str], launcher: subprocess.Popen[str]) -> int:
    """The agent's one child, once it runs the `wait` program on the launcher's stdio."""
    assert launcher.stdout is not None
    assert launcher.stdout.readline() == "waiting\n"
    kids = children_of(agent.pid)
    assert len(kids) == 1
    return kids[0]


def test_a_program_runs_on_the_launchers_stdin_stdout_stderr_env_cwd_and_umask(agent: subprocess.Popen[str], tmp_path: Path) -> None:
    launcher = launch("echo", cwd=tmp_path, X="from the launcher")
    out, err = launcher.communicate("hello\n", timeout=60)
    assert launcher.returncode == 7
    assert json.loads(out) == {
        "line": "hello\n",
        "argv": ["-c", "echo", "--flag"],
        "sys_argv": ["-c", "echo", "--flag"],
        "cwd": str(tmp_path),
        "x": "from the launcher",
        "umask": 0o027,
    }
    assert err == "a word on stderr\n"


def test_a_finished_child_is_reaped_at_once(agent: subprocess.Popen[str], settings: Settings) -> None:
    launcher = launch("wait")
    child = only_child(agent, launcher)
    launcher.communicate("", timeout=60)
    assert launcher.returncode == 0
    assert ends_within(child, 30)  # it reports its exit code just before it exits
    session.status(settings)  # one more turn of the agent's loop, after the child ended
    assert children_of(agent.pid) == []


def test_a_child_whose_launcher_is_killed_exits(agent: subprocess.Popen[str], settings: Settings) -> None:
    launcher = launch("wait")
    child = only_child(agent, launcher)
    launcher.kill()
    launcher.wait(timeout=30)
    assert ends_within(child, 30)  # though the child's stdin is still open
    launcher.communicate(timeout=30)
    session.status(settings)
    assert children_of(agent.pid) == []


def test_lock_ends_the_children_before_it_answers(agent: subprocess.Popen[str], settings: Settings) -> None:
    launcher = launch("wait")
    child = only_child(agent, launcher)
    assert session.lock(settings)
    assert not Path(f"/proc/{child}").exists()
    _, err = launcher.communicate(timeout=30)
    assert launcher.returncode == VaultLocked.exit_code
    assert err == "VaultLocked\n"


def test_the_timeout_ends_the_children(settings: Settings, runtime_dir: Path) -> None:
    agent = start_agent(5)
    launcher = launch("wait")
    child = only_child(agent, launcher)
    assert launcher.wait(timeout=60) == VaultLocked.exit_code  # its stdin still open: only the agent ended it
    launcher.communicate(timeout=30)
    agent.wait(timeout=30)
    assert not Path(f"/proc/{child}").exists()


def test_an_agent_without_the_program_hands_nothing_over(agent: subprocess.Popen[str]) -> None:
    launcher = launch("unknown")
    launcher.communicate("", timeout=60)
    assert launcher.returncode == FALLBACK
    assert children_of(agent.pid) == []


def test_an_agent_without_programs_answers_like_an_older_agent(settings: Settings, vault: VaultService, runtime_dir: Path) -> None:
    # In-thread, as bench/mcp_cold_start.py and tests/cli/test_mcp.py run it: no forking there.
    ready = threading.Event()
    thread = threading.Thread(target=session.serve, args=(settings, unlock_key(settings, PASSPHRASE), 600.0), kwargs={"ready": ready.set})
    thread.start()
    assert ready.wait(timeout=30)
    try:
        launcher = launch("echo")
        launcher.communicate("", timeout=60)
    finally:
        session.lock(settings)
        thread.join(timeout=30)
    assert launcher.returncode == FALLBACK


def test_no_agent_hands_nothing_over(settings: Settings, runtime_dir: Path) -> None:
    launcher = launch("echo")
    launcher.communicate("", timeout=60)
    assert launcher.returncode == FALLBACK


def test_a_program_request_without_the_three_descriptors_is_refused(agent: subprocess.Popen[str], settings: Settings) -> None:
    request = {"op": "echo", "argv": ["x"], "env": {}, "cwd": "/", "umask": 0o22}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(30)
        client.connect(str(session.socket_path(settings)))
        socket.send_fds(client, [json.dumps(request).encode() + b"\n"], [0, 1])
        with client.makefile() as replies:
            answer = json.loads(replies.readline())
    assert "error" in answer
    assert children_of(agent.pid) == []


def test_a_launcher_that_gave_up_leaves_the_child_nothing_to_do(agent: subprocess.Popen[str], settings: Settings) -> None:
    # The launcher falls back to running the command itself unless it said `go`: the child must not touch its stdin.
    request = {"op": "wait", "argv": ["x"], "env": {}, "cwd": "/", "umask": 0o22}
    read_end, write_end = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(30)
        client.connect(str(session.socket_path(settings)))
        socket.send_fds(client, [json.dumps(request).encode() + b"\n"], [read_end, 1, 2])
        with client.makefile() as replies:
            assert json.loads(replies.readline()) == {"started": True}
        child = children_of(agent.pid)[0]
    assert ends_within(child, 30)
    os.write(write_end, b"still mine\n")
    assert os.read(read_end, 100) == b"still mine\n"
    os.close(read_end)
    os.close(write_end)


def test_killing_the_agent_ends_its_children(settings: Settings, runtime_dir: Path) -> None:
    agent = start_agent(600)
    launcher = launch("wait")
    child = only_child(agent, launcher)
    agent.send_signal(signal.SIGKILL)
    agent.wait(timeout=30)
    assert ends_within(child, 30)  # PR_SET_PDEATHSIG
    launcher.communicate(timeout=30)
    assert launcher.returncode == VaultLocked.exit_code


def test_the_agent_answers_nothing_to_another_uid(settings: Settings, runtime_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # In-thread, so the test can stand in for a peer of another uid: every connection's
    # SO_PEERCRED goes through the agent's one check (a real second uid cannot even reach
    # the socket in its 0700 directory).
    ready = threading.Event()
    thread = threading.Thread(target=session.serve, args=(settings, DataKey(bytes(32)), 600.0), kwargs={"ready": ready.set})
    thread.start()
    assert ready.wait(timeout=30)
    try:
        assert session.socket_path(settings).stat().st_mode & 0o777 == 0o600
        assert session.fetch_key(settings) is not None  # the same uid is served
        with monkeypatch.context() as m:
            m.setattr(session, "_peer_uid", lambda conn: os.getuid() + 1)
            assert session.fetch_key(settings) is None
            assert session.status(settings) is None
            assert not session.lock(settings)
            assert session.run_in_agent(settings, "cli", ["ctxvault", "list"], env={}, cwd="/") is None
        assert session.status(settings) is not None  # the other uid's lock was ignored
    finally:
        session.lock(settings)
        thread.join(timeout=30)


def test_the_peer_check_accepts_only_the_agents_own_uid() -> None:
    assert session.same_user(os.getuid())
    assert not session.same_user(os.getuid() + 1)
    assert not session.same_user(0 if os.getuid() else 1)


BACKGROUND_AGENT = """
import os, sys, time
from pathlib import Path
from vault import session
from vault.crypto import DataKey
from vault.settings import Settings

log = Path(os.environ["CV_TEST_LOG"])

def wait(argv):
    print("waiting", flush=True)
    sys.stdin.read()
    return 0

def background(settings, key, paused):
    with log.open("a") as out:
        out.write(f"start {os.nice(0)}\\n")
        out.flush()
        last = None
        while not (log.parent / "stop").exists():
            if paused() != last:
                last = paused()
                out.write(f"paused {last}\\n")
                out.flush()
            time.sleep(0.01)
        (log.parent / "stop").unlink()

def ready():
    print("ready", flush=True)

session.serve(Settings.from_env(), DataKey(bytes(32)), 600.0, ready=ready, programs={"wait": wait},
              background=background, pausing={"wait"})
"""


def _log_shows(log: Path, lines: list[str]) -> None:
    """Wait (bounded) until the worker's log ends with ``lines``."""
    deadline = time.monotonic() + 30
    while (log.read_text().splitlines() if log.exists() else [])[-len(lines) :] != lines:
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.02)


def test_the_background_worker_runs_on_demand_niced_and_is_paused_while_a_pausing_program_runs(
    settings: Settings, runtime_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "log"
    monkeypatch.setenv("CV_TEST_LOG", str(log))
    agent = subprocess.Popen([sys.executable, "-c", BACKGROUND_AGENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert agent.stdout is not None
    with agent.stdout:
        assert agent.stdout.readline() == "ready\n"
    niced = f"start {min(os.nice(0) + session.BACKGROUND_NICE, 19)}"  # below the agent's own priority
    try:
        assert not log.exists()  # nothing runs until asked
        assert session.embed_backlog(settings)
        _log_shows(log, [niced, "paused False"])
        launcher = launch("wait")
        assert launcher.stdout is not None and launcher.stdout.readline() == "waiting\n"
        _log_shows(log, ["paused True"])
        assert session.embed_backlog(settings)  # asked again while it runs: once more after it ends
        launcher.communicate("", timeout=30)
        _log_shows(log, ["paused False"])
        (tmp_path / "stop").touch()
        _log_shows(log, ["paused False", niced, "paused False"])
    finally:
        session.lock(settings)
        agent.wait(timeout=30)
