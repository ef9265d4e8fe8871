"""Faults a real machine does to a vault, each with its outcome (issue 27; the table in docs/reliability.md).

Here: a damaged key file says what to do; a deleted, garbled or truncated sealed index is rebuilt by
the next search; a `vault.db-wal` deleted after a crash leaves a consistent, older vault; a clock set
back keeps history and the audit chain in order. Disk full, flipped pages and read-only places have
their own files (test_storage_tmpfs.py, test_storage_faults.py, test_damaged_pages.py,
test_store_read_only.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from schemas.items import MemoryIn, SearchQuery
from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, doctor, open_vault
from vault import items as item_module
from vault.errors import KeyFileCorrupt
from vault.index import index_file

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    f"zqx note {n}: I {verb} {what}"
    for n, (verb, what) in enumerate([("drink", "green tea"), ("ride", "a red bike"), ("grow", "tomatoes")])
]


def test_a_damaged_key_file_names_the_file_and_says_to_restore_it(settings: Settings, recovery_key: str) -> None:
    good = settings.key_path.read_bytes()
    for damaged in (good[:40], b"XXXX" + good[4:], good.replace(b'"lanes": 1', b'"lanes": 2'), b""):
        settings.key_path.write_bytes(damaged)
        with pytest.raises(KeyFileCorrupt) as caught:
            open_vault(settings, PASSPHRASE)
        assert str(settings.key_path) in caught.value.message and "restore vault.key from a backup" in caught.value.message
        assert not doctor.check_key_file(settings).ok
    settings.key_path.write_bytes(good)
    open_vault(settings, PASSPHRASE).close()


def _searched(settings: Settings) -> list[str]:
    with open_vault(settings, PASSPHRASE) as svc:
        return [h.item_id for h in svc.search(OWNER, SearchQuery(text="what do I drink", limit=3, mode="dense")).hits]


@pytest.mark.parametrize("damage", ["deleted", "garbled", "truncated", "empty"])
def test_a_deleted_or_corrupt_index_is_rebuilt_by_the_next_search(settings: Settings, recovery_key: str, damage: str) -> None:
    with open_vault(settings, PASSPHRASE) as svc:
        for text in TEXTS:
            svc.remember(OWNER, MemoryIn(text=text))
    before = _searched(settings)
    path = index_file(settings.index_dir, settings.model)
    assert path.exists() and before
    sealed = path.read_bytes()
    if damage == "deleted":
        path.unlink()
    else:
        path.write_bytes({"garbled": b"not an index" * 40, "truncated": sealed[: len(sealed) // 2], "empty": b""}[damage])
    assert _searched(settings) == before
    assert path.exists() and path.read_bytes() != b""
    with open_vault(settings, PASSPHRASE) as svc:
        report = svc.doctor(OWNER)  # the rebuilt cache is whole
    assert report.healthy, report


# Writes two memories and dies (SIGKILL-like: no close, no checkpoint): they are committed in vault.db-wal only.
_CRASH_AFTER_WRITES = """
import os, sys
from schemas.items import MemoryIn
from tests.conftest import PASSPHRASE
from tests.vault.portable.conftest import fake_vectors
from vault import OWNER, Settings, open_vault
svc = open_vault(Settings.from_env(), PASSPHRASE)
svc._retriever.sync = lambda *a, **k: fake_vectors(svc)
for n in range(2):
    print(svc.remember(OWNER, MemoryIn(text=f"zqx acknowledged before the crash {n}")).item.id, flush=True)
