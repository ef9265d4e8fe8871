"""stdio hygiene: SQLCipher's wrong-key log never reaches stderr, and stdout carries only protocol (BRIEF §4).

tests/cli/test_mcp.py already shows a locked vault leaves stdout empty; here the database
itself is unreadable with the key, which is when SQLCipher would log to file descriptor 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
