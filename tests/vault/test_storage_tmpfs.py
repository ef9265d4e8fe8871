"""A vault on a really full file system (a small tmpfs; needs the right to mount one, as root in CI has).

Whatever the space left, opening, searching and adding either work or fail with ``StorageFailed``
(never a raw OSError, never "corrupt"), no temporary index file is left, and once space is freed the
vault opens whole (issue 29)."""

from __future__ import annotations

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
