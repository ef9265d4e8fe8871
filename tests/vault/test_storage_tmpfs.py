"""A vault on a really full file system (a small tmpfs; needs the right to mount one, as root in CI has).

Whatever the space left, opening, searching and adding either work or fail with ``StorageFailed``
(never a raw OSError, never "corrupt"), no temporary index file is left, and once space is freed the
vault opens whole (issue 29)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.items import MemoryIn, SearchQuery
from tests.conftest import PASSPHRASE
from tests.vault.portable.conftest import fake_vectors
from vault import OWNER, Settings, init_vault, open_vault
from vault.errors import StorageFailed


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); tests/vault/test_storage_faults.py injects ENOSPC")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _fill(disk: Path, leave_kib: int) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    with filler.open("r+b") as f:
        f.truncate(max(0, filler.stat().st_size - leave_kib * 1024))
    return filler


@pytest.mark.parametrize("leave_kib", [0, 12, 24, 36, 48, 96])
def test_a_full_disk_gives_answers_or_storage_failed_and_the_vault_survives(small_disk: Path, leave_kib: int) -> None:
    settings = Settings.from_env(home=small_disk / "vault")
    init_vault(settings, PASSPHRASE)
    with open_vault(settings, PASSPHRASE) as svc:
        svc._retriever.sync = lambda *a, **k: fake_vectors(svc)  # type: ignore[method-assign]
        for n in range(40):
            svc.remember(OWNER, MemoryIn(text=f"zqx stored note {n} " + "padding words " * 20))
        svc._retriever.sync()
        before = svc.store.query("SELECT id FROM items ORDER BY id")
    shutil.rmtree(settings.index_dir)
    filler = _fill(small_disk, leave_kib)
    try:
        with open_vault(settings, PASSPHRASE) as svc:
            svc._retriever.sync = lambda *a, **k: fake_vectors(svc)  # type: ignore[method-assign]
            assert len(svc.search(OWNER, SearchQuery(text="zqx stored", limit=50)).hits) == 40
            try:
                svc.remember(OWNER, MemoryIn(text="zqx written on a full disk " + "more words " * 400))
            except StorageFailed:
                pass
    except StorageFailed as exc:
        assert "free space" in exc.message
    assert not [p.name for p in small_disk.rglob("*.tmp*")]
    filler.unlink()
    with open_vault(settings, PASSPHRASE) as svc:
        assert svc.store.query("PRAGMA integrity_check")[0][0] == "ok"
        assert {r[0] for r in before} <= {r[0] for r in svc.store.query("SELECT id FROM items")}


@pytest.mark.parametrize("leave_kib", [0, 24, 96, 400, 1500, 3000])
def test_an_import_on_a_full_disk_is_whole_or_absent_and_the_vault_survives(small_disk: Path, tmp_path: Path, leave_kib: int) -> None:
    """Disk full during `import` (issue 27): it succeeds, or is StorageFailed with none of its items in; nothing older is lost."""
    settings = Settings.from_env(home=small_disk / "vault")
    init_vault(settings, PASSPHRASE)
    with open_vault(settings, PASSPHRASE) as svc:
        svc._retriever.sync = lambda *a, **k: fake_vectors(svc)  # type: ignore[method-assign]
        for n in range(20):
            svc.remember(OWNER, MemoryIn(text=f"zqx stored note {n} " + "padding words " * 20))
        svc._retriever.sync()
        before = {r[0] for r in svc.store.query("SELECT id FROM items")}
    source = tmp_path / "bulk.jsonl"  # the source sits on another disk: only the vault's writes meet the full one
    with source.open("w") as f:
        for i in range(400):
            f.write(
                json.dumps(
                    {"type": "entity", "name": f"zqbulk{i}", "entityType": "person", "observations": [f"zqbulk{i} " + "words " * 30]}
                )
                + "\n"
            )
    filler = _fill(small_disk, leave_kib)
    refused = False
    try:
        with open_vault(settings, PASSPHRASE) as svc:
            svc._retriever.sync = lambda *a, **k: fake_vectors(svc)  # type: ignore[method-assign]
            try:
                svc.import_source(OWNER, source, "mcp-memory")
            except StorageFailed as exc:
                refused = True
                assert "nothing" in exc.message or "free space" in exc.message, exc.message
    except StorageFailed as exc:
        refused = True
        assert "free space" in exc.message
    assert not [p.name for p in small_disk.rglob("*.tmp*")]
    filler.unlink()
    with open_vault(settings, PASSPHRASE) as svc:
        assert svc.store.query("PRAGMA integrity_check")[0][0] == "ok"
        ids = {r[0] for r in svc.store.query("SELECT id FROM items")}
        assert before <= ids
        imported = svc.store.query("SELECT count(*) FROM items WHERE text LIKE 'zqbulk%'")[0][0]
        assert imported == (0 if refused else 400), (refused, imported)
        svc.verify_audit(OWNER)
