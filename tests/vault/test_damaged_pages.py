"""Damaged pages of a real SQLCipher vault (issue 29): a clear StoreCorrupt, never a driver traceback,
and a salvage export of everything still readable, audited only if the audit log can be written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.items import MemoryIn
from schemas.portable import Selection
from tests.conftest import PASSPHRASE
from tests.vault.test_store import PAGE, decrypt_pages
from vault import OWNER, Settings, VaultService, init_vault, open_vault
from vault.errors import KeyFileCorrupt, StoreCorrupt, VaultExists
from vault.unlock import unlock_key

TABLE_LEAF = 0x0D


@pytest.fixture(autouse=True)
def distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every note is kept as its own item (no near-duplicate merging)."""
    monkeypatch.setenv("CTXVAULT_DEDUP_THRESHOLD", "1.01")


def _vault(settings: Settings, memories: int = 60) -> list[tuple[str, str]]:
    """A closed vault (everything checkpointed into vault.db) of ``memories`` memories; their (id, content_hash)."""
    with open_vault(settings, PASSPHRASE) as svc:
        for n in range(memories):
            svc.remember(OWNER, MemoryIn(text=f"zqx salvage note {n:04d} " + "words to fill pages " * 12))
        return [(r[0], r[1]) for r in svc.store.query("SELECT id, content_hash FROM items ORDER BY rowid")]


def _page_holding(settings: Settings, needle: bytes) -> int:
    """The number (1-based) of the table leaf page whose decrypted content holds ``needle``."""
    data = settings.db_path.read_bytes()
    key = unlock_key(settings, PASSPHRASE).raw()
    for start in range(PAGE, len(data) - PAGE + 1, PAGE):
        plain = decrypt_pages(data[: start + PAGE], key, offset=start)
        if plain[0] == TABLE_LEAF and needle in plain:
            return start // PAGE + 1
    raise AssertionError(f"no leaf page holds {needle!r}")


def _damage(settings: Settings, page: int) -> None:
    """Flip bytes in the middle of a page: its HMAC no longer verifies, as after a bad sector."""
    with settings.db_path.open("r+b") as f:
        f.seek((page - 1) * PAGE + PAGE // 2)
        chunk = bytearray(f.read(16))
        f.seek((page - 1) * PAGE + PAGE // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))


def _root_page(settings: Settings, table: str) -> int:
    with open_vault(settings, PASSPHRASE) as svc:
        row = svc.store.one("SELECT rootpage FROM sqlite_master WHERE name = ?", [table])
        assert row is not None
        return int(row[0])


def _bundle_ids(folder: Path) -> set[str]:
    store = json.loads((folder / "memory-store.json").read_text())
    return {m["id"] for m in store["memories"]}


def _salvage(svc: VaultService, target: Path) -> tuple[set[str], list[str], bool]:
    summary = svc.export_bundle(OWNER, Selection(), target, plaintext=True, salvage=True)
    return _bundle_ids(target), summary.unreadable, summary.audited


def test_a_damaged_page_past_the_first_rows_is_store_corrupt_not_a_driver_error(settings: Settings, recovery_key: str) -> None:
    """The statement starts fine; the damaged page is read while rows are fetched."""
    items = _vault(settings)
    _damage(settings, _page_holding(settings, items[len(items) // 2][1].encode()))
    with open_vault(settings, PASSPHRASE) as svc, pytest.raises(StoreCorrupt):
        svc.store.query("SELECT id, text FROM items ORDER BY rowid")


def test_salvage_exports_every_item_outside_a_damaged_page_and_says_what_it_lost(
    settings: Settings, recovery_key: str, tmp_path: Path
) -> None:
    items = _vault(settings)
    victim = items[len(items) // 2]
    _damage(settings, _page_holding(settings, victim[1].encode()))
    with open_vault(settings, PASSPHRASE) as svc, pytest.raises(StoreCorrupt):
        svc.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    with open_vault(settings, PASSPHRASE) as svc:
        got, unreadable, audited = _salvage(svc, tmp_path / "salvaged")
    ids = [i for i, _ in items]
    assert got, unreadable
    assert victim[0] not in got
    assert got < set(ids)
    assert len(got) >= len(ids) - 15  # one leaf page of rows lost, not the table
    assert ids[0] in got and ids[-1] in got
    assert any("items:" in u and "could not be read" in u for u in unreadable)
    assert audited


def test_a_damaged_audit_page_blocks_writes_but_salvage_exports_everything_unaudited(
    settings: Settings, recovery_key: str, tmp_path: Path
) -> None:
    items = _vault(settings, memories=40)
    _damage(settings, _root_page(settings, "audit"))
    with open_vault(settings, PASSPHRASE) as svc, pytest.raises(StoreCorrupt):
        svc.remember(OWNER, MemoryIn(text="zqx a new note while the audit log is damaged"))
    with open_vault(settings, PASSPHRASE) as svc, pytest.raises(StoreCorrupt):
        svc.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    with open_vault(settings, PASSPHRASE) as svc:
        got, unreadable, audited = _salvage(svc, tmp_path / "salvaged")
    assert got == {i for i, _ in items}
    assert unreadable == []
    assert not audited


def test_a_missing_key_file_beside_a_database_says_restore_it_and_init_refuses(settings: Settings, recovery_key: str) -> None:
    _vault(settings, memories=2)
    settings.key_path.unlink()
    with pytest.raises(KeyFileCorrupt) as opened:
        open_vault(settings, PASSPHRASE)
    assert "vault.key is missing" in opened.value.message and "restore vault.key from a backup" in opened.value.message
    assert "ctxvault init" not in opened.value.message
    with pytest.raises(KeyFileCorrupt):
        unlock_key(settings, recovery_key=recovery_key)  # the recovery slot lives in vault.key too
    with pytest.raises(VaultExists) as created:
        init_vault(settings, PASSPHRASE)
    assert "vault.key is missing" in created.value.message
    assert settings.db_path.exists() and not settings.key_path.exists()
