"""The key file (format CVK1): the random data key, wrapped by a passphrase and a recovery key.

Layout: ``b"CVK1\\n"`` followed by UTF-8 JSON::

    {"format": "CVK1", "kdf": {"alg": "argon2id", "memory_kib", "iterations", "lanes", "salt"},
     "passphrase_slot": "<b64 sealed data key>", "recovery_slot": "<b64 sealed data key>",
     "checksum": "<sha256 hex of the canonical JSON without this field>"}

The passphrase slot is sealed under Argon2id(passphrase); the recovery slot under
HKDF(recovery key). Each slot's associated data binds the KDF header, so editing the
parameters or salt makes unwrapping fail. The checksum catches accidental damage
with a clear message, before any passphrase is tried.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault.crypto import DataKey, KdfParams, SealError, derive_kek, hkdf, new_key, open_sealed, random_bytes, seal
from vault.errors import InvalidInput, KeyFileCorrupt, StorageFailed, VaultReadOnly, WrongPassphrase

MAGIC = b"CVK1\n"
RECOVERY_PREFIX = "CVR1"
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
MIN_PASSPHRASE = 8


@dataclass(frozen=True, slots=True)
class KeyFile:
    kdf: KdfParams
    salt: bytes
    passphrase_slot: bytes
    recovery_salt: bytes
    recovery_slot: bytes

    def header(self) -> bytes:
        """The bytes every slot's seal is bound to."""
        k = self.kdf
        return f"CVK1|argon2id|{k.memory_kib}|{k.iterations}|{k.lanes}|{self.salt.hex()}".encode()

    def to_bytes(self) -> bytes:
        body = self._body()
        body["checksum"] = _checksum(body)
        return MAGIC + json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"

    def _body(self) -> dict[str, Any]:
        return {
            "format": "CVK1",
            "kdf": {
                "alg": "argon2id",
                "memory_kib": self.kdf.memory_kib,
                "iterations": self.kdf.iterations,
                "lanes": self.kdf.lanes,
                "salt": _b64(self.salt),
            },
            "passphrase_slot": _b64(self.passphrase_slot),
            "recovery_salt": _b64(self.recovery_salt),
            "recovery_slot": _b64(self.recovery_slot),
        }


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _passphrase_aad(kf: KeyFile) -> bytes:
    return kf.header() + b"|passphrase"


def _recovery_aad(recovery_salt: bytes) -> bytes:
    return b"CVK1|recovery|" + recovery_salt.hex().encode()


