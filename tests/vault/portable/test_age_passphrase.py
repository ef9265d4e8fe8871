"""age's passphrase mode, streamed (vault/portable/age_passphrase.py): the files open with pyrage (rage) and
Debian's `age`, theirs open here, and every damage is refused before or as the bad chunk is reached.

A low work factor keeps these fast; the format is the same at any.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pyrage  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vault.portable.conftest import tool
from tests.vault.portable.test_roundtrip import _age_decrypt_through_pty
from vault.portable import age_passphrase as ap

FAST = 10
CHUNK = ap.CHUNK
# Sizes at every chunk boundary: empty, one byte, a chunk less one, a chunk, a chunk and one, several.
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17]


def seal(data: bytes, passphrase: str = "pass phrase", work_factor: int = FAST) -> bytes:
    out = io.BytesIO()
    ap.encrypt(io.BytesIO(data), out, passphrase, work_factor=work_factor)
    return out.getvalue()


def unseal(data: bytes, passphrase: str = "pass phrase") -> bytes:
    out = io.BytesIO()
    ap.decrypt(io.BytesIO(data), out, passphrase)
    return out.getvalue()


@pytest.mark.parametrize("size", SIZES)
def test_ours_open_with_pyrage_and_here(size: int) -> None:
    data = os.urandom(size)
    assert pyrage.passphrase.decrypt(seal(data), "pass phrase") == data
    assert unseal(seal(data)) == data


@pytest.mark.parametrize("size", [0, CHUNK, 3 * CHUNK + 17])  # pyrage derives at its own work factor: ~1.5 s each
def test_pyrages_open_here(size: int) -> None:
    data = os.urandom(size)
    assert unseal(pyrage.passphrase.encrypt(data, "pass phrase")) == data


def test_debian_age_opens_a_streamed_file(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK + 5)
    sealed = tmp_path / "x.age"
    sealed.write_bytes(seal(data, "a passphrase for age"))
    plain = tmp_path / "x"
    assert _age_decrypt_through_pty(sealed, plain, "a passphrase for age") == 0
    assert plain.read_bytes() == data
    listing = subprocess.run([tool("age"), "--version"], capture_output=True, text=True, check=True, timeout=30)
    assert listing.stdout.strip()


def test_a_wrong_passphrase_is_named() -> None:
    with pytest.raises(ap.AgeError, match="wrong passphrase"):
        unseal(seal(b"secret"), "another one")


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(position: int, bit: int) -> None:
    sealed = bytearray(seal(b"the owner's memories " * 5000))
    position %= len(sealed)
    sealed[position] ^= 1 << bit
    with pytest.raises(ap.AgeError):
        unseal(bytes(sealed))


@pytest.mark.parametrize("region", ["salt", "work factor", "wrapped key", "mac", "nonce", "first chunk", "last chunk"])
def test_damage_in_each_part_of_the_file_is_refused(region: str) -> None:
    sealed = bytearray(seal(os.urandom(2 * CHUNK + 9)))
    lines = bytes(sealed).split(b"\n", 4)
    starts = {
        "salt": len(lines[0]) + 1 + len(b"-> scrypt "),
        "work factor": len(lines[0]) + 1 + len(lines[1]) - 1,
        "wrapped key": len(lines[0]) + len(lines[1]) + 2,
        "mac": len(lines[0]) + len(lines[1]) + len(lines[2]) + 3 + len(b"--- "),
        "nonce": len(lines[0]) + len(lines[1]) + len(lines[2]) + len(lines[3]) + 4,
        "first chunk": len(sealed) - 2 * (CHUNK + ap.TAG) - 9 - ap.TAG + 5,
        "last chunk": len(sealed) - 3,
    }
    at = starts[region]
    sealed[at] = (sealed[at] + 1) % 256 if region != "work factor" else ord("1")  # 10 → 11
    with pytest.raises(ap.AgeError):
        unseal(bytes(sealed))


@pytest.mark.parametrize("cut", [1, 16, CHUNK + 16, CHUNK + 17])
def test_a_truncated_file_is_refused(cut: int) -> None:
    """Cut at the end (a partial chunk), at a chunk boundary (the last chunk missing), inside the header."""
    sealed = seal(os.urandom(2 * CHUNK + 100))
    for end in (len(sealed) - cut, 40):
        with pytest.raises(ap.AgeError):
            unseal(sealed[:end])


def test_a_full_chunk_then_nothing_must_carry_the_last_flag() -> None:
    """Dropping the last chunk of a file whose chunks are full leaves a stream whose new end is not marked last."""
    sealed = seal(os.urandom(2 * CHUNK))
    header_and_nonce = len(sealed) - 2 * (CHUNK + ap.TAG)
    with pytest.raises(ap.AgeError):
        unseal(sealed[: header_and_nonce + CHUNK + ap.TAG])


def test_a_hostile_work_factor_is_refused_before_any_derivation() -> None:
    """A header asking for 2^30 (128 GiB of scrypt memory) is refused at once, not attempted."""
    sealed = seal(b"x")
    head, rest = sealed.split(b" %d\n" % FAST, 1)
    with pytest.raises(ap.AgeError, match="work factor 30"):
        unseal(head + b" 30\n" + rest)


@pytest.mark.parametrize(
    "header",
    [
        b"age-encryption.org/v2\n",
        b"age-encryption.org/v1\n-> X25519 abc\n",
        b"age-encryption.org/v1\n" + b"-> scrypt " + b"A" * 5000,
        b"age-encryption.org/v1\n-> scrypt",
    ],
)
def test_other_or_malformed_headers_are_refused(header: bytes) -> None:
    with pytest.raises(ap.AgeError):
        unseal(header + b"\n" * 3)


def test_two_files_of_the_same_text_share_nothing() -> None:
    a, b = seal(b"same text"), seal(b"same text")
    assert a != b and a[-40:] != b[-40:]
