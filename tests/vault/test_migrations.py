from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from vault import OWNER, Settings, open_vault
from vault.crypto import new_key
from vault.errors import SchemaTooNew
from vault.migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from vault.store import Store
from vault.unlock import unlock_key
from vault.vectors import decode

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vault_v1"
FIXTURE_PASSPHRASE = "fixture passphrase v1"


@pytest.fixture
def v1_settings(settings: Settings) -> Settings:
    shutil.copytree(FIXTURE, settings.home, ignore=shutil.ignore_patterns("README.md"))
    return settings


def test_a_schema_v1_vault_is_upgraded_on_open(v1_settings: Settings) -> None:
    with open_vault(v1_settings, FIXTURE_PASSPHRASE) as svc:
        assert svc.status(OWNER).schema_version == SCHEMA_VERSION
        item = svc.get_item(OWNER, "01JFIXTUREV1MEMORY00000001")
        assert item.text == "The v1 fixture remembers tea with lemon"
        names = [r[0] for r in svc.store.query("SELECT name FROM _migrations ORDER BY name")]
        assert names == [m.name for m in MIGRATIONS]


def test_the_fixture_really_is_schema_v1(v1_settings: Settings) -> None:
    store = Store(v1_settings.db_path, unlock_key(v1_settings, FIXTURE_PASSPHRASE))
    try:
        assert [r[0] for r in store.query("SELECT name FROM _migrations")] == ["m0001_items"]
    finally:
        store.close()


def test_a_vault_from_a_newer_version_is_refused_untouched(v1_settings: Settings) -> None:
    key = unlock_key(v1_settings, FIXTURE_PASSPHRASE)
    store = Store(v1_settings.db_path, key)
    store.execute("INSERT INTO _migrations VALUES ('m9999_from_the_future', '2030-01-01')")
    store.close()
    before = v1_settings.db_path.read_bytes()
    with pytest.raises(SchemaTooNew):
        open_vault(v1_settings, FIXTURE_PASSPHRASE)
    store = Store(v1_settings.db_path, key)
    try:
        assert [r[0] for r in store.query("SELECT name FROM _migrations ORDER BY name")] == ["m0001_items", "m9999_from_the_future"]
    finally:
        store.close()
    assert len(v1_settings.db_path.read_bytes()) == len(before)


def test_m0005_turns_float32_vectors_into_float16_rows_with_a_model_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.db", new_key())
    conn = store.conn
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for m in MIGRATIONS[:4]:  # a vault as version 4 left it, vectors as float32 with the model's name
        m.up(conn)
        conn.execute("INSERT INTO _migrations VALUES (?, '2026-01-01')", [m.name])
    vecs = np.random.default_rng(5).standard_normal((3, 4)).astype("<f4")
    for n in range(3):
        conn.execute(
            "INSERT INTO items (id, kind, text, created_at, updated_at, content_hash) VALUES (?, 'memory', 't', 'x', 'x', ?)",
            [f"i{n}", f"h{n}"],
        )
        conn.execute("INSERT INTO units (uid, item_id, text) VALUES (?, ?, 't')", [n + 1, f"i{n}"])
    conn.execute("INSERT INTO vectors VALUES (1, 'model-a', 4, ?)", [vecs[0].tobytes()])
    conn.execute("INSERT INTO vectors VALUES (2, 'model-b', 4, ?)", [vecs[1].tobytes()])
    conn.execute("INSERT INTO vectors VALUES (3, 'model-a', 4, ?)", [vecs[2, :3].tobytes()])  # wrong size: re-embedded later
    generation = store.one("SELECT generation FROM index_state")[0]  # type: ignore[index]
    assert migrate(conn) == [m.name for m in MIGRATIONS[4:]]  # m0005 and every later one
    rows = store.query("SELECT v.uid, m.name, m.dim, v.vec FROM vectors v JOIN models m ON m.id = v.model ORDER BY v.uid")
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, "model-a", 4), (2, "model-b", 4)]
    assert np.array_equal(decode([r[3] for r in rows], 4), vecs[:2].astype("<f2").astype(np.float32))
    # Sealed index files of the float32 era no longer match; deletes still bump the generation.
    assert store.one("SELECT generation FROM index_state")[0] > generation  # type: ignore[index]
    before = store.one("SELECT generation FROM index_state")[0]  # type: ignore[index]
    conn.execute("DELETE FROM units WHERE uid = 1")
    assert store.one("SELECT generation FROM index_state")[0] == before + 1  # type: ignore[index]
    store.close()


def test_m0008_blanks_the_content_hash_older_purges_left_in_their_tombstones(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.db", new_key())
    conn = store.conn
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    names = [m.name for m in MIGRATIONS]
    for m in MIGRATIONS[: names.index("m0008_doc_versions")]:  # a vault whose purges kept the erased item's hash
        m.up(conn)
        conn.execute("INSERT INTO _migrations VALUES (?, '2026-01-01')", [m.name])
    conn.execute("INSERT INTO tombstones VALUES ('01JPURGED', ?, '2026-01-01T00:00:00+00:00')", ["ab" * 32])
    assert "m0008_doc_versions" in migrate(conn)
    assert [tuple(r) for r in store.query("SELECT id, content_hash FROM tombstones")] == [("01JPURGED", "")]
    store.close()
