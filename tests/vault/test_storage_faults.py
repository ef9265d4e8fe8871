"""A full or broken disk (issue 29): a derived cache that cannot be saved never fails a read, leaves no
temporary file, and a database write the disk refuses is a clear ``StorageFailed`` with nothing changed.

The full disk is the kernel's: writes to the temporary index file go to ``/dev/full``, which fails every
write with ENOSPC as a full file system does (tests/vault/test_storage_tmpfs.py fills a real one)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from schemas.items import MemoryIn, SearchQuery
from tests.conftest import PASSPHRASE
from tests.vault.portable.conftest import fake_vectors
from vault import OWNER, Settings, VaultService, open_vault
from vault.errors import StorageFailed
from vault.index import index_file

MODE_OPEN = os.open


@pytest.fixture
def full_index_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index's temporary files are created, then every write to them fails with the kernel's ENOSPC."""

    def open_on_full_disk(path: str | os.PathLike[str], flags: int, mode: int = 0o777, **kw: object) -> int:
        if ".tmp" in os.fspath(path) and "index" in os.fspath(path):
            os.close(MODE_OPEN(path, flags, mode))  # the file appears, as on a full disk
            return MODE_OPEN("/dev/full", os.O_WRONLY)
        return MODE_OPEN(path, flags, mode)

    monkeypatch.setattr(os, "open", open_on_full_disk)


def _filled(settings: Settings) -> VaultService:
    svc = open_vault(settings, PASSPHRASE)
    svc._retriever.sync = lambda *a, **k: fake_vectors(svc)  # type: ignore[method-assign]
    for n in range(5):
        svc.remember(OWNER, MemoryIn(text=f"zqx note number {n} about tea"))
    svc._retriever.sync()
    return svc


def test_the_test_disk_is_full_for_real() -> None:
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as caught:
            os.write(fd, b"x")
        assert caught.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_search_whose_index_cannot_be_saved_answers_and_leaves_no_temporary_file(
    settings: Settings, recovery_key: str, full_index_disk: None
) -> None:
    svc = _filled(settings)
    try:
        for path in settings.index_dir.glob("*"):
            path.unlink()
        svc._retriever.discard_index()  # the next search rebuilds the index and saves it: onto the full disk
        hits = svc.search(OWNER, SearchQuery(text="zqx note", mode="lexical", limit=10))
        assert len(hits.hits) == 5
        hits = svc.search(OWNER, SearchQuery(text="tea", limit=10))
        assert hits.hits
        assert sorted(p.name for p in settings.index_dir.iterdir()) == []  # no 0-byte *.tmp*, no index
    finally:
        svc.close()
    assert list(settings.index_dir.iterdir()) == []


@pytest.mark.parametrize("shape", ["index is a file", "index file is a directory"])
def test_an_index_path_of_the_wrong_kind_is_rebuilt_in_memory_for_search_and_import(
    settings: Settings, recovery_key: str, shape: str
) -> None:
    svc = _filled(settings)
    svc.close()
    for path in settings.index_dir.glob("*"):
        path.unlink()
    if shape == "index is a file":
        settings.index_dir.rmdir()
        settings.index_dir.write_bytes(b"not a directory")
    else:
        index_file(settings.index_dir, settings.model).mkdir()
    with open_vault(settings, PASSPHRASE) as again:
        again._retriever.sync = lambda *a, **k: fake_vectors(again)  # type: ignore[method-assign]
        assert len(again.search(OWNER, SearchQuery(text="tea", limit=10)).hits) == 5
        again.remember(OWNER, MemoryIn(text="zqx one more about coffee"))
        again._retriever.sync()
        assert len(again.search(OWNER, SearchQuery(text="zqx", mode="lexical", limit=10)).hits) == 6


def test_a_database_write_the_disk_refuses_is_storage_failed_and_changes_nothing(settings: Settings, recovery_key: str) -> None:
    """SQLITE_FULL, from SQLite's own page limit (the error a full disk gives)."""
    svc = _filled(settings)
    try:
        before = svc.store.query("SELECT id FROM items ORDER BY id")
        pages = svc.store.one("PRAGMA page_count")
        assert pages is not None
        svc.store.execute(f"PRAGMA max_page_count = {int(pages[0])}")
        with pytest.raises(StorageFailed) as caught:
            svc.remember(OWNER, MemoryIn(text="zqx " + "long text that needs new pages " * 2000))
        assert caught.value.exit_code == 19
        assert "free space" in caught.value.message
        assert svc.store.query("SELECT id FROM items ORDER BY id") == before
    finally:
        svc.close()


def test_the_storage_error_names_no_path_of_ours_as_corrupt(tmp_path: Path) -> None:
    """A database file that cannot be opened at all (its directory is gone) is a storage failure, not 'corrupt'."""
    from vault.crypto import new_key
    from vault.store import Store

    with pytest.raises(StorageFailed):
        Store(tmp_path / "missing-dir" / "vault.db", new_key())
