"""`doctor` finds each damaged part, and `repair` rebuilds the derived ones from canonical rows only (issue 27)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

import vault.search as search_module
from schemas.items import MemoryIn, SearchQuery
from vault import OWNER, VaultService, doctor
from vault.errors import VaultReadOnly
from vault.index import index_file

CANONICAL = ["items", "doc_files", "audit", "audit_head", "apps", "grants", "_migrations", "tombstones"]


def _fill(vault: VaultService, tmp_path: Path, n: int = 6) -> list[str]:
    ids = [vault.remember(OWNER, MemoryIn(text=f"zqx note number {i} about trains and tea")).item.id for i in range(n)]
    vault.set_preference(OWNER, "diet", "vegetarian")
    note = tmp_path / "trip.md"
    note.write_text("# Trip\n\n" + "We took the night train to Vienna. " * 80)
    vault.add_document(OWNER, note, space="travel")
    vault._retriever.sync()
    return ids


def _canonical(vault: VaultService) -> str:
    """A digest of every canonical table's rows: a repair must leave it as it was."""
    digest = hashlib.sha256()
    for table in CANONICAL:
        if vault.store.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table]) is None:
            continue
        for row in sorted(repr(tuple(r)) for r in vault.store.query(f"SELECT * FROM {table}")):
            digest.update(row.encode())
    return digest.hexdigest()


def _failing(report: doctor.DoctorReport) -> set[str]:
    return {c.part for c in report.checks if not c.ok}


def test_a_fresh_vault_is_healthy(vault: VaultService, tmp_path: Path) -> None:
    _fill(vault, tmp_path)
    report = vault.doctor(OWNER)
    assert report.healthy, doctor.describe(report)
    assert not report.read_only
    assert {c.part for c in report.checks} == {
        "key file", "database", "migrations", "keyword index", "units", "vectors", "sealed index", "audit log",
    }  # fmt: skip
    assert report.to_dict()["healthy"] is True


def _drop_fts_row(vault: VaultService) -> None:
    row = vault.store.one("SELECT uid, text FROM units ORDER BY uid LIMIT 1")
    assert row is not None
    vault.store.execute("INSERT INTO units_fts (units_fts, rowid, text) VALUES ('delete', ?, ?)", [row[0], row[1]])


def _edit_unit(vault: VaultService) -> None:
    vault.store.execute("UPDATE units SET text = 'tampered words' WHERE uid = (SELECT min(uid) FROM units)")


def _delete_unit(vault: VaultService) -> None:
    vault.store.execute("DELETE FROM units WHERE uid = (SELECT min(uid) FROM units)")


def _delete_vectors(vault: VaultService) -> None:
    vault.store.execute("DELETE FROM vectors WHERE uid IN (SELECT uid FROM units ORDER BY uid LIMIT 3)")


def _orphan_vector(vault: VaultService) -> None:
    vault.store.execute("PRAGMA foreign_keys = OFF")  # as a bulk import runs
    vault.store.execute("DELETE FROM units WHERE uid = (SELECT max(uid) FROM units)")
    vault.store.execute("PRAGMA foreign_keys = ON")


def _garble_index(vault: VaultService) -> None:
    path = index_file(vault.settings.index_dir, vault.settings.model)
    path.write_bytes(b"not an index" * 10)


def _delete_index(vault: VaultService) -> None:
    index_file(vault.settings.index_dir, vault.settings.model).unlink()


