from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.crypto import SealError, new_key, open_sealed, seal


@given(data=st.binary(max_size=2048), aad=st.binary(max_size=64))
def test_seal_round_trips(data: bytes, aad: bytes) -> None:
    key = new_key()
    assert open_sealed(key, seal(key, data, aad), aad) == data


def test_every_kind_of_damage_raises_one_error() -> None:
    key = new_key()
    blob = seal(key, b"secret text", b"purpose")
    flipped = bytearray(blob)
    flipped[-3] ^= 0x01
    for bad_key, bad_blob, aad in (
        (key, blob[:-1], b"purpose"),
        (key, bytes(flipped), b"purpose"),
        (new_key(), blob, b"purpose"),
        (key, blob, b"other purpose"),
        (key, b"CVS0" + blob[4:], b"purpose"),
        (key, b"", b"purpose"),
    ):
        with pytest.raises(SealError):
            open_sealed(bad_key, bad_blob, aad)


def test_hazmat_is_imported_only_by_crypto() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "vault"
    users = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "hazmat" in p.read_text())
    assert users == ["crypto.py"]
