"""Planning an import: the same decisions however the vault is read."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.portable import Selection
from tests.conftest import PASSPHRASE
from tests.vault.portable.conftest import DIM, REPO, fake_vectors, populate
from vault import OWNER, Settings, VaultService, open_vault
from vault.errors import BadBundle
from vault.index import VectorIndex
from vault.items import new_ids, unit_text
from vault.portable.importers import read_source
from vault.portable.merge import _lookup, _steps, write_order
from vault.portable.records import ImportBatch, ItemRecord, VectorSet
from vault.search import BACKGROUND_NICE

# Few instants, some equal across offsets (12:00 UTC is 14:00 at +02:00), and few ids: ties on either key are common.
_INSTANTS = [
    datetime(2024, 1, 1, 12, tzinfo=UTC),
    datetime(2024, 1, 1, 14, tzinfo=timezone(timedelta(hours=2))),
    datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2023, 12, 31, tzinfo=timezone(timedelta(hours=-5))),
]


@given(st.lists(st.tuples(st.sampled_from(_INSTANTS), st.sampled_from([None, "", "01A", "01B", "01C"])), max_size=40))
def test_records_are_written_in_the_order_of_their_instant_then_id(cells: list[tuple[datetime, str | None]]) -> None:
    """write_order's two stable sorts give exactly the order (and, among equals, the source order) of one sort on the pair."""
    records = [
        ItemRecord(id=i, kind="memory", text=f"t{n}", space="personal", created_at=at, updated_at=at) for n, (at, i) in enumerate(cells)
    ]
    assert [id(r) for r in write_order(records)] == [id(r) for r in sorted(records, key=lambda r: (r.created_at, r.id or ""))]


def test_reading_the_vaults_side_plans_exactly_as_probing_it(source: VaultService, tmp_path: Path) -> None:
    """An import reads the vault's ids and live hashes whole when the vault is the smaller side, and probes
    them per record otherwise: every record must get the same decision either way."""
    populate(source, memories=40, documents=2)
    source.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    batch = read_source(tmp_path / "plain")
    memories = [r for r in batch.records if r.kind == "memory"]
    source.forget(OWNER, memories[0].id or "")
    later = datetime(2099, 1, 1, tzinfo=UTC)
    records = (
        *(
            dataclasses.replace(r, text=f"{r.text} (revised)", hash=None, updated_at=later) if r in memories[1:4] else r
            for r in batch.records
        ),
        *(dataclasses.replace(r, id=None, hash=None) for r in memories[4:8]),  # the same text as a live item: a twin
        *(dataclasses.replace(r, id=None, text=f"new {n}", hash=None) for n, r in enumerate(memories[8:10])),
    )
    batch = dataclasses.replace(batch, records=records)

    def decisions(scan: bool) -> list[tuple[str, str | None, str | None]]:
        known = _lookup(source.store, batch, scan=scan)
        return [(s.action, s.reason, s.item_id if s.action != "new" else s.record.id) for s in _steps(batch, known, None, "test")]

    probed, scanned = decisions(scan=False), decisions(scan=True)
    assert scanned == probed
    actions = [a for a, _, _ in probed]
    assert {"new", "updated", "unchanged", "skipped"} <= set(actions) and actions.count("updated") == 3


