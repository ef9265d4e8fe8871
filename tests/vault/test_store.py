"""The store's promises: nothing readable on disk, and purge leaves no copy even inside the cipher."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from schemas.items import MemoryIn
from tests.conftest import PASSPHRASE
from vault import OWNER, Principal, Settings, VaultService, open_vault
from vault.crypto import DataKey, new_key
from vault.errors import StoreCorrupt
from vault.store import Store
from vault.unlock import unlock_key

PAGE = 4096
RESERVE = 80  # SQLCipher 4: 16-byte IV + 64-byte HMAC-SHA512 at the end of every page


def every_file(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def decrypt_pages(data: bytes, key: bytes, offset: int = 0, stride: int = PAGE) -> bytes:
    """Decrypt SQLCipher 4 pages ourselves, free pages included, to look for leftovers."""
    out = []
    for start in range(offset, len(data) - PAGE + 1, stride):
        page = data[start : start + PAGE]
        body_from = 16 if start == offset and offset == 0 else 0  # page 1 begins with the salt
        iv = page[PAGE - RESERVE : PAGE - RESERVE + 16]
        dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        out.append(dec.update(page[body_from : PAGE - RESERVE]) + dec.finalize())
    return b"".join(out)


def test_no_plaintext_of_any_stored_text_touches_disk(settings: Settings, vault: VaultService, owner: Principal, tmp_path: Path) -> None:
    markers = ["zqxmemorymarker41", "zqxprefmarker42", "zqxdocmarker43", "zqxtagmarker44"]
    vault.remember(owner, MemoryIn(text=f"remember {markers[0]} always", tags=[markers[3]]))
    vault.set_preference(owner, "secret.pref", f"value {markers[1]}")
    doc = tmp_path / "note.md"
    doc.write_text(f"# Title\n\nbody with {markers[2]} inside\n")
    vault.add_document(owner, doc)
    doc.unlink()
    # While open: the WAL and any journal hold only ciphertext.
    assert list(settings.home.glob("vault.db-wal"))
    blob = every_file(settings.home)
    for marker in markers:
        assert marker.encode() not in blob
        assert marker.encode("utf-16-le") not in blob
    vault.close()
    blob = every_file(settings.home)
    for marker in markers:
        assert marker.encode() not in blob
    # A test of the test: with the key, our page decryptor does find the text.
    key = unlock_key(settings, PASSPHRASE).raw()
    plain = decrypt_pages(settings.db_path.read_bytes(), key)
    assert all(marker.encode() in plain for marker in markers)


def test_purged_text_is_unrecoverable_even_with_the_key(settings: Settings, recovery_key: str) -> None:
    marker = "zqxpurgemarker77"
    with open_vault(settings, PASSPHRASE) as svc:
        for n in range(30):
            svc.remember(OWNER, MemoryIn(text=f"filler memory number {n} about gardening"))
        item = svc.remember(OWNER, MemoryIn(text=f"the {marker} must vanish")).item
        svc.set_preference(OWNER, "code", f"{marker}-pref")
        svc.set_preference(OWNER, "code", "replaced value")
    key = unlock_key(settings, PASSPHRASE).raw()
    assert marker.encode() in decrypt_pages(settings.db_path.read_bytes(), key)
    with open_vault(settings, PASSPHRASE) as svc:
        svc.forget(OWNER, item.id)
        svc.unset_preference(OWNER, "code")
        # Forgotten but not purged: the row is still there (soft delete).
        assert marker.encode() in decrypt_pages(settings.db_path.read_bytes(), key) + b"".join(
            p.read_bytes() for p in settings.home.glob("vault.db-wal")
        )
        svc.purge(OWNER)
    for path in settings.home.glob("vault.db*"):
        assert marker.encode() not in decrypt_pages(path.read_bytes(), key)
        assert marker.encode() not in path.read_bytes()


def test_a_replaced_database_file_is_reported_corrupt(settings: Settings, recovery_key: str) -> None:
    settings.db_path.write_bytes(b"\x00" * 8192)
    with pytest.raises(StoreCorrupt):
        open_vault(settings, PASSPHRASE)


def test_a_database_under_another_key_is_reported_corrupt(settings: Settings, recovery_key: str, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    s = Store(other, new_key())
    s.execute("CREATE TABLE t (x)")
    s.close()
    settings.db_path.write_bytes(other.read_bytes())
    with pytest.raises(StoreCorrupt):
        open_vault(settings, PASSPHRASE)


def test_two_writers_on_one_vault_lose_no_write(settings: Settings, recovery_key: str) -> None:
    # Near-duplicate merging is off here: these texts differ only by a number.
    exact = dataclasses.replace(settings, dedup_threshold=1.01)
    a, b = open_vault(exact, PASSPHRASE), open_vault(exact, PASSPHRASE)
    errors: list[BaseException] = []

    def write(svc: VaultService, who: str) -> None:
        try:
            for n in range(40):
                svc.remember(OWNER, MemoryIn(text=f"{who} wrote memory {n}"))
        except BaseException as exc:  # surfaced below
            import traceback

            traceback.print_exc()
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(svc, who)) for svc, who in ((a, "alpha"), (b, "beta"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert a.list_items(OWNER, limit=1000).total == 80
    a.close()
    b.close()


def _modes(store: Store) -> tuple[str, int, int]:
    journal, sync, fk = (store.one(f"PRAGMA {p}") for p in ("journal_mode", "synchronous", "foreign_keys"))
    assert journal is not None and sync is not None and fk is not None
    return str(journal[0]), int(sync[0]), int(fk[0])


@pytest.fixture
def data_key() -> DataKey:
    return new_key()


@pytest.fixture
def lone(tmp_path: Path, data_key: DataKey) -> Iterator[Store]:
    """A keyed database with one table, and no other connection on it."""
    store = Store(tmp_path / "lone.db", data_key)
    store.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, text TEXT)")
    yield store
    store.close()


def test_a_bulk_transaction_alone_on_the_vault_stays_on_the_wal_and_writes_no_rollback_journal(lone: Store) -> None:
    """A bulk write only turns foreign keys off. A rollback journal made a lost ``-journal`` file fatal to the
    whole vault (issue 29; tests/vault/portable/test_stray_files.py); afterwards, and after a failed one,
    the vault is as before."""
    assert _modes(lone) == ("wal", 1, 1)
    with lone.transaction(bulk=True):
        assert _modes(lone) == ("wal", 1, 0)
        lone.execute("INSERT INTO t (text) VALUES ('kept')")
        assert not (lone.path.parent / "lone.db-journal").exists()
    assert _modes(lone) == ("wal", 1, 1)
    with pytest.raises(ZeroDivisionError), lone.transaction(bulk=True):
        lone.execute("INSERT INTO t (text) VALUES ('rolled back')")
        _ = 1 / 0
    assert _modes(lone) == ("wal", 1, 1)
    assert [r[0] for r in lone.query("SELECT text FROM t")] == ["kept"]
    assert not (lone.path.parent / "lone.db-journal").exists()


def test_a_bulk_transaction_keeps_the_wal_while_another_connection_is_open_and_that_one_reads_meanwhile(
    lone: Store, data_key: DataKey
) -> None:
    other = Store(lone.path, data_key)
    try:
        lone.execute("INSERT INTO t (text) VALUES ('before')")
        with lone.transaction(bulk=True):
            assert _modes(lone) == ("wal", 1, 0)
            lone.executemany("INSERT INTO t (text) VALUES (?)", [(f"row {n}",) for n in range(5000)])
            assert [r[0] for r in other.query("SELECT text FROM t")] == ["before"]  # a reader never waits on the WAL
        assert other.query("SELECT count(*) FROM t")[0][0] == 5001
        assert _modes(lone) == ("wal", 1, 1)
    finally:
        other.close()


@pytest.mark.parametrize("spilled", [False, True])
def test_a_process_that_opens_the_vault_during_a_bulk_write_opens_at_once_and_reads_the_committed_vault(
    lone: Store, data_key: DataKey, spilled: bool
) -> None:
    """On the WAL a bulk writer whose pages spilled holds no lock a reader needs: a newcomer opens during the
    write, reads what was committed before it, and the write commits after."""
    if spilled:
        lone.execute("PRAGMA cache_size = 20")  # pages spill, as a big import's do
    lone.execute("INSERT INTO t (text) VALUES ('before')")
    with lone.transaction(bulk=True):
        lone.executemany("INSERT INTO t (text) VALUES (?)", [("x" * 200,) for _ in range(3000 if spilled else 10)])
        other = Store(lone.path, data_key)
        try:
            assert _modes(other) == ("wal", 1, 1)
            assert [r[0] for r in other.query("SELECT text FROM t")] == ["before"]
        finally:
            other.close()
    assert _modes(lone) == ("wal", 1, 1)
    assert lone.query("SELECT count(*) FROM t")[0][0] == 1 + (3000 if spilled else 10)
