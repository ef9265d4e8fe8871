"""A killed import, then a stray file lost: the committed vault must survive (issue 29)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PASSPHRASE
from tests.vault.portable.conftest import REPO, fake_vectors, populate
from tests.vault.portable.test_merge import _CRASHING_IMPORT
from vault import Settings, open_vault

SIDE_FILES = ("-journal", "-wal", "-shm")


@pytest.mark.parametrize("lost", [SIDE_FILES, ("-journal", "-wal")])
def test_an_import_killed_midway_then_its_side_files_deleted_loses_no_committed_item(
    settings: Settings, recovery_key: str, lost: tuple[str, ...]
) -> None:
    """Every file a killed import leaves beside the database is deleted (as a careless copy or a cleanup
    tool would): the vault opens, verifies, and holds every item committed before the import. On a
    rollback journal the deleted journal was the only copy of the pages the import had overwritten,
    and the vault was lost (exit 13)."""
    svc = open_vault(settings, PASSPHRASE)
    svc._retriever.sync = lambda *a, **k: fake_vectors(svc)  # type: ignore[method-assign]
    populate(svc, memories=300, documents=1)
    before = svc.store.query("SELECT id, text, content_hash FROM items ORDER BY id")
    units = svc.store.query("SELECT count(*) FROM units")[0][0]
    svc.close()

    child = subprocess.run(
        [sys.executable, "-c", _CRASHING_IMPORT], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert child.returncode == 9, child.stderr
    removed = []
    for suffix in lost:
        side = settings.db_path.with_name(settings.db_path.name + suffix)
        if side.exists():
            side.unlink()
            removed.append(suffix)
    assert removed  # the killed import's uncommitted pages (or the pages they replaced) were there, and are gone

    with open_vault(settings, PASSPHRASE) as again:
        assert again.store.query("PRAGMA integrity_check")[0][0] == "ok"
        assert again.store.query("SELECT id, text, content_hash FROM items ORDER BY id") == before
        assert again.store.query("SELECT count(*) FROM units")[0][0] == units
        assert again.store.query("SELECT count(*) FROM units_fts WHERE units_fts MATCH 'zqxcrashmarker1'")[0][0] == 0
        assert again.store.query("PRAGMA journal_mode")[0][0] == "wal"
