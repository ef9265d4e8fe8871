"""At rest everything is encrypted: texts, embeddings, audit details, temp files, exports (BRIEF §4).

tests/vault/test_store.py already scans every file for text markers (decrypting the pages
to show the scan can see them) and tests/vault/test_search.py scans the closed vault for one
vector. Here: every stored vector while the vault is open (WAL and sealed index included),
SQLite's temp files, encrypted exports, and file modes under a permissive umask.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pyrage  # type: ignore[import-untyped]  # pyrage ships no type stubs
import pytest

from schemas.items import MemoryIn, SearchQuery
from schemas.portable import Selection
from tests.conftest import PASSPHRASE
from tests.security.conftest import make_app
from tests.vault.test_store import decrypt_pages
from vault import OWNER, Settings, VaultService, init_vault, open_vault, sealed_index
from vault.embed import Embedder
from vault.index import index_file
from vault.unlock import unlock_key
from vault.vectors import decode

ROOT = Path(__file__).resolve().parents[2]
MARKERS = ["zqxatrestmemory51", "zqxatrestpref52", "zqxatresttag53"]
PURPOSE = "zqxatrestpurpose54"


def every_file(home: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def vector_probes(vault: VaultService) -> list[bytes]:
    """16-byte windows of every stored vector (float16, as the table holds it), read from the vectors table (the truth)."""
    rows = vault.store.query("SELECT vec FROM vectors")
    return [bytes(r[0])[i : i + 16] for r in rows for i in range(0, len(r[0]), 128)]


def index_probes(vault: VaultService) -> list[bytes]:
    """The same vectors as float32, as the sealed index holds them."""
    rows = vault.store.query("SELECT vec FROM vectors")
    raw = [decode([bytes(r[0])], len(r[0]) // 2).astype("<f4").tobytes() for r in rows]
    return [v[i : i + 16] for v in raw for i in range(0, len(v), 256)]


@pytest.fixture
def stocked(vault: VaultService, embedder: Embedder) -> VaultService:
    """A vault with memories, a preference and an app's audited search, its index built and sealed."""
    vault.remember(OWNER, MemoryIn(text=f"I keep the spare key under the {MARKERS[0]} flowerpot", tags=[MARKERS[2]]))
    vault.remember(OWNER, MemoryIn(text="My blood type is O negative", space="health"))
    vault.set_preference(OWNER, "greeting", f"say {MARKERS[1]} first")
    app = make_app(vault, "reader", "search:*")
    vault.search(app, SearchQuery(text="where is the spare key", purpose=PURPOSE))
    return vault


def test_no_vector_text_or_audit_detail_is_on_disk_while_the_vault_is_open(stocked: VaultService, settings: Settings) -> None:
    db_probes, ix_probes = vector_probes(stocked), index_probes(stocked)
    assert len(db_probes) >= 3 * 6
    probes = db_probes + ix_probes
    files = every_file(settings.home)
    assert settings.home / "vault.db-wal" in files and index_file(settings.index_dir, settings.model) in files
    for path, data in files.items():
        assert not any(p in data for p in probes), f"a plaintext vector in {path}"
        for marker in [*MARKERS, PURPOSE]:
            assert marker.encode() not in data, f"{marker} in {path}"
    # A test of the test: decrypted with the data key, the pages do hold the vectors.
    stocked.close()
    key = unlock_key(settings, PASSPHRASE)
    plain = decrypt_pages(settings.db_path.read_bytes(), key.raw())
    assert all(p in plain for p in db_probes)
    # The base and the delta records chained from it (vault/sealed_index.py): together they hold every vector.
    opened = sealed_index.load(index_file(settings.index_dir, settings.model), key, settings.model, settings.ann_threshold)
    assert opened is not None
    unsealed = opened.index.to_bytes(settings.model, 0)
    assert all(p in unsealed for p in ix_probes)
    assert PURPOSE.encode() in plain


