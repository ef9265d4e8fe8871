"""stdio hygiene: SQLCipher's wrong-key log never reaches stderr, and stdout carries only protocol (BRIEF §4).

tests/cli/test_mcp.py already shows a locked vault leaves stdout empty; here the database
itself is unreadable with the key, which is when SQLCipher would log to file descriptor 2.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, VaultService
from vault.crypto import new_key
from vault.store import Store

ROOT = Path(__file__).resolve().parents[2]

# Opens a database written under one key with another, in a fresh process whose fd 2 is captured.
WRONG_KEY = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import sqlcipher3
    from vault.crypto import DataKey
    from vault.errors import StoreCorrupt
    from vault.store import Store

    path, raw = Path(sys.argv[1]), sys.argv[2] == "raw"
    wrong = DataKey(bytes(32))
    if raw:
        conn = sqlcipher3.connect(str(path))
        conn.execute(f"PRAGMA key = \\"x'{wrong.hex()}'\\"")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError:
            print("refused")
    else:
        try:
            Store(path, wrong)
        except StoreCorrupt:
            print("refused")
    """
)


def open_with_a_wrong_key(tmp_path: Path, how: str) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / "other.db"
    store = Store(path, new_key())
    store.execute("CREATE TABLE t (x)")
    store.close()
    return subprocess.run([sys.executable, "-c", WRONG_KEY, str(path), how], cwd=ROOT, capture_output=True, timeout=60, check=True)


def test_a_wrong_key_writes_nothing_to_stderr(tmp_path: Path) -> None:
    done = open_with_a_wrong_key(tmp_path, "store")
    assert done.stdout == b"refused\n"
    assert done.stderr == b""


def test_sqlcipher_does_log_a_wrong_key_when_not_told_otherwise(tmp_path: Path) -> None:
    # A test of the test: without `PRAGMA cipher_log_level = NONE` the same open logs to fd 2.
    done = open_with_a_wrong_key(tmp_path, "raw")
    assert done.stdout == b"refused\n"
    assert b"hmac check failed" in done.stderr


def test_mcp_over_an_unreadable_database_prints_nothing_on_stdout(settings: Settings, vault: VaultService, tmp_path: Path) -> None:
    token = vault.add_app(OWNER, "tester").token
    vault.close()
    other = tmp_path / "other.db"
    store = Store(other, new_key())
    store.execute("CREATE TABLE t (x)")
    store.close()
    settings.db_path.write_bytes(other.read_bytes())
    for stale in settings.home.glob("vault.db-*"):
        stale.unlink()
    env = {**os.environ, "CTXVAULT_PASSPHRASE": PASSPHRASE, "CTXVAULT_APP_TOKEN": token}
    done = subprocess.run(
        [sys.executable, "-c", "from cli.app import main; main()", "mcp", "--app", "tester"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 13  # StoreCorrupt
    assert done.stdout == ""
    assert "ERROR CORE" not in done.stderr and "hmac" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # our one line, nothing from SQLCipher


# -- framing edges over real stdio (issue 29): every bad line gets a JSON-RPC error, and the server goes on --

DEEP = "[" * 300 + "]" * 300
FRAMING = [
    # (line sent, expected error code, expected id)
    (b"{bad json", -32700, None),
    (b"\xff\xfe not utf-8", -32700, None),
    (b'{"jsonrpc":"2.0","id":5,"method":"ping","params":[1]}', -32602, 5),
    (b'{"jsonrpc":"2.0","id":"six","method":"ping","x":"\\ud800"}', -32600, "six"),
    (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_context","arguments":{"query":"\\udc00"}}}', -32602, 7),
    (b'{"jsonrpc":"2.0","id":8,"method":"ping","params":{"a":' + DEEP.encode() + b"}}", -32602, 8),
    (("[" * 100_000 + "]" * 100_000).encode(), -32600, None),
    (DEEP.encode(), -32600, None),
    (b"5", -32600, None),
    (b'{"jsonrpc":"1.0","id":9,"method":"ping"}', -32600, 9),
    (b'{"jsonrpc":"2.0","id":10,"method":"prompts/get","params":{"name":"personalize","arguments":{}}}', -32602, 10),
    (b'{"jsonrpc":"2.0","id":11,"method":"prompts/get","params":{"name":"no-such-prompt"}}', -32602, 11),
]


class Wire:
    """A `ctxvault mcp` child spoken to line by line; a reply that never comes fails the test instead of hanging it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from cli.app import main; main()", "mcp", "--app", "tester"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
        )  # fmt: skip
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, raw: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(raw + b"\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, object]:
        try:
            line = self.lines.get(timeout=60)
        except queue.Empty:
            pytest.fail("no reply: the client would hang")
        answer: dict[str, object] = json.loads(line)
        return answer

    def close(self) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.pump.join(timeout=60)
        self.proc.stdout.close()
        with self.proc.stderr:
            return self.proc.stderr.read().decode("utf-8", "replace")


def test_every_malformed_stdio_line_gets_its_json_rpc_error_and_the_server_keeps_serving(vault: VaultService) -> None:
    token = vault.add_app(OWNER, "tester").token
    vault.close()
    wire = Wire({**os.environ, "CTXVAULT_PASSPHRASE": PASSPHRASE, "CTXVAULT_APP_TOKEN": token})
    try:
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}
        wire.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello}).encode())
        assert "result" in wire.reply()
        wire.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        wire.send(b'{"jsonrpc":"2.0","method":"notifications/bogus","params":[1]}')  # a notification: never answered
        wire.send(b"   ")  # a blank line: skipped
        for n, (line, code, rid) in enumerate(FRAMING):
            wire.send(line)
            answer = wire.reply()
            assert answer["id"] == rid, line[:80]
            error = answer["error"]
            assert isinstance(error, dict) and error["code"] == code, (line[:80], error)
            assert len(json.dumps(answer)) < 400  # never the input echoed back
            wire.send(json.dumps({"jsonrpc": "2.0", "id": 1000 + n, "method": "ping"}).encode())
            assert wire.reply() == {"jsonrpc": "2.0", "id": 1000 + n, "result": {}}
    finally:
        stderr = wire.close()
    assert wire.proc.returncode == 0
    assert "Traceback" not in stderr