os._exit(9)
"""


def test_a_wal_deleted_after_a_crash_leaves_a_consistent_older_vault(settings: Settings, recovery_key: str) -> None:
    """The outcome docs/architecture.md "Files that travel together" states: the writes only in the -wal are gone,
    everything checkpointed is whole, the audit chain verifies and doctor finds nothing broken."""
    with open_vault(settings, PASSPHRASE) as svc:
        kept = [svc.remember(OWNER, MemoryIn(text=text)).item.id for text in TEXTS]
    child = subprocess.run(
        [sys.executable, "-c", _CRASH_AFTER_WRITES], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 9, child.stderr
    acknowledged = child.stdout.split()
    wal = settings.db_path.with_name(settings.db_path.name + "-wal")
    assert len(acknowledged) == 2 and wal.stat().st_size > 0
    wal.unlink()
    with open_vault(settings, PASSPHRASE) as svc:
        assert svc.store.query("PRAGMA integrity_check")[0][0] == "ok"
        ids = {r[0] for r in svc.store.query("SELECT id FROM items")}
        assert set(kept) <= ids
        assert not ids & set(acknowledged)  # lost with the -wal: the reason it must travel with vault.db
        svc.verify_audit(OWNER)
        report = svc.doctor(OWNER)
        if not report.healthy:  # the sealed index may hold the lost writes' vectors: a derived part, repaired
            assert {c.part for c in report.checks if not c.ok} <= {"sealed index", "vectors"}, report
            report = svc.doctor(OWNER, repair=True)
        assert report.healthy, report


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[timedelta]]:
    """The vault's clock (``utcnow`` wherever it was imported, and the ids' milliseconds), shifted by ``clock[0]``."""
    shift = [timedelta(0)]
    real_now, real_ns = item_module.utcnow, time.time_ns

    def now() -> datetime:
        return real_now() + shift[0]

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("vault", "mcp_server", "cli") and getattr(module, "utcnow", None) is real_now:
            monkeypatch.setattr(module, "utcnow", now)
    monkeypatch.setattr(time, "time_ns", lambda: real_ns() + int(shift[0].total_seconds() * 1e9))
    yield shift


def test_a_clock_set_back_keeps_history_and_the_audit_chain_in_order(settings: Settings, recovery_key: str, clock: list[timedelta]) -> None:
    with open_vault(settings, PASSPHRASE) as svc:
        first = svc.remember(OWNER, MemoryIn(text=TEXTS[0])).item
        clock[0] = timedelta(days=-3)  # NTP steps the clock back, or the machine boots with a wrong one
        second = svc.remember(OWNER, MemoryIn(text=TEXTS[1])).item
        svc.edit(OWNER, first.id, text="zqx note 0: I drink black tea now")
        clock[0] = timedelta(days=-4)
        svc.edit(OWNER, first.id, text="zqx note 0: I drink rooibos")
        svc.forget(OWNER, second.id)
        assert second.provenance.created_at < first.provenance.created_at  # the vault records what the clock said

        history = svc.item_history(OWNER, first.id)
        assert [v.version for v in history.versions] == [1, 2] and history.current_version == 3
        assert [v.text for v in history.versions] == [TEXTS[0], "zqx note 0: I drink black tea now"]
        assert svc.get_item(OWNER, first.id).text == "zqx note 0: I drink rooibos"
        assert [i.id for i in svc.list_items(OWNER, limit=10).items] == [first.id]
        assert [h.item_id for h in svc.search(OWNER, SearchQuery(text="rooibos", limit=3, mode="lexical")).hits] == [first.id]

        report = svc.verify_audit(OWNER)
        entries = svc.audit_entries(OWNER, limit=50)
        assert report.entries == len(entries)
        seqs = [e.seq for e in entries]
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
        writes = sorted((e for e in entries if e.event == "write"), key=lambda e: e.seq)
        assert len(writes) >= 4 and writes[-1].at < writes[0].at  # stamped as the clock said, chained by sequence
    clock[0] = timedelta(0)  # the clock is put right: the vault reopens and verifies as it was
    with open_vault(settings, PASSPHRASE) as svc:
        svc.verify_audit(OWNER)
        assert svc.remember(OWNER, MemoryIn(text=TEXTS[2])).action == "added"
        assert svc.doctor(OWNER).healthy
