"""Deletion means gone: forget leaves FTS, vectors and every index; purge leaves no copy (BRIEF §4).

tests/vault/test_store.py decrypts the pages to show a purged memory and preference are
gone; tests/vault/test_search.py shows a forgotten item leaves dense search in one
process. Here: each derived structure by name, an index held open by another process, a
reopened vault, and a purged document's file, chunks and vectors.
"""

from __future__ import annotations

from pathlib import Path

from schemas.items import MemoryIn, SearchQuery
from tests.conftest import PASSPHRASE
from tests.vault.test_store import decrypt_pages
from vault import OWNER, Settings, VaultService, open_vault, sealed_index
from vault.embed import Embedder
from vault.index import index_file
from vault.index_delta import delta_file
from vault.unlock import unlock_key

CAR = "I drive a blue Toyota Corolla zqxforgetcar61"
QUERIES = [SearchQuery(text="which car do I own", mode=mode, limit=20) for mode in ("dense", "hybrid", "lexical")]


def returned(svc: VaultService, item_id: str) -> bool:
    extra = SearchQuery(text="Toyota Corolla zqxforgetcar61", mode="lexical", limit=20)
    return any(item_id in [h.item_id for h in svc.search(OWNER, q).hits] for q in [*QUERIES, extra])


def test_forget_removes_the_item_from_fts_vectors_and_an_index_another_process_holds(
    vault: VaultService, second_connection: VaultService, settings: Settings, embedder: Embedder
) -> None:
    item = vault.remember(OWNER, MemoryIn(text=CAR)).item.id
    vault.remember(OWNER, MemoryIn(text="I keep bees on the roof"))
    vault.remember(OWNER, MemoryIn(text="My sister lives in Porto"))
    (uid,) = [r[0] for r in vault.store.query("SELECT uid FROM units WHERE item_id = ?", [item])]
    assert returned(second_connection, item)  # its index is now warm, in another connection
    vault.forget(OWNER, item)
    assert vault.store.query("SELECT rowid FROM units_fts WHERE units_fts MATCH 'zqxforgetcar61'") == []
    assert vault.store.query("SELECT uid FROM vectors WHERE uid = ?", [uid]) == []
    assert not returned(vault, item)
    assert not returned(second_connection, item)
    second_connection.close()
    vault.close()
    with open_vault(settings, PASSPHRASE) as again:
        assert not returned(again, item)
        assert again._retriever.stats().index_size == 2


def test_purge_of_a_document_leaves_no_copy_of_its_file_chunks_or_vectors(
    settings: Settings, vault: VaultService, embedder: Embedder, tmp_path: Path
) -> None:
    doc = tmp_path / "diary.md"
    doc.write_text("# Diary\n\n" + "\n\n".join(f"Entry {n}: zqxpurgediary62 met the lawyer again." for n in range(40)))
    vault.remember(OWNER, MemoryIn(text="Filler memory about gardening"))
    item = vault.add_document(OWNER, doc).item_id
    rows = vault.store.query("SELECT v.vec FROM vectors v JOIN units u ON u.uid = v.uid WHERE u.item_id = ?", [item])
    probes = [bytes(r[0])[i : i + 16] for r in rows for i in range(0, len(r[0]), 256)]
    assert len(rows) >= 2
    key = unlock_key(settings, PASSPHRASE).raw()
    vault.close()
    before = decrypt_pages(settings.db_path.read_bytes(), key)
    # A test of the test: before purge, the decrypted pages hold the text and the vectors.
    assert b"zqxpurgediary62" in before and all(p in before for p in probes)
    with open_vault(settings, PASSPHRASE) as svc:
        svc.forget(OWNER, item)
        svc.purge(OWNER)
    for path in settings.home.glob("vault.db*"):
        data = path.read_bytes()
        plain = decrypt_pages(data, key)
        assert b"zqxpurgediary62" not in plain and b"zqxpurgediary62" not in data, path
        assert not any(p in plain for p in probes), f"a purged vector survives in {path}"


def sealed_ids(settings: Settings) -> list[int] | None:
    """The ids the index files hold: the sealed base with every delta record chained from it (vault/sealed_index.py)."""
    loaded = sealed_index.load(
        index_file(settings.index_dir, settings.model), unlock_key(settings, PASSPHRASE), settings.model, settings.ann_threshold
    )
    return None if loaded is None else [int(i) for i in loaded.index.ids()]


def test_purge_leaves_no_vector_in_the_sealed_index_file(settings: Settings, vault: VaultService, embedder: Embedder) -> None:
    item = vault.remember(OWNER, MemoryIn(text="I drive a blue Toyota Corolla")).item.id
    vault.remember(OWNER, MemoryIn(text="I keep bees on the roof"))
    (uid,) = [r[0] for r in vault.store.query("SELECT uid FROM units WHERE item_id = ?", [item])]
    vault.close()  # seals the index with both vectors
    ids = sealed_ids(settings)
    assert ids is not None and uid in ids  # a test of the test
    with open_vault(settings, PASSPHRASE) as svc:  # `ctxvault forget ID`, then `ctxvault purge`
        svc.forget(OWNER, item)
        svc.purge(OWNER)
    assert uid not in (sealed_ids(settings) or [])
    assert not delta_file(index_file(settings.index_dir, settings.model)).exists()  # no record of it either
    with open_vault(settings, PASSPHRASE) as svc:  # the next search rebuilds the index without it
        assert svc.search(OWNER, SearchQuery(text="bees", mode="dense")).hits
    ids = sealed_ids(settings)
    assert ids is not None and uid not in ids


def test_purge_leaves_no_copy_of_an_items_earlier_versions(settings: Settings, vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="my old address is zqxversionmarker63 street")).item.id
    vault.edit(OWNER, item, text="my address is on the hill", tags=["zqxversiontag64"])
    vault.edit(OWNER, item, text="my address is by the sea", tags=["home"])
    for n in range(20):
        vault.remember(OWNER, MemoryIn(text=f"filler memory number {n} about gardening"))
    key = unlock_key(settings, PASSPHRASE).raw()
    vault.close()
    # A test of the test: before purge, the decrypted pages hold both earlier versions.
    before = decrypt_pages(settings.db_path.read_bytes(), key)
    assert b"zqxversionmarker63" in before and b"zqxversiontag64" in before
    with open_vault(settings, PASSPHRASE) as svc:
        svc.forget(OWNER, item)
        svc.purge(OWNER)
        assert svc.store.one("SELECT count(*) FROM item_versions WHERE item_id = ?", [item])[0] == 0  # type: ignore[index]
    for path in settings.home.glob("vault.db*"):
        data = path.read_bytes()
        plain = decrypt_pages(data, key)
        for marker in (b"zqxversionmarker63", b"zqxversiontag64"):
            assert marker not in plain and marker not in data, path
