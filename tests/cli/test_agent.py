"""Every command answers the same through the unlock agent as in its own process.

One vault, populated once, is restored from a snapshot before each run; each command runs
twice as a user runs it, through the installed `ctxvault` launcher: once with an unlock
session (no passphrase in the environment: only the agent can open the vault) and once
with no session at all (the passphrase in the environment, the cold in-process path).
stdout, stderr and the exit code must be identical. Only values made afresh by each run
are normalised: the ids and timestamps of what a command creates, and app tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup

from cli.agent import run_cli
from cli.app import app
from cli.entry import AGENT_COMMAND, IN_PROCESS, program_for
from schemas.items import MemoryIn
from tests.conftest import FAST_KDF_ENV, PASSPHRASE
from vault import OWNER, Settings, init_vault, open_vault
from vault.errors import VaultExists

ROOT = Path(__file__).resolve().parents[2]
CTXVAULT = Path(sys.executable).with_name("ctxvault")  # the console script pip installed
# The installed console script's code, reporting at exit whether the CLI was imported here.
LAUNCHER = (
    "import atexit, sys\n"
    "out = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(out, 'w').write(str('cli.app' in sys.modules)))\n"
    "from cli.entry import main\n"
    "sys.argv[0] = 'ctxvault'\n"
    "main()\n"
)

# Every command of the typer app, with the command lines that exercise it ({…}: made by the fixture).
COMMANDS: dict[str, list[list[str]]] = {
    "add": [["add", "I take the night train to Vienna", "--tag", "travel"], ["add", "I drink my coffee black", "--json"], ["add", "-"]],
    "apps": [["apps"]],
    "apps add": [["apps", "add", "newcomer", "--json"]],
    "apps list": [["apps", "list"], ["apps", "list", "--json"]],
    "apps remove": [["apps", "remove", "tester"], ["apps", "remove", "nobody"]],
    "apps rotate-token": [["apps", "rotate-token", "tester", "--json"]],
    "apps show": [["apps", "show", "tester"]],
    "audit": [["audit"], ["audit", "--json", "--limit", "3"]],
    "audit verify": [["audit", "verify"]],
    "conflicts": [["conflicts"], ["conflicts", "--json"], ["conflicts", "--resolve", "99"]],
    "connect": [["connect", "cursor", "--app", "tester", "--print"]],
    "consent": [["consent"]],
    "consent approve": [["consent", "approve", "{consent}"], ["consent", "approve", "{consent:.12}", "--json"]],
    "consent deny": [["consent", "deny", "{consent}", "--json"]],
    "consent list": [["consent", "list"], ["consent", "list", "--all", "--json"]],
    "doc": [["doc"]],
    "doctor": [["doctor"], ["doctor", "--json"]],
    "doc add": [["doc", "add", "{tmp}/trip.md", "--space", "travel"], ["doc", "add", "{tmp}/missing.md"]],
    "doc list": [["doc", "list"]],
    "doc remove": [["doc", "remove", "{document}"]],
    "doc show": [["doc", "show", "{document}", "--json"]],
    "edit": [["edit", "{memory}", "--text", "I prefer aisle seats"], ["edit", "{memory}"]],
    "export": [["export", "--format", "markdown"], ["export", "--format", "nonsense"], ["export", "--format", "markdown", "-o", "-"]],
    "forget": [["forget", "{memory}"]],
    "grant": [["grant", "tester", "search:memories#space=work", "--json"], ["grant", "tester", "not a scope"]],
    "grants": [["grants"]],
    "grants list": [["grants", "list"], ["grants", "list", "--json"]],
    "grants revoke": [["grants", "revoke", "--app", "tester"]],
    "history": [["history", "{memory}"], ["history", "{memory}", "--json"], ["history", "01AAAAAAAAAAAAAAAAAAAAAAAA"]],
    "import": [["import", "{tmp}/memory.jsonl", "--dry-run"], ["import", "{tmp}/memory.jsonl", "--json"]],
    "list": [["list"], ["list", "--json", "--limit", "2"], ["list", "--limit", "0"], ["list", "--help"], ["list", "-h"]],
    "mcp": [["mcp", "--app", "tester"], ["mcp", "--app", "nobody"]],
    "pref": [["pref"]],
    "pref get": [["pref", "get", "diet"], ["pref", "get", "nothing-here"]],
    "pref history": [["pref", "history", "diet"]],
    "pref list": [["pref", "list"], ["pref", "list", "--json"]],
    "pref set": [["pref", "set", "diet", "vegan"], ["pref", "set", "bad key!", "x"]],
    "pref unset": [["pref", "unset", "diet", "--json"]],
    "reindex": [["reindex", "--json"]],
    "restore": [["restore", "{memory}", "--version", "1", "--json"], ["restore", "{memory}", "--version", "9"]],
    "search": [["search", "coffee"], ["search", "train", "--json", "--k", "2"], ["search", "x", "--mode", "nope"]],
    "show": [["show", "{memory}"], ["show", "01AAAAAAAAAAAAAAAAAAAAAAAA", "--json"], ["show", "{memory:.12}"]],
    "spaces": [["spaces"], ["spaces", "--json"]],
    "stats": [["stats"]],
    "status": [["status"], ["status", "--json"]],
}

_ID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)?")
_TOKEN = re.compile(r"cvt_[A-Za-z0-9_-]+")


def command_paths(group: TyperGroup, prefix: str = "") -> Iterator[str]:
    for name, cmd in group.commands.items():
        path = f"{prefix}{name}"
        yield path
        if isinstance(cmd, TyperGroup):
            yield from command_paths(cmd, f"{path} ")


@dataclass
class Fixture:
    home: Path
    snapshot: Path
    tmp: Path
    runtime: Path
    ids: dict[str, str]

    def restore(self) -> None:
        shutil.rmtree(self.home)
        shutil.copytree(self.snapshot, self.home)

    def env(self, *, session_runs: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("CTXVAULT_PASSPHRASE", "CTXVAULT_APP_TOKEN")} | FAST_KDF_ENV
        env["CTXVAULT_HOME"] = str(self.home)
        if session_runs:
            return env | {"CTXVAULT_RUNTIME_DIR": str(self.runtime)}
        # No session can be found: the cold path, unlocked with the passphrase.
        return env | {"CTXVAULT_RUNTIME_DIR": str(self.tmp / "no-session"), "CTXVAULT_PASSPHRASE": PASSPHRASE}

    def run(self, argv: list[str], *, session_runs: bool, **extra: str) -> tuple[subprocess.CompletedProcess[bytes], bool]:
        """One command line as a user runs it; the result and whether the CLI ran in the launcher's process."""
        self.restore()
        report = self.tmp / "report"
        command = [sys.executable, "-c", LAUNCHER, str(report), *argv]
        env = self.env(session_runs=session_runs) | extra
        done = subprocess.run(command, env=env, cwd=self.tmp, input=b"", capture_output=True, timeout=300)
        return done, report.read_text() == "True"