DAMAGE: dict[str, tuple[Callable[[VaultService], None], set[str]]] = {
    "an FTS row missing": (_drop_fts_row, {"keyword index"}),
    "a unit's text edited": (_edit_unit, {"units"}),
    "a unit deleted": (_delete_unit, {"units"}),
    "vectors deleted": (_delete_vectors, {"vectors"}),
    "an orphaned vector": (_orphan_vector, {"units", "vectors", "keyword index"}),
    "a garbled sealed index": (_garble_index, {"sealed index"}),
    "a deleted sealed index": (_delete_index, {"sealed index"}),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damage_to_a_derived_part_is_found_and_repaired_from_canonical_rows_only(vault: VaultService, tmp_path: Path, case: str) -> None:
    _fill(vault, tmp_path)
    damage, parts = DAMAGE[case]
    damage(vault)
    before = _canonical(vault)
    report = vault.doctor(OWNER)
    assert _failing(report) & parts, doctor.describe(report)
    assert _failing(report) <= parts | {"keyword index", "vectors", "sealed index"}
    assert report.repairable and not report.healthy
    repaired = vault.doctor(OWNER, repair=True)
    assert repaired.healthy, doctor.describe(repaired)
    assert repaired.repaired
    assert _canonical(vault) == before
    assert len(vault.search(OWNER, SearchQuery(text="zqx note number trains", limit=20)).hits) >= 6


def test_a_repair_interrupted_midway_continues_where_it_stopped(
    vault: VaultService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(vault, tmp_path)
    monkeypatch.setattr(doctor, "UNIT_BATCH", 2)
    monkeypatch.setattr(search_module, "EMBED_BATCH", 2)
    vault.store.execute("UPDATE units SET text = 'tampered ' || text WHERE item_id IN (SELECT id FROM items WHERE kind = 'memory')")
    vault.store.execute("DELETE FROM vectors")
    seen: list[tuple[int, int, str]] = []

    def stop_after_first(done: int, total: int, what: str) -> None:
        seen.append((done, total, what))
        if len([s for s in seen if s[2] == what]) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vault.doctor(OWNER, repair=True, progress=stop_after_first)
    assert seen == [(2, 6, "units")]
    wrong, _ = doctor._unit_problems(vault.store, vault.settings)
    assert len(wrong) == 4  # the first batch is kept
    with pytest.raises(KeyboardInterrupt):
        vault.doctor(OWNER, repair=True, progress=stop_after_first)
    assert seen[-1][2] == "vectors" and seen[-1][0] == 2
    missing = doctor.vector_counts(vault.store, vault.settings.model)["missing"]
    total = doctor.vector_counts(vault.store, vault.settings.model)["units"]
    assert 0 < missing < total  # the vectors of the first batch are kept
    report = vault.doctor(OWNER, repair=True, progress=lambda *a: None)
    assert report.healthy, doctor.describe(report)


def test_a_broken_audit_chain_is_reported_and_not_repairable(vault: VaultService, tmp_path: Path) -> None:
    _fill(vault, tmp_path)
    vault.store.execute('UPDATE audit SET detail = \'{"action": "forged"}\' WHERE seq = 1')
    report = vault.doctor(OWNER)
    assert _failing(report) == {"audit log"}
    assert not report.repairable
    assert "export --salvage" in doctor.describe(report)[-1]
    assert "audit log" in _failing(vault.doctor(OWNER, repair=True))


def test_a_leftover_key_file_and_index_temporary_are_noted_and_removed(vault: VaultService, tmp_path: Path) -> None:
    _fill(vault, tmp_path)
    (vault.settings.home / "vault.key.tmp").write_bytes(b"half a key file")
    (vault.settings.index_dir / "all-MiniLM-L6-v2.tmp123-456").write_bytes(b"half an index")
    report = vault.doctor(OWNER)
    assert report.healthy and "leftover vault.key.tmp" in doctor.describe(report)[1]
    repaired = vault.doctor(OWNER, repair=True)
    assert not doctor.leftovers(vault.settings.home)
    assert "removed vault.key.tmp" in repaired.repaired


def test_a_repair_of_a_read_only_vault_is_refused(vault: VaultService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vault.store, "read_only", True)
    assert vault.doctor(OWNER).read_only
    with pytest.raises(VaultReadOnly):
        vault.doctor(OWNER, repair=True)