# Runs in its own process: SQLite reads TMPDIR once per process. A SQL function called while
# a large sort streams its rows reads every open file under TMPDIR through /proc/self/fd
# (SQLite unlinks its temp files at once, so a directory listing would see nothing).
TEMP_PROBE = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from vault.crypto import new_key
    from vault.store import Store

    watched, db, override = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    store = Store(db, new_key())
    if override:
        store.execute(override)
    store.execute("PRAGMA cache_size = 10")
    store.execute("CREATE TABLE t (x TEXT)")
    with store.transaction():
        store.conn.executemany("INSERT INTO t VALUES (?)", [(f"zqxtempmarker {i:06d} " + "y" * 400,) for i in range(4000)])
    seen = []

    def probe():
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith(watched):
                    seen.append([target, b"zqxtempmarker" in Path(f"/proc/self/fd/{fd}").read_bytes()])
            except OSError:
                pass
        return 0

    store.conn.create_function("probe", 0, probe)
    store.query("SELECT probe(), x FROM (SELECT x FROM t ORDER BY substr(x, 15) DESC, x) LIMIT 3")
    print(json.dumps(seen))
    """
)


def temp_files_during_a_big_sort(tmp_path: Path, override: str = "") -> list[list[object]]:
    watched = tmp_path / "tmpdir"
    watched.mkdir()
    env = {**os.environ, "TMPDIR": str(watched), "SQLITE_TMPDIR": str(watched)}
    done = subprocess.run(
        [sys.executable, "-c", TEMP_PROBE, str(watched), str(tmp_path / "t.db"), override],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    seen: list[list[object]] = json.loads(done.stdout)
    return seen


def test_sqlite_writes_no_temp_file_outside_the_vault(tmp_path: Path) -> None:
    assert temp_files_during_a_big_sort(tmp_path) == []


def test_the_temp_file_probe_sees_a_plaintext_sort_spill(tmp_path: Path) -> None:
    # Without temp_store = MEMORY the same sort spills unencrypted rows to TMPDIR.
    seen = temp_files_during_a_big_sort(tmp_path, "PRAGMA temp_store = FILE")
    assert [leaked for _, leaked in seen] and all(leaked for _, leaked in seen)


def test_an_encrypted_export_holds_no_text_no_file_name_and_leaves_no_partial_file(stocked: VaultService, tmp_path: Path) -> None:
    identity = pyrage.x25519.Identity.generate()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    stocked.export_bundle(OWNER, Selection(), outbox / "to-key.cvb", recipients=[str(identity.to_public())])
    stocked.export_bundle(OWNER, Selection(), outbox / "to-pass.cvb", passphrase="another long passphrase")
    assert sorted(p.name for p in outbox.iterdir()) == ["to-key.cvb", "to-pass.cvb"]
    for path in outbox.iterdir():
        data = path.read_bytes()
        assert data.startswith(b"age-encryption.org/v1")
        for clear in [*MARKERS, "memory-store.json", "embeddings.json"]:
            assert clear.encode() not in data, f"{clear} in {path.name}"
    # A test of the test: the same export in plaintext does carry the marker.
    stocked.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    assert any(MARKERS[0].encode() in data for data in every_file(tmp_path / "plain").values())


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_the_vault_stays_private_under_a_permissive_umask(open_umask: None, settings: Settings, embedder: Embedder) -> None:
    init_vault(settings, PASSPHRASE)
    with open_vault(settings, PASSPHRASE) as svc:
        svc.remember(OWNER, MemoryIn(text="I water the plants on Sundays"))
        svc.search(OWNER, SearchQuery(text="gardening", mode="dense"))
    mode = {p: p.stat().st_mode & 0o777 for p in [settings.home, *settings.home.rglob("*")]}
    assert mode[settings.home] == 0o700  # nothing below is reachable by another user
    assert mode[settings.key_path] == 0o600
    assert mode[settings.index_dir] == 0o700
    assert mode[index_file(settings.index_dir, settings.model)] == 0o600
