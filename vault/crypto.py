"""Our only hazmat room: every use of ``cryptography.hazmat`` lives here.

Others call recipes: ``new_key``, ``derive_kek``, ``seal``, ``open_sealed``,
``hkdf``, and ChaCha20-Poly1305 with a caller's nonce for age's format (``chacha_seal``,
``chacha_open``: vault/portable/age_passphrase.py). A sealed blob is ``b"CVS1" | nonce(12) | AES-256-GCM(ciphertext+tag)``;
the associated data binds it to its purpose, so a blob moved to another slot fails.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEAL_MAGIC = b"CVS1"
_NONCE = 12
KEY_BYTES = 32


class SealError(Exception):
    """A sealed blob failed to open: truncated, altered, or the wrong key. One error for all."""


class SecretKey:
    """A 256-bit key that never prints itself."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise ValueError("a key is 32 bytes")
        self._raw = raw

    def raw(self) -> bytes:
        return self._raw

    def hex(self) -> str:
        return self._raw.hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)


class DataKey(SecretKey):
    """The random key that encrypts the database and every derived file."""


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id parameters, recorded in the key file so they can change later."""

    memory_kib: int
    iterations: int
    lanes: int


def new_key() -> DataKey:
    """Return a fresh random data key."""
    return DataKey(os.urandom(KEY_BYTES))


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def derive_kek(secret: bytes, salt: bytes, params: KdfParams) -> SecretKey:
    """Stretch a passphrase into a key-encryption key with Argon2id."""
    kdf = Argon2id(
        salt=salt,
        length=KEY_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return SecretKey(kdf.derive(secret))


def hkdf(secret: bytes, info: bytes, salt: bytes | None = None) -> SecretKey:
    """Derive a key from high-entropy input (a recovery key, or the data key for a sub-purpose)."""
    return SecretKey(HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(secret))


def seal(key: SecretKey, data: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``data``; ``aad`` names what the blob is for."""
    nonce = os.urandom(_NONCE)
    return SEAL_MAGIC + nonce + AESGCM(key.raw()).encrypt(nonce, data, aad)


def open_sealed(key: SecretKey, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a blob made by ``seal``.

    Raises:
        SealError: for every failure (bad magic, truncation, tampering, wrong key).
    """
    head = len(SEAL_MAGIC) + _NONCE
    if len(blob) < head + 16 or not blob.startswith(SEAL_MAGIC):
        raise SealError("not a sealed blob")
    nonce = blob[len(SEAL_MAGIC) : head]
    try:
        return AESGCM(key.raw()).decrypt(nonce, blob[head:], aad)
    except InvalidTag as exc:
        raise SealError("sealed blob failed authentication") from exc


def chacha_seal(key: SecretKey, nonce: bytes, data: bytes) -> bytes:
    """ChaCha20-Poly1305 of ``data`` under a nonce the caller guarantees unique for ``key`` (age's format fixes them)."""
    return ChaCha20Poly1305(key.raw()).encrypt(nonce, data, None)


def chacha_open(key: SecretKey, nonce: bytes, blob: bytes) -> bytes:
    """Decrypt what ``chacha_seal`` made.

    Raises:
        SealError: tampered, truncated, or another key or nonce.
    """
    try:
        return ChaCha20Poly1305(key.raw()).decrypt(nonce, blob, None)
    except InvalidTag as exc:
        raise SealError("chunk failed authentication") from exc
