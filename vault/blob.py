"""File contents read only when they are written: a document's bytes as a size, a digest and a reader.

Export and import move documents one at a time (issue 27): a bundle's members stay in the
database (exporting) or in the import's sealed spool (importing) until the one statement
or tar member that needs them, so memory holds one document's bytes at a time, not a
bundle's. ``Content`` is what a document payload carries: the bytes themselves, or a
``Blob`` that reads them.
"""

from __future__ import annotations

from typing import Protocol


class Blob(Protocol):
    """Bytes that are read when needed: their size and sha256 are known before."""

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    def read(self) -> bytes:
        """The bytes (one document's: read, write, let go)."""
        ...


Content = bytes | Blob


def content(value: Content) -> bytes:
    """The bytes of ``value``, read now if it is a Blob."""
    return value if isinstance(value, bytes) else value.read()


def content_size(value: Content) -> int:
    return len(value) if isinstance(value, bytes) else value.size
