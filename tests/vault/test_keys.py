from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from vault import Settings, init_vault, open_vault
from vault import keys as keyfile
from vault.crypto import DataKey, KdfParams
from vault.errors import InvalidInput, KeyFileCorrupt, NoVault, VaultExists, WrongPassphrase
from vault.settings import PRODUCTION_KDF
from vault.unlock import change_passphrase, recover, unlock_key

FAST = KdfParams(memory_kib=8192, iterations=1, lanes=1)


def _files(home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(home.iterdir()) if p.is_file()}


def test_production_kdf_meets_the_floor() -> None:
    assert PRODUCTION_KDF.memory_kib >= 64 * 1024
    assert PRODUCTION_KDF.iterations >= 3
    assert Settings.from_env(env={}).kdf == PRODUCTION_KDF


def test_data_key_never_prints_itself() -> None:
    _, key, _ = keyfile.create("long enough pass", FAST)
    assert key.hex() not in repr(key)
    assert repr(key) == "DataKey(****)"
    assert key.hex() not in f"{key}"


def test_passphrase_and_recovery_key_unwrap_the_same_data_key() -> None:
    kf, key, recovery = keyfile.create("long enough pass", FAST)
    parsed = keyfile.parse(kf.to_bytes())
    assert keyfile.unlock(parsed, "long enough pass") == key
    assert keyfile.unlock_with_recovery(parsed, recovery) == key
    assert keyfile.unlock_with_recovery(parsed, recovery.lower().replace("-", "-")) == key


def test_key_file_records_its_kdf_parameters() -> None:
    kf, _, _ = keyfile.create("long enough pass", FAST)
    body = json.loads(kf.to_bytes()[len(keyfile.MAGIC) :])
    assert body["format"] == "CVK1"
    assert body["kdf"]["alg"] == "argon2id"
    assert (body["kdf"]["memory_kib"], body["kdf"]["iterations"], body["kdf"]["lanes"]) == (8192, 1, 1)


def test_wrong_passphrase_writes_nothing(settings: Settings, recovery_key: str) -> None:
    before = _files(settings.home)
    with pytest.raises(WrongPassphrase):
        open_vault(settings, "not the passphrase")
    assert _files(settings.home) == before


def test_wrong_recovery_key_is_refused(settings: Settings, recovery_key: str) -> None:
    other = keyfile.new_recovery_key()
    before = _files(settings.home)
    with pytest.raises(WrongPassphrase):
        unlock_key(settings, recovery_key=other)
    with pytest.raises(WrongPassphrase):
        unlock_key(settings, recovery_key="CVR1-nonsense")
    assert _files(settings.home) == before


def test_damaged_key_file_is_reported_as_corrupt(settings: Settings, recovery_key: str) -> None:
    path = settings.key_path
    good = path.read_bytes()
    for damaged in (good[:40], b"XXXX" + good[4:], good.replace(b'"lanes": 1', b'"lanes": 2'), b""):
        path.write_bytes(damaged)
        with pytest.raises(KeyFileCorrupt):
            open_vault(settings, PASSPHRASE)


def test_tampered_slot_with_fixed_checksum_fails_authentication(settings: Settings, recovery_key: str) -> None:
    kf = keyfile.read(settings.key_path)
    slot = bytearray(kf.passphrase_slot)
    slot[-1] ^= 1
    forged = keyfile.KeyFile(kf.kdf, kf.salt, bytes(slot), kf.recovery_salt, kf.recovery_slot)
    settings.key_path.write_bytes(forged.to_bytes())
    with pytest.raises(WrongPassphrase):
        open_vault(settings, PASSPHRASE)


def test_lowered_kdf_parameters_break_the_slot(settings: Settings, recovery_key: str) -> None:
    kf = keyfile.read(settings.key_path)
    weaker = keyfile.KeyFile(KdfParams(8192, 1, 2), kf.salt, kf.passphrase_slot, kf.recovery_salt, kf.recovery_slot)
    settings.key_path.write_bytes(weaker.to_bytes())
    with pytest.raises(WrongPassphrase):
        open_vault(settings, PASSPHRASE)


def test_passphrase_change_rewraps_without_touching_the_database(settings: Settings, recovery_key: str) -> None:
    db_before = settings.db_path.read_bytes()
    change_passphrase(settings, PASSPHRASE, "a brand new passphrase")
    assert settings.db_path.read_bytes() == db_before
    with pytest.raises(WrongPassphrase):
        open_vault(settings, PASSPHRASE)
    open_vault(settings, "a brand new passphrase").close()
    # The recovery key survives a passphrase change.
    assert isinstance(unlock_key(settings, recovery_key=recovery_key), DataKey)


def test_recovery_sets_a_new_passphrase(settings: Settings, recovery_key: str) -> None:
    recover(settings, recovery_key, "recovered passphrase")
    open_vault(settings, "recovered passphrase").close()
    with pytest.raises(WrongPassphrase):
        open_vault(settings, PASSPHRASE)


def test_init_refuses_an_existing_vault_and_weak_passphrases(settings: Settings) -> None:
    with pytest.raises(InvalidInput):
        init_vault(settings, "short")
    assert not settings.home.exists() or not any(settings.home.iterdir())
    init_vault(settings, PASSPHRASE)
    with pytest.raises(VaultExists):
        init_vault(settings, PASSPHRASE)


def test_opening_a_missing_vault_says_so(settings: Settings) -> None:
    with pytest.raises(NoVault):
        open_vault(settings, PASSPHRASE)


def test_key_file_is_owner_only(settings: Settings, recovery_key: str) -> None:
    assert settings.key_path.stat().st_mode & 0o077 == 0
    assert settings.home.stat().st_mode & 0o077 == 0