def test_bulk_written_items_get_the_units_and_vectors_a_single_write_gives_them(source: VaultService) -> None:
    """New items go in growing batches whose units are mostly copied from the item rows just inserted, numbered
    by position: every live item must get exactly the unit a single write gives it (vault.items.unit_text), under
    the uid that FTS and its vector use; superseded and historical versions get none."""
    t0 = datetime(2024, 5, 8, 9, 30, tzinfo=UTC)
    source.set_preference(OWNER, "diet", "vegan", space="personal", now=t0 + timedelta(days=400))  # newer than the batch's
    ids = new_ids(4000)
    records: list[ItemRecord] = []
    for n, item_id in enumerate(ids):
        at = t0 + timedelta(minutes=n)
        text = f"note zq{n}x about {('tea', 'trains', 'café 東京')[n % 3]}"
        text += " yesterday" if n % 13 == 0 else ""  # a date context: the unit differs from the item
        text += "\x00 after a nul" if n % 501 == 0 else ""  # SQLite's length() stops at a nul
        preference = n % 97 == 0
        records.append(
            ItemRecord(
                id=item_id, kind="preference" if preference else "memory", text=text, space="personal", created_at=at,
                updated_at=at, key=("diet" if n == 0 else f"k{n}") if preference else None,
                superseded_at=at if n % 89 == 1 else None,
            )
        )  # fmt: skip
    rng = np.random.default_rng(5)
    vecs = {(r.id or "", 0): rng.standard_normal(DIM).astype("<f4") for r in records if r.kind == "memory"}
    batch = ImportBatch("bundle", "test", tuple(records), VectorSet.from_rows(source.settings.model, DIM, vecs))
    summary = source.import_items(OWNER, batch)
    assert summary.new == len(records)

    store = source.store
    units = {row["item_id"]: row for row in store.query("SELECT * FROM units")}
    history = store.one("SELECT superseded_at FROM items WHERE id = ?", [ids[0]])
    assert history is not None and history[0] is not None  # the vault's diet is newer: the batch's is kept as history
    for r in records:
        if r.superseded_at is not None or r.id == ids[0]:
            assert r.id not in units
            continue
        unit = units[r.id]
        expected = unit_text(r.kind, r.text, r.key, at=r.created_at)
        assert (unit["seq"], unit["text"], unit["start"], unit["end"]) == (0, expected, 0, len(expected))
        n = int(r.text.split("zq")[1].split("x")[0])
        if n % 50 == 0:  # the FTS row of the unit is the unit's uid
            assert [row[0] for row in store.query("SELECT rowid FROM units_fts WHERE units_fts MATCH ?", [f"zq{n}x"])] == [unit["uid"]]
    stored = {row[0]: bytes(row[1]) for row in store.query("SELECT uid, vec FROM vectors")}
    carried = {units[r.id]["uid"]: (r.id or "", 0) for r in records if r.kind == "memory" and r.id in units}
    for uid, key in carried.items():
        assert stored[uid] == vecs[key].astype("<f2").tobytes()
    indexed = set(source._retriever._ensure_index().ids().tolist())
    assert set(carried) <= indexed <= set(stored)  # (the fake sync stores the preferences' vectors without indexing them)


def test_an_import_without_foreign_key_checks_leaves_every_row_with_its_parent(source: VaultService) -> None:
    """An import runs with foreign keys off (Store.transaction): its units, vectors and links must still
    reference rows that exist, the vectors of the units it replaces must go with them (the cascade is done
    by hand), and the checks must be on again afterwards, after a failed import too."""
    populate(source, memories=200, documents=2)
    store = source.store
    edited = store.query("SELECT id, text, created_at FROM items WHERE kind = 'memory' AND superseded_at IS NULL ORDER BY id LIMIT 20")
    diet = store.one("SELECT id FROM items WHERE pref_key = 'diet' AND superseded_at IS NULL")
    assert len(edited) == 20 and diet is not None
    replaced = store.query(
        "SELECT v.uid FROM vectors v JOIN units u ON u.uid = v.uid WHERE u.item_id IN (SELECT value FROM json_each(?))",
        [json.dumps([row["id"] for row in edited] + [diet["id"]])],
    )
    assert len(replaced) == 21
    later = datetime(2030, 1, 1, tzinfo=UTC)
    records = [
        ItemRecord(
            id=row["id"], kind="memory", text=row["text"] + " edited", space="personal",
            created_at=datetime.fromisoformat(row["created_at"]), updated_at=later,
        )
        for row in edited
    ]  # fmt: skip
    records.append(
        ItemRecord(id=None, kind="preference", key="diet", text="pescatarian", space="personal", created_at=later, updated_at=later)
    )
    records += [
        ItemRecord(
            id=item_id, kind="memory", text=f"follow-up {n}", space="personal", created_at=later, updated_at=later, supersedes=row["id"]
        )
        for n, (item_id, row) in enumerate(zip(new_ids(5), edited, strict=False))
    ]
    summary = source.import_items(OWNER, ImportBatch("bundle", "test", tuple(records)))
    assert (summary.updated, summary.new) == (20, 6)

    assert store.query("PRAGMA foreign_key_check") == []
    assert store.query("SELECT uid FROM vectors WHERE uid NOT IN (SELECT uid FROM units)") == []
    assert store.query("SELECT uid FROM units WHERE item_id NOT IN (SELECT id FROM items)") == []
    assert store.query("SELECT count(*) FROM vectors v JOIN units u ON u.uid = v.uid WHERE u.item_id = ?", [edited[0]["id"]])[0][0] == 1
    assert store.one("PRAGMA foreign_keys")[0] == 1

    twice = ItemRecord(id=new_ids(1)[0], kind="memory", text="twice", space="personal", created_at=later, updated_at=later)
    with pytest.raises(BadBundle):
        source.import_items(OWNER, ImportBatch("bundle", "test", (twice, twice)))
    assert store.one("PRAGMA foreign_keys")[0] == 1
    assert store.query("PRAGMA foreign_key_check") == []


