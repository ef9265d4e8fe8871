"""The import's spool: a bundle's file members, held on disk sealed with a key that lives in memory only.

An import reads a bundle member by member (issue 27). Documents' bytes do not stay in memory
until the merge writes them: each is sealed with age to an X25519 identity generated for this
import, appended to one unlinked temporary file, and read back (one at a time) by the statement
that stores it. The plaintext never touches disk; the key dies with the process, and the file
has no name from the moment it is created.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import IO, Any

import pyrage  # type: ignore[import-untyped]  # pyrage 1.4 ships no type stubs

from vault.errors import BadBundle, StorageFailed


class _Hashing:
    """A reader that counts and hashes what passes through it, refusing more than ``limit`` bytes."""

    def __init__(self, source: IO[bytes], limit: int) -> None:
        self._source, self._limit = source, limit
        self.digest = hashlib.sha256()
        self.count = 0
        self.error: BaseException | None = None  # pyrage reports a reader's exception as its own EncryptError

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._source.read(n if n >= 0 else self._limit - self.count + 1)
        except BaseException as exc:
            self.error = exc
            raise
        self.count += len(data)
        if self.count > self._limit:
            self.error = BadBundle("a bundle member is longer than its header says")
            raise self.error
        self.digest.update(data)
        return data


class _Range:
    """A reader of ``length`` bytes of a file descriptor from ``offset`` (pread: no shared position)."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self._fd, self._offset, self._left = fd, offset, length

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._left:
            n = self._left
        data = os.pread(self._fd, n, self._offset) if n else b""
        self._offset += len(data)
        self._left -= len(data)
        return data


@dataclass(frozen=True, slots=True)
class Spooled:
    """One member in the spool (a ``vault.blob.Blob``)."""

    spool: Spool
    offset: int
    length: int
    size: int
    sha256: str

    def read(self) -> bytes:
        return self.spool.read(self)


class Spool:
    """Sealed members of one import; ``close`` (or the process's end) removes them with the file."""

    def __init__(self, directory: str | None = None) -> None:
        self._identity: Any = pyrage.x25519.Identity.generate()
        self._recipient: Any = self._identity.to_public()
        # Unlinked at once (O_TMPFILE where the kernel has it), mode 0600; it outlives any with-block: close() ends it.
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self._end = 0

    def put(self, source: IO[bytes], size: int) -> Spooled:
        """Seal ``size`` bytes read from ``source``; the result carries their sha256.

        Raises:
            BadBundle: the source holds fewer or more bytes than ``size``.
        """
        reader = _Hashing(source, size)
        try:
            self._file.seek(self._end)
            pyrage.encrypt_io(reader, self._file, [self._recipient])
            self._file.flush()
        except (pyrage.EncryptError, OSError) as exc:
            if reader.error is not None:
                raise reader.error from None
            raise StorageFailed(f"cannot hold the bundle's files in a temporary file while importing: {exc}") from exc
        if reader.count != size:
            raise BadBundle("a bundle member is truncated")
        start, self._end = self._end, self._file.tell()
        return Spooled(self, start, self._end - start, size, reader.digest.hexdigest())

    def read(self, member: Spooled) -> bytes:
        import io

        out = io.BytesIO()
        pyrage.decrypt_io(_Range(self._file.fileno(), member.offset, member.length), out, [self._identity])
        data = out.getvalue()
        if len(data) != member.size or hashlib.sha256(data).hexdigest() != member.sha256:
            raise BadBundle("the import's spool changed under it (disk error?)")
        return data

    def close(self) -> None:
        self._file.close()
