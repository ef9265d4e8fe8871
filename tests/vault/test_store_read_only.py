"""A vault on a read-only mount, or in files without write permission, reads as usual and refuses writes plainly (issue 27).

Never "corrupt" (exit 13): an owner told so might delete or "restore" a healthy backup. Each
command runs as a user runs it, in its own process. The mount variant needs the right to
mount (root in CI); the permission variant runs as root without CAP_DAC_OVERRIDE (capsh), so
the mode bits bind root as they bind anyone else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.items import MemoryIn
from tests.conftest import PASSPHRASE
from tests.vault.portable.conftest import fake_vectors
from vault import OWNER, Settings, init_vault, open_vault
from vault.errors import VaultReadOnly
from vault.store import read_only_place

ROOT = Path(__file__).resolve().parents[2]
READONLY = "the vault is read-only ("

# Read commands: each must answer as on a writable vault ({id}: a memory, {out}: a writable folder).
READS = [
    ["list"],
    ["list", "--json"],
    ["show", "{id}"],
    ["history", "{id}"],
    ["search", "zqx tea"],
    ["stats"],
    ["status", "--json"],
    ["spaces"],
    ["pref", "get", "diet"],
    ["pref", "list"],
    ["doc", "list"],
    ["audit"],
    ["audit", "verify"],
    ["export", "--plaintext", "{out}/plain"],
    ["doctor"],
]
WRITES = [
    ["add", "zqx a new memory"],
    ["forget", "{id}"],
    ["edit", "{id}", "--text", "changed"],
    ["pref", "set", "diet", "vegan"],
    ["doc", "add", "{out}/note.md"],
    ["apps", "add", "someone"],
    ["passwd", "--new-passphrase-file", "{out}/new-pass"],
    ["purge", "--yes"],
]


def _populate(settings: Settings) -> str:
    init_vault(settings, PASSPHRASE)
    with open_vault(settings, PASSPHRASE) as svc:
        svc._retriever.sync = lambda *a, **k: fake_vectors(svc)  # type: ignore[method-assign]
        item = svc.remember(OWNER, MemoryIn(text="zqx I drink tea without sugar")).item
        svc.set_preference(OWNER, "diet", "vegetarian")
        svc._retriever.sync()
        return item.id


def _cli(args: list[str], home: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTXVAULT_HOME": str(home), "CTXVAULT_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(ROOT)}
    code = "import sys; sys.argv[0] = 'ctxvault'; from cli.entry import main; main()"
    argv = [*(prefix or []), sys.executable, "-c", code, *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def _check(home: Path, memory: str, out: Path, prefix: list[str] | None = None, reads: list[list[str]] = READS) -> None:
    (out / "note.md").write_text("# A note\n\nzqx written on a read-only vault\n")
    (out / "new-pass").write_text("another long passphrase\n")
    for argv in reads:
        args = [a.format(id=memory, out=out) for a in argv]
        done = _cli(args, home, prefix)
        assert done.returncode in (0, 3), (args, done.stdout, done.stderr)  # 3: pref get of nothing is NotFound
        assert "corrupt" not in done.stderr + done.stdout, args
    listed = json.loads(_cli(["list", "--json"], home, prefix).stdout)
    assert memory in [i["id"] for i in listed["items"]]
    assert "zqx" in _cli(["search", "zqx tea"], home, prefix).stdout
    for argv in WRITES:
        args = [a.format(id=memory, out=out) for a in argv]
        done = _cli(args, home, prefix)
        assert done.returncode == VaultReadOnly.exit_code, (args, done.stdout, done.stderr)
        assert READONLY in done.stderr and str(home) in done.stderr, (args, done.stderr)
        assert "corrupt" not in done.stderr


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(writable original, the same directory bound read-only)."""
    original, view = tmp_path / "vault", tmp_path / "ro"
    original.mkdir()
    view.mkdir()
    bind = subprocess.run(["mount", "--bind", str(original), str(view)], capture_output=True, text=True, check=False)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here ({bind.stderr.strip()}); the permission variant below covers read-only files")
    try:
        yield original, view
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_vault_on_a_read_only_mount_reads_and_refuses_writes_by_name(mounted: tuple[Path, Path], tmp_path: Path) -> None:
    original, view = mounted
    memory = _populate(Settings.from_env(home=original))
    subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
    assert read_only_place(Settings.from_env(home=view).db_path)
    before = {p.name: p.read_bytes() for p in original.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    out.mkdir()
    _check(view, memory, out)
    assert {p.name: p.read_bytes() for p in original.rglob("*") if p.is_file()} == before


def test_a_vault_in_files_without_write_permission_reads_and_refuses_writes(tmp_path: Path) -> None:
    home = tmp_path / "vault"
    memory = _populate(Settings.from_env(home=home))
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("capsh") is None:
            pytest.skip("root ignores file modes and capsh (to drop CAP_DAC_OVERRIDE) is not installed")
        prefix = ["capsh", "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--", "-c", 'exec "$@"', "capsh"]
    for path in [home, *home.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    out = tmp_path / "out"
    out.mkdir()
    try:
        _check(home, memory, out, prefix, reads=[r for r in READS if r[0] in ("list", "show", "search", "audit", "stats", "doctor")])
    finally:
        for path in [home, *home.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


def test_a_read_only_copy_taken_mid_write_is_refused_rather_than_read_without_its_wal(mounted: tuple[Path, Path]) -> None:
    original, view = mounted
    settings = Settings.from_env(home=original)
    _populate(settings)
    (original / "vault.db-wal").write_bytes(b"\0" * 4096)  # a -wal with content and no -shm: a copy of a live vault
    subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
    with pytest.raises(VaultReadOnly, match=r"vault\.db-wal holds writes"):
        open_vault(Settings.from_env(home=view), PASSPHRASE)


def _refused_init(done: subprocess.CompletedProcess[str], home: Path) -> None:
    assert done.returncode == VaultReadOnly.exit_code, (done.stdout, done.stderr)
    assert f"the vault cannot be created at {home}" in done.stderr and "read-only" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "OSError" not in done.stderr


def test_init_on_a_read_only_mount_is_vault_read_only_not_a_raw_os_error(mounted: tuple[Path, Path]) -> None:
    original, view = mounted
    subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
    for home in (view / "new", view):  # a folder to create, and an existing one
        _refused_init(_cli(["init"], home), home)
    assert list(original.iterdir()) == []


def test_init_in_a_folder_without_write_permission_is_vault_read_only(tmp_path: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("capsh") is None:
            pytest.skip("root ignores file modes and capsh (to drop CAP_DAC_OVERRIDE) is not installed")
        prefix = ["capsh", "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--", "-c", 'exec "$@"', "capsh"]
    parent.chmod(0o555)
    try:
        _refused_init(_cli(["init"], parent / "vault", prefix), parent / "vault")
    finally:
        parent.chmod(0o755)
    assert list(parent.iterdir()) == []