def check_passphrase_strength(passphrase: str) -> None:
    """Raises InvalidInput for a passphrase too short to protect a vault."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvalidInput(f"passphrase must be at least {MIN_PASSPHRASE} characters")


def new_recovery_key() -> str:
    """Return a random 160-bit recovery key as grouped base32: CVR1-XXXX-…"""
    raw = random_bytes(20)
    bits = int.from_bytes(raw, "big")
    chars = "".join(_B32[(bits >> (5 * i)) & 31] for i in reversed(range(32)))
    return RECOVERY_PREFIX + "-" + "-".join(chars[i : i + 4] for i in range(0, 32, 4))


def _recovery_secret(recovery_key: str) -> bytes:
    cleaned = recovery_key.strip().upper().replace(" ", "")
    parts = cleaned.split("-")
    if parts[0] != RECOVERY_PREFIX or len("".join(parts[1:])) != 32 or any(c not in _B32 for c in "".join(parts[1:])):
        raise WrongPassphrase("that is not a valid recovery key (expected CVR1-XXXX-… with 8 groups)")
    return "".join(parts[1:]).encode()


def create(passphrase: str, kdf: KdfParams) -> tuple[KeyFile, DataKey, str]:
    """Make a new data key wrapped by ``passphrase`` and a fresh recovery key."""
    check_passphrase_strength(passphrase)
    key = new_key()
    recovery = new_recovery_key()
    rsalt = random_bytes(16)
    rkek = hkdf(_recovery_secret(recovery), b"ctxvault recovery v1", rsalt)
    slot = seal(rkek, key.raw(), _recovery_aad(rsalt))
    return _with_passphrase(key, passphrase, kdf, rsalt, slot), key, recovery


def _with_passphrase(key: DataKey, passphrase: str, kdf: KdfParams, rsalt: bytes, rslot: bytes) -> KeyFile:
    salt = random_bytes(16)
    draft = KeyFile(kdf=kdf, salt=salt, passphrase_slot=b"", recovery_salt=rsalt, recovery_slot=rslot)
    kek = derive_kek(passphrase.encode(), salt, kdf)
    return KeyFile(
        kdf=kdf,
        salt=salt,
        passphrase_slot=seal(kek, key.raw(), _passphrase_aad(draft)),
        recovery_salt=rsalt,
        recovery_slot=rslot,
    )


def unlock(kf: KeyFile, passphrase: str) -> DataKey:
    """Unwrap the data key with the passphrase.

    Raises:
        WrongPassphrase: the passphrase does not open the slot.
    """
    kek = derive_kek(passphrase.encode(), kf.salt, kf.kdf)
    try:
        return DataKey(open_sealed(kek, kf.passphrase_slot, _passphrase_aad(kf)))
    except SealError as exc:
        raise WrongPassphrase("wrong passphrase") from exc


def unlock_with_recovery(kf: KeyFile, recovery_key: str) -> DataKey:
    """Unwrap the data key with the recovery key.

    Raises:
        WrongPassphrase: the recovery key is malformed or does not open the slot.
    """
    rkek = hkdf(_recovery_secret(recovery_key), b"ctxvault recovery v1", kf.recovery_salt)
    try:
        return DataKey(open_sealed(rkek, kf.recovery_slot, _recovery_aad(kf.recovery_salt)))
    except SealError as exc:
        raise WrongPassphrase("wrong recovery key") from exc


def rewrap(kf: KeyFile, key: DataKey, new_passphrase: str, kdf: KdfParams) -> KeyFile:
    """Wrap the same data key under a new passphrase with a fresh salt; data stays as it is."""
    check_passphrase_strength(new_passphrase)
    return _with_passphrase(key, new_passphrase, kdf, kf.recovery_salt, kf.recovery_slot)


def parse(blob: bytes) -> KeyFile:
    """Read a key file.

    Raises:
        KeyFileCorrupt: wrong magic, bad JSON, missing fields, or a checksum mismatch.
    """
    if not blob.startswith(MAGIC):
        raise KeyFileCorrupt("the key file is not a Context Vault key file (bad header)")
    try:
        body = json.loads(blob[len(MAGIC) :].decode())
        checksum = body.pop("checksum")
        if body.get("format") != "CVK1":
            raise KeyFileCorrupt(f"unknown key file format {body.get('format')!r}")
        if _checksum(body) != checksum:
            raise KeyFileCorrupt("the key file has been altered or damaged (checksum mismatch)")
        kdf = body["kdf"]
        if kdf["alg"] != "argon2id":
            raise KeyFileCorrupt(f"unknown key derivation {kdf['alg']!r}")
        return KeyFile(
            kdf=KdfParams(memory_kib=int(kdf["memory_kib"]), iterations=int(kdf["iterations"]), lanes=int(kdf["lanes"])),
            salt=base64.b64decode(kdf["salt"], validate=True),
            passphrase_slot=base64.b64decode(body["passphrase_slot"], validate=True),
            recovery_salt=base64.b64decode(body["recovery_salt"], validate=True),
            recovery_slot=base64.b64decode(body["recovery_slot"], validate=True),
        )
    except KeyFileCorrupt:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise KeyFileCorrupt("the key file is damaged (unreadable fields)") from exc


def read(path: Path) -> KeyFile:
    """Read the key file at ``path``; a damaged one is named with what to do (issue 27).

    Raises:
        KeyFileCorrupt: missing, or as ``parse``.
    """
    try:
        blob = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileCorrupt(f"no key file at {path}: restore vault.key from a backup") from exc
    try:
        return parse(blob)
    except KeyFileCorrupt as exc:
        raise KeyFileCorrupt(
            f"{exc.message} ({path}): restore vault.key from a backup; the passphrase and the recovery key "
            "both open slots inside this file, so neither helps without it, and the database is untouched"
        ) from exc


def write(path: Path, kf: KeyFile) -> None:
    """Replace the key file atomically (write, fsync, rename), readable by the owner only."""
    tmp = path.with_suffix(".key.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(kf.to_bytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        # The old key file is untouched until the rename: the old passphrase still opens it.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise VaultReadOnly(
                f"the vault is read-only ({path.parent}): the key file cannot be replaced; the passphrase is unchanged"
            ) from exc
        raise StorageFailed(
            f"the disk refused the new key file ({exc.strerror}): the passphrase is unchanged; free space and try again"
        ) from exc
