"""The index on disk as processes share it: a write appends a delta record, a reader catches up, a fold replaces the base.

Each ``open_vault`` below is a process of its own as far as the index is concerned (its own
connection and in-memory index); the real model embeds, the real SQLCipher stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from schemas.items import MemoryIn, SearchQuery
from vault import OWNER, Settings, VaultService, doctor, open_vault, sealed_index
from vault import vectors as vector_rows
from vault.index import VectorIndex, index_file
from vault.index_delta import delta_file, read
from vault.search import Retriever

PASSPHRASE = "correct horse battery staple"
TEXTS = [
    "My sister Ana lives in Porto and works as an architect",
    "I am allergic to peanuts and shellfish",
    "I drive a blue Toyota Corolla from 2015",
    "I run 10 km every Sunday morning along the river",
]
QUERIES = ["which car do I own", "what food reactions do I have", "family in Portugal", "weekend sport", "beekeeping"]


@pytest.fixture
def filled(settings: Settings, recovery_key: str) -> Iterator[Settings]:
    """A vault whose base index is sealed with every text; no delta yet."""
    svc = open_vault(settings, PASSPHRASE)
    for text in TEXTS:
        svc.remember(OWNER, MemoryIn(text=text))
    svc._retriever._persisted = None
    svc._retriever._save()  # a new base at the current generation, as a fold or `reindex` leaves it
    svc.close()
    assert not delta_file(_base(settings)).exists()
    yield settings


def _base(settings: Settings) -> Path:
    return index_file(settings.index_dir, settings.model)


def _fresh(svc: VaultService) -> VectorIndex:
    """The index a rebuild from the vectors table makes (the truth), without saving it."""
    r = svc._retriever
    index = VectorIndex(384, svc.settings.ann_threshold)
    rows = svc.store.query("SELECT uid, vec FROM vectors WHERE model = ? ORDER BY uid", [r._model_id()])
    index.add(np.array([x[0] for x in rows], dtype=np.int64), vector_rows.decode([x[1] for x in rows], 384))
    return index


def _same_as_fresh(svc: VaultService) -> None:
    held, fresh = svc._retriever._ensure_index(), _fresh(svc)
    assert sorted(held.ids().tolist()) == sorted(fresh.ids().tolist())
    ids = np.sort(fresh.ids())
    assert np.array_equal(held.vectors(ids), fresh.vectors(ids))
    embedder = svc._retriever.embedder()
    for q in QUERIES:
        qv = embedder.encode_query(q)
        (hs, hi), (fs, fi) = held.search(qv, 3), fresh.search(qv, 3)
        assert hi.tolist() == fi.tolist() and np.allclose(hs, fs, atol=1e-6)


def test_a_one_item_write_appends_a_record_and_leaves_the_base_alone(filled: Settings) -> None:
    base = _base(filled).read_bytes()
    svc = open_vault(filled, PASSPHRASE)
    svc.remember(OWNER, MemoryIn(text="I keep bees on the roof of my house"))
    svc.close()
    assert _base(filled).read_bytes() == base
    delta = delta_file(_base(filled))
    assert delta.stat().st_mode & 0o777 == 0o600 and b"bees" not in delta.read_bytes()
    # A new process loads base + delta: exactly the index a rebuild from the table makes, at the database's generation.
    again = open_vault(filled, PASSPHRASE)
    try:
        loaded = sealed_index.load(_base(filled), again._retriever._key, filled.model, filled.ann_threshold)
        assert loaded is not None and loaded.generation == again._retriever._generation() and len(loaded.index) == len(TEXTS) + 1
        _same_as_fresh(again)
        assert [h.text for h in again.search(OWNER, SearchQuery(text="beekeeping", mode="dense", limit=1)).hits] == [
            "I keep bees on the roof of my house"
        ]
    finally:
        again.close()


def test_a_forget_and_an_edit_are_records_too(filled: Settings) -> None:
    svc = open_vault(filled, PASSPHRASE)
    hits = svc.search(OWNER, SearchQuery(text="which car do I own", limit=1)).hits
    svc.forget(OWNER, hits[0].item_id)
    other = svc.search(OWNER, SearchQuery(text="river running", limit=1)).hits[0]
    svc.edit(OWNER, other.item_id, text="I ride a red bicycle to work")
    svc.search(OWNER, SearchQuery(text="cycling", limit=1))
    svc.close()
    again = open_vault(filled, PASSPHRASE)
    try:
        _same_as_fresh(again)
    finally:
        again.close()


def test_a_crash_between_a_new_base_and_deleting_the_old_delta_applies_nothing_stale(filled: Settings) -> None:
    svc = open_vault(filled, PASSPHRASE)
    svc.remember(OWNER, MemoryIn(text="I keep bees on the roof of my house"))
    svc.close()
    old_delta = delta_file(_base(filled)).read_bytes()
    svc = open_vault(filled, PASSPHRASE)
    svc.forget(OWNER, svc.search(OWNER, SearchQuery(text="beekeeping", limit=1)).hits[0].item_id)
    svc.search(OWNER, SearchQuery(text="beekeeping", limit=1))
    svc._retriever._persisted = None  # the next save writes a new base (a fold)...
    svc.close()
    delta_file(_base(filled)).write_bytes(old_delta)  # ...and the crash came before the old delta was deleted
    again = open_vault(filled, PASSPHRASE)
    try:
        assert read(delta_file(_base(filled)), again._retriever._key, filled.model, b"x" * 16, 384).stale == 1
        assert doctor.check_index(again.store, filled, again._retriever._key).ok
        _same_as_fresh(again)  # the bees are not back
        assert "bees" not in " ".join(h.text for h in again.search(OWNER, SearchQuery(text="beekeeping", mode="dense")).hits)
    finally:
        again.close()


def test_a_crash_between_a_commit_and_its_record_is_caught_up_from_the_table(filled: Settings) -> None:
    svc = open_vault(filled, PASSPHRASE)
    svc.remember(OWNER, MemoryIn(text="I keep bees on the roof of my house"))
    svc.store.close()  # killed: the record was never appended
    again = open_vault(filled, PASSPHRASE)
    try:
        _same_as_fresh(again)
    finally:
        again.close()


def test_a_tampered_record_is_reported_by_doctor_and_never_applied(filled: Settings) -> None:
    svc = open_vault(filled, PASSPHRASE)
    svc.remember(OWNER, MemoryIn(text="I keep bees on the roof of my house"))
    svc.close()
    delta = delta_file(_base(filled))
    raw = bytearray(delta.read_bytes())
    raw[-5] ^= 0x01
    delta.write_bytes(bytes(raw))
    again = open_vault(filled, PASSPHRASE)
    try:
        check = doctor.check_index(again.store, filled, again._retriever._key)
        assert not check.ok and check.repairable and "fail authentication" in check.detail
        loaded = sealed_index.load(_base(filled), again._retriever._key, filled.model, filled.ann_threshold)
        assert loaded is not None and len(loaded.index) == len(TEXTS)  # the base alone: the record was not applied
        _same_as_fresh(again)  # and the search still sees the table's vectors
    finally:
        again.close()


def test_the_delta_is_folded_into_a_new_base_past_its_bound(filled: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sealed_index, "FOLD_MIN", 2)
    base = _base(filled).read_bytes()
    for text in ("I keep bees", "I collect stamps"):
        svc = open_vault(filled, PASSPHRASE)
        svc.remember(OWNER, MemoryIn(text=text))
        svc.close()
    assert _base(filled).read_bytes() == base and delta_file(_base(filled)).exists()
    svc = open_vault(filled, PASSPHRASE)
    svc.remember(OWNER, MemoryIn(text="I play the cello"))
    svc.close()
    assert _base(filled).read_bytes() != base and not delta_file(_base(filled)).exists()
    again = open_vault(filled, PASSPHRASE)
    try:
        _same_as_fresh(again)
    finally:
        again.close()


def test_a_held_index_applies_what_another_process_appended(filled: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = open_vault(filled, PASSPHRASE)
    writer = open_vault(filled, PASSPHRASE)
    try:
        reader.search(OWNER, SearchQuery(text="which car", limit=1))
        writer.remember(OWNER, MemoryIn(text="I keep bees on the roof of my house"))
        writer._retriever._save()
        monkeypatch.setattr(Retriever, "_rebuild", lambda *a: pytest.fail("rebuilt"))
        monkeypatch.setattr(sealed_index, "load", lambda *a: pytest.fail("loaded the base again"))
        hits = reader.search(OWNER, SearchQuery(text="beekeeping", mode="dense", limit=1)).hits
        assert [h.text for h in hits] == ["I keep bees on the roof of my house"]
        assert not reader._retriever._inexact
    finally:
        writer.close()
        reader.close()


def test_a_search_behind_the_background_embedder_uses_the_vectors_there_are_and_never_rebuilds(
    filled: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedder has committed vectors it has not saved yet: a search in another process must not rebuild (issue 25)."""
    worker = open_vault(filled, PASSPHRASE)
    try:
        worker.remember(OWNER, MemoryIn(text="I keep bees on the roof of my house"))
        worker._retriever._changes = sealed_index.Changes()  # committed, and not saved (between two batches)
        worker._retriever._dirty = 0
        searcher = open_vault(filled, PASSPHRASE)
        monkeypatch.setattr(Retriever, "_rebuild", lambda *a: pytest.fail("a search rebuilt the index"))
        hits = searcher.search(OWNER, SearchQuery(text="beekeeping", mode="dense", limit=1)).hits
        assert [h.text for h in hits] == ["I keep bees on the roof of my house"]
        assert searcher._retriever._inexact
        _same_as_fresh(searcher)
        searcher.close()
        assert not delta_file(_base(filled)).exists()  # an index caught up from the table is never saved
    finally:
        worker.store.close()


def test_the_agents_warm_copy_is_taken_without_loading_and_sees_another_processs_write(
    filled: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = open_vault(filled, PASSPHRASE)
    key = svc._retriever._key
    svc.close()
    path = _base(filled)
    sealed_index.warm(path, key, filled.model, filled.ann_threshold)  # the agent, at unlock
    writer = open_vault(filled, PASSPHRASE)
    writer.remember(OWNER, MemoryIn(text="I keep bees on the roof of my house"))
    writer.close()
    sealed_index.warm(path, key, filled.model, filled.ann_threshold)  # the agent, before its next fork: one record read
    monkeypatch.setattr(sealed_index, "load_sealed", lambda *a: pytest.fail("the base was decrypted again"))
    child = open_vault(filled, PASSPHRASE)  # the forked child
    try:
        hits = child.search(OWNER, SearchQuery(text="beekeeping", mode="dense", limit=1)).hits
        assert [h.text for h in hits] == ["I keep bees on the roof of my house"]
        assert child._retriever._persisted is not None and not child._retriever._inexact
        _same_as_fresh(child)
    finally:
        child.close()
    assert path.resolve() not in sealed_index._WARM  # taken, not shared: the child may change it