@pytest.fixture(scope="module")
def walked() -> Iterator[Fixture]:
    base = Path(tempfile.mkdtemp(prefix="cv-walk-"))
    fx = Fixture(home=base / "vault", snapshot=base / "snapshot", tmp=base / "work", runtime=base / "rt", ids={})
    fx.tmp.mkdir()
    (fx.tmp / "no-session").mkdir(mode=0o700)
    fx.runtime.mkdir(mode=0o700)
    (fx.tmp / "trip.md").write_text("# Vienna\n\nThe night train leaves at nine and arrives at dawn.\n")
    (fx.tmp / "notes.md").write_text("# Notes\n\nThe spare key is under the blue pot.\n")
    memory_json = {"type": "entity", "name": "Ada", "entityType": "person", "observations": ["Ada likes rowing"]}
    (fx.tmp / "memory.jsonl").write_text(json.dumps(memory_json) + "\n")
    settings = Settings.from_env(env={**FAST_KDF_ENV, "CTXVAULT_HOME": str(fx.home)})
    init_vault(settings, PASSPHRASE)
    svc = open_vault(settings, PASSPHRASE)
    try:
        fx.ids["memory"] = svc.remember(OWNER, MemoryIn(text="I prefer window seats on long flights", space="travel")).item.id
        svc.edit(OWNER, fx.ids["memory"], text="I prefer window seats on long night flights")  # a version for history/restore
        svc.remember(OWNER, MemoryIn(text="My sister lives in Lyon", tags=["family"]))
        svc.set_preference(OWNER, "diet", "vegetarian", space="health")
        svc.set_preference(OWNER, "diet", "vegetarian, no mushrooms", space="health")
        fx.ids["document"] = svc.add_document(OWNER, fx.tmp / "notes.md").item_id
        svc.add_app(OWNER, "tester")
        svc.grant(OWNER, "tester", ["read:preferences"])
        tester = svc.principal_for_app("tester")
        fx.ids["consent"] = svc.request_access(tester, ["search:memories#space=travel"], purpose="plan trips").id
    finally:
        svc.close()
    shutil.copytree(fx.home, fx.snapshot)
    started = subprocess.run(
        [str(CTXVAULT), "unlock", "--timeout", "30m", "--json"],
        env=fx.env(session_runs=True) | {"CTXVAULT_PASSPHRASE": PASSPHRASE}, cwd=ROOT, capture_output=True, timeout=120,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        yield fx
    finally:
        locked = subprocess.run([str(CTXVAULT), "lock", "--json"], env=fx.env(session_runs=True), capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
    assert json.loads(locked.stdout) == {"locked": True}


def normalised(text: bytes) -> str:
    return _TOKEN.sub("cvt_TOKEN", _TIME.sub("TIME", _ID.sub("ID", text.decode())))


def test_every_command_is_walked() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    every = set(command_paths(root))
    assert set(COMMANDS) | IN_PROCESS == every
    assert not set(COMMANDS) & IN_PROCESS


CASES = [pytest.param(argv, id=" ".join(argv)) for argvs in COMMANDS.values() for argv in argvs]


@pytest.mark.parametrize("argv", CASES)
def test_a_command_answers_alike_through_the_agent_and_in_its_own_process(walked: Fixture, argv: list[str]) -> None:
    args = [a.format(tmp=walked.tmp, **walked.ids) for a in argv]
    warm, warm_here = walked.run(args, session_runs=True)
    cold, cold_here = walked.run(args, session_runs=False)
    assert (warm_here, cold_here) == (False, True)  # the agent's child ran one, this process the other
    assert warm.returncode == cold.returncode
    assert normalised(warm.stdout) == normalised(cold.stdout)
    assert normalised(warm.stderr) == normalised(cold.stderr)


def test_a_command_kept_in_process_runs_in_the_launcher_with_a_session(walked: Fixture) -> None:
    done, here = walked.run(["init"], session_runs=True, CTXVAULT_PASSPHRASE=PASSPHRASE)
    assert here
    assert done.returncode == VaultExists.exit_code
    assert all(program_for(command) is None for command in IN_PROCESS)
    assert program_for(AGENT_COMMAND) == AGENT_COMMAND


def test_the_agents_warm_index_sees_a_write_made_by_another_process(walked: Fixture) -> None:
    """The agent holds the sealed index loaded (vault/sealed_index.py); a write made without the session must still be found."""
    walked.restore()
    query = [sys.executable, "-c", LAUNCHER, str(walked.tmp / "report"), "search", "beekeeping on the roof", "--mode", "dense", "--k", "1"]
    env = walked.env(session_runs=True)
    before = subprocess.run(query, env=env, cwd=walked.tmp, capture_output=True, timeout=300)
    assert before.returncode == 0 and b"bees" not in before.stdout, before.stderr
    cold = subprocess.run(
        [str(CTXVAULT), "add", "I keep bees on the roof of my house"], env=walked.env(session_runs=False),
        cwd=ROOT, capture_output=True, timeout=300,
    )  # fmt: skip
    assert cold.returncode == 0, cold.stderr
    after = subprocess.run(query, env=env, cwd=walked.tmp, capture_output=True, timeout=300)
    assert after.returncode == 0 and (walked.tmp / "report").read_text() == "False", after.stderr
    assert b"I keep bees on the" in after.stdout


LEAN = (
    "import atexit, json, sys\n"
    "out = sys.argv.pop(1)\n"
    "roots = ('vault', 'cli', 'schemas', 'typer', 'click', 'rich', 'pydantic', 'cryptography', 'platformdirs', 'numpy', 'dataclasses')\n"
    "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in roots))))\n"
    "from cli.entry import main\n"
    "sys.argv[0] = 'ctxvault'\n"
    "main()\n"
)


def test_a_launcher_that_hands_over_imports_only_the_agent_client(walked: Fixture) -> None:
    # python -X importtime: these cost ~20 ms of CPU; Settings alone (cryptography, platformdirs) cost ~50 ms more.
    report = walked.tmp / "modules.json"
    walked.restore()
    env = walked.env(session_runs=True)
    done = subprocess.run([sys.executable, "-c", LEAN, str(report), "status"], env=env, cwd=walked.tmp, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text()) == ["cli", "cli.entry", "vault", "vault.agent_client", "vault.errors"]


def on_a_terminal(fx: Fixture, argv: list[str], *, session_runs: bool) -> bytes:
    """What `ctxvault ARGV` writes to a terminal (a pty as its stdout)."""
    fx.restore()
    env = fx.env(session_runs=session_runs) | {"TERM": "xterm-256color"}
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "TTY_COMPATIBLE"):
        env.pop(name, None)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [str(CTXVAULT), *argv], env=env, cwd=fx.tmp, stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.DEVNULL
    )
    os.close(secondary)
    out = b""
    with contextlib.suppress(OSError):  # EIO once the command has exited and closed the terminal
        while chunk := os.read(primary, 65536):
            out += chunk
    os.close(primary)
    assert proc.wait(timeout=300) == 0
    return out


def test_a_terminal_gets_the_same_colours_through_the_agent(walked: Fixture) -> None:
    # The agent's consoles were built with /dev/null as stdout; a child rebuilds them for its terminal.
    warm = on_a_terminal(walked, ["search", "window seats"], session_runs=True)
    cold = on_a_terminal(walked, ["search", "window seats"], session_runs=False)
    assert b"\x1b[1m" in cold  # the score is bold on a terminal
    assert warm == cold


@pytest.mark.parametrize("command", sorted(IN_PROCESS | {AGENT_COMMAND}))
def test_the_agents_cli_program_refuses_what_it_must_not_run(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["ctxvault", "--vault", "/nowhere", command]) == 2
    assert "does not run this command" in capsys.readouterr().err
