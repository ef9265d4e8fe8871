"""Ctrl-C during `import` says what it left: committed rows waiting for vectors, and what to run (issue 27).

A real `ctxvault import` in its own process gets a real SIGINT once its rows are committed
(seen by a reader on the WAL) and while it embeds them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlcipher3

from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, init_vault, open_vault
from vault.unlock import unlock_key

ROOT = Path(__file__).resolve().parents[2]
CODE = "import sys; sys.argv[0] = 'ctxvault'; from cli.entry import main; main()"


def _items(settings: Settings, key_hex: str) -> int:
    conn = sqlcipher3.connect(str(settings.db_path))
    try:
        conn.execute(f"PRAGMA key = \"x'{key_hex}'\"")
        return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])
    except sqlcipher3.Error:
        return 0
    finally:
        conn.close()


def test_an_import_interrupted_while_embedding_says_what_waits_and_what_to_run(settings: Settings, tmp_path: Path) -> None:
    init_vault(settings, PASSPHRASE)
    key = unlock_key(settings, PASSPHRASE).hex()
    source = tmp_path / "memory.jsonl"
    with source.open("w") as f:
        for i in range(12_000):
            entity = {"type": "entity", "name": f"Person{i}", "entityType": "person", "observations": [f"Person{i} rows on lake {i}"]}
            f.write(json.dumps(entity) + "\n")
    env = {**os.environ, "CTXVAULT_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CODE, "import", str(source)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while _items(settings, key) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "interrupted after the import committed" in err
    assert "wait for their vectors" in err and "ctxvault reindex" in err
    with open_vault(settings, PASSPHRASE) as svc:
        assert svc.status(OWNER).items == 12_000
        assert svc.retrieval_stats(OWNER).missing_vectors > 0
        report = svc.doctor(OWNER)
        assert {c.part for c in report.checks if not c.ok} == {"vectors"} and report.repairable