def test_a_bulk_imports_index_work_runs_at_background_priority_and_the_worker_after_it_does_not(
    source: VaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows writer is an import's critical path: the index adds beside it yield the CPU to it, and the
    worker that searches use afterwards is a fresh thread at the process's priority."""

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen: list[int] = []
    add = VectorIndex.add

    def observed(self: VectorIndex, *args: Any, **kwargs: Any) -> None:
        seen.append(nice())
        add(self, *args, **kwargs)

    monkeypatch.setattr(VectorIndex, "add", observed)
    t0 = datetime(2024, 5, 8, tzinfo=UTC)
    records = [
        ItemRecord(id=item_id, kind="memory", text=f"note {n} about trains", space="personal", created_at=t0, updated_at=t0)
        for n, item_id in enumerate(new_ids(200))
    ]
    rng = np.random.default_rng(6)
    vecs = {(r.id or "", 0): rng.standard_normal(DIM).astype("<f4") for r in records}
    source.import_items(OWNER, ImportBatch("bundle", "test", tuple(records), VectorSet.from_rows(source.settings.model, DIM, vecs)))
    assert seen and all(p >= BACKGROUND_NICE for p in seen)
    assert source._retriever._worker().submit(nice).result() == nice()


# Runs in a child process: a bulk import that dies (no rollback, no close) once three batches are written.
_CRASHING_IMPORT = """
import os, sys
import numpy as np
from datetime import UTC, datetime
from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, open_vault
from vault.items import new_ids
from vault.portable import merge
from vault.portable.records import ImportBatch, ItemRecord, VectorSet

svc = open_vault(Settings.from_env(), PASSPHRASE)
svc.store.execute("PRAGMA cache_size = 50")  # pages spill to the database file midway, as a big import's do
run, batches = merge._Queue._run, []
def run_then_die(self, statements, checks):
    run(self, statements, checks)
    batches.append(len(statements))
    if len(batches) == 3:
        os._exit(9)
merge._Queue._run = run_then_die
at = datetime(2030, 1, 1, tzinfo=UTC)
ids = new_ids(12_000)
records = tuple(
    ItemRecord(id=i, kind="memory", text=f"zqxcrashmarker{n} imported", space="personal", created_at=at, updated_at=at)
    for n, i in enumerate(ids)
)
vecs = np.random.default_rng(0).standard_normal((len(ids), 384)).astype(np.float32)
vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
svc.import_items(OWNER, ImportBatch("bundle", "test", records, VectorSet(svc.settings.model, 384, [(i, 0) for i in ids], vecs)))
sys.exit("the import ended")
"""


def test_an_import_killed_midway_leaves_the_vault_as_it_was_and_nothing_readable_on_disk(settings: Settings, recovery_key: str) -> None:
    """A bulk import runs on the WAL (Store.transaction): killed after its pages spilled, it must leave a WAL
    holding only ciphertext and no rollback journal, and the next open must find the vault as it was."""
    svc = open_vault(settings, PASSPHRASE)
    svc._retriever.sync = lambda *a, **k: fake_vectors(svc)  # type: ignore[method-assign]
    populate(svc, memories=300, documents=1)
    before = svc.store.query("SELECT id, text, content_hash FROM items ORDER BY id")
    units = svc.store.query("SELECT count(*) FROM units")[0][0]
    svc.close()
    size = settings.db_path.stat().st_size

    child = subprocess.run(
        [sys.executable, "-c", _CRASHING_IMPORT], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert child.returncode == 9, child.stderr
    journal = settings.db_path.with_name(settings.db_path.name + "-journal")
    assert not journal.exists()
    assert settings.db_path.with_name(settings.db_path.name + "-wal").stat().st_size > 4096  # the uncommitted pages
    assert settings.db_path.stat().st_size == size  # the database file holds only committed pages
    on_disk = b"".join(p.read_bytes() for p in settings.home.rglob("*") if p.is_file())
    assert b"zqxcrashmarker" not in on_disk and b"I like" not in on_disk

    with open_vault(settings, PASSPHRASE) as again:
        assert again.store.query("PRAGMA integrity_check")[0][0] == "ok"
        assert again.store.query("SELECT id, text, content_hash FROM items ORDER BY id") == before
        assert again.store.query("SELECT count(*) FROM units")[0][0] == units
        assert again.store.query("SELECT count(*) FROM units_fts WHERE units_fts MATCH 'zqxcrashmarker1'")[0][0] == 0
        assert again.store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert not journal.exists()
