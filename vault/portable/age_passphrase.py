"""age's passphrase mode (the scrypt recipient of age v1), streamed: a bundle of any size in bounded memory.

pyrage seals and opens passphrase files as whole byte strings, so a passphrase bundle was
capped at 512 MiB and cost twice its size in memory (issue 27). This module writes and
reads the same format from a stream, one 64 KiB chunk at a time; the files it writes open
with ``age -d`` and pyrage, and it opens theirs (tests/vault/portable/test_age_passphrase.py).

The format (age-encryption.org/v1, the C2SP age specification):

- a header: the version line, one ``-> scrypt <salt> <log2 N>`` stanza whose body is the
  16-byte file key sealed (ChaCha20-Poly1305, zero nonce) under
  scrypt(passphrase, "age-encryption.org/v1/scrypt" + salt, N, r=8, p=1), and a ``---`` line
  carrying an HMAC-SHA256 of the header under HKDF(file key, info "header");
- a 16-byte nonce, then the payload in 64 KiB chunks, each sealed with ChaCha20-Poly1305 under
  HKDF(file key, salt nonce, info "payload"), the chunk nonce being an 11-byte counter and a
  last-chunk flag.

Opening refuses a work factor above ``MAX_WORK_FACTOR`` before deriving anything: scrypt's
memory is 128 · r · N bytes, so a hostile header could otherwise ask for gigabytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from typing import IO

from vault.crypto import SealError, SecretKey, chacha_open, chacha_seal, hkdf

VERSION_LINE = b"age-encryption.org/v1\n"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
WORK_FACTOR = 18  # log2 N, as age and rage write (~1.5 s here, 256 MiB for scrypt)
MAX_WORK_FACTOR = 20  # 1 GiB for scrypt: the most a bundle may ask of this machine
CHUNK = 64 * 1024
TAG = 16
_HEADER_LIMIT = 4096  # a one-stanza header is about 130 bytes
_STANZA = re.compile(rb"-> scrypt ([A-Za-z0-9+/]{22}) ([1-9][0-9]?)\n([A-Za-z0-9+/]{43})\n--- ([A-Za-z0-9+/]{43})\n")


class AgeError(Exception):
    """The stream is not an age passphrase file this module opens, or it fails to authenticate."""


class WrongPassphrase(AgeError):
    """The file key did not open: another passphrase (or a damaged stanza)."""


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    raw = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    if _b64(raw) != text:
        raise AgeError("non-canonical base64 in the header")
    return raw


def _header_mac(file_key: bytes, header: bytes) -> bytes:
    """HMAC-SHA256 of the header up to its ``---``, under HKDF(file key, empty salt, "header")."""
    return hmac.new(hkdf(file_key, b"header", b"").raw(), header, hashlib.sha256).digest()


def _wrap_key(passphrase: str, salt: bytes, work_factor: int) -> SecretKey:
    n = 1 << work_factor
    return SecretKey(hashlib.scrypt(passphrase.encode(), salt=SCRYPT_LABEL + salt, n=n, r=8, p=1, maxmem=129 * 8 * n + (1 << 20), dklen=32))


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt(source: IO[bytes], sink: IO[bytes], passphrase: str, work_factor: int = WORK_FACTOR) -> None:
    """Seal everything ``source`` yields into ``sink`` as an age passphrase file."""
    file_key, salt = os.urandom(16), os.urandom(16)
    body = chacha_seal(_wrap_key(passphrase, salt, work_factor), bytes(12), file_key)
    header = VERSION_LINE + b"-> scrypt " + _b64(salt) + b" %d\n" % work_factor + _b64(body) + b"\n---"
    mac = _header_mac(file_key, header)
    nonce = os.urandom(16)
    sink.write(header + b" " + _b64(mac) + b"\n" + nonce)
    payload = hkdf(file_key, b"payload", nonce)
    chunk, counter = _read_full(source, CHUNK), 0
    while True:
        ahead = _read_full(source, CHUNK)
        last = not ahead
        sink.write(chacha_seal(payload, _nonce(counter, last), chunk))
        if last:
            return
        chunk, counter = ahead, counter + 1


def decrypt(source: IO[bytes], sink: IO[bytes], passphrase: str) -> None:
    """Open the age passphrase file ``source`` into ``sink``, a chunk at a time; every chunk is authenticated
    before it is written, and the end of the stream is checked (a truncated file is refused at its end).

    Raises:
        AgeError: not a passphrase file, a work factor above MAX_WORK_FACTOR, wrong passphrase,
            tampered or truncated.
    """
    head = source.read(len(VERSION_LINE))
    if head != VERSION_LINE:
        raise AgeError("not an age file")
    rest = _read_lines(source, 3)  # the stanza's line, its body, and the MAC line
    match = _STANZA.fullmatch(rest)
    if match is None:
        raise AgeError("not a single-passphrase age file, or a malformed header")
    salt, work_factor, body, mac = _unb64(match[1]), int(match[2]), _unb64(match[3]), _unb64(match[4])
    if len(salt) != 16 or len(body) != 32 or len(mac) != 32:
        raise AgeError("malformed scrypt stanza")
    if work_factor > MAX_WORK_FACTOR:
        raise AgeError(f"the file asks for scrypt work factor {work_factor}; at most {MAX_WORK_FACTOR} is accepted")
    try:
        file_key = chacha_open(_wrap_key(passphrase, salt, work_factor), bytes(12), body)
    except SealError as exc:
        raise WrongPassphrase("wrong passphrase") from exc
    header = head + rest[: rest.rindex(b"---") + 3]
    if not hmac.compare_digest(_header_mac(file_key, header), mac):
        raise AgeError("the header was tampered with")
    nonce = _read_full(source, 16)
    if len(nonce) != 16:
        raise AgeError("truncated file")
    payload = hkdf(file_key, b"payload", nonce)
    sealed, counter = _read_full(source, CHUNK + TAG), 0
    while True:
        if len(sealed) < TAG:
            raise AgeError("truncated file")
        ahead = _read_full(source, CHUNK + TAG) if len(sealed) == CHUNK + TAG else b""
        last = not ahead
        try:
            plain = chacha_open(payload, _nonce(counter, last), sealed)
        except SealError as exc:
            raise AgeError("the file is truncated or tampered with") from exc
        if last and not plain and counter > 0:
            raise AgeError("an empty last chunk after data")
        sink.write(plain)
        if last:
            return
        sealed, counter = ahead, counter + 1


def _read_full(source: IO[bytes], size: int) -> bytes:
    parts, left = [], size
    while left:
        part = source.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _read_lines(source: IO[bytes], lines: int) -> bytes:
    """``lines`` header lines, at most _HEADER_LIMIT bytes in all (read a byte at a time: the payload follows)."""
    out = bytearray()
    while lines:
        byte = source.read(1)
        if not byte:
            raise AgeError("truncated header")
        out += byte
        if len(out) > _HEADER_LIMIT:
            raise AgeError("the header is too long")
        if byte == b"\n":
            lines -= 1
    return bytes(out)
