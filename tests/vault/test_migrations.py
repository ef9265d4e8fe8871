from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vault import OWNER, Settings, open_vault
from vault.errors import SchemaTooNew
from vault.migrations import MIGRATIONS, SCHEMA_VERSION
from vault.store import Store
from vault.unlock import unlock_key

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
