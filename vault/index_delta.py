"""The sealed index's delta file: a small write appends a sealed record instead of re-sealing the whole index.

Re-sealing a 100k-vector index after a one-item ``add`` cost ~0.8 s of CPU (issue 25). Instead,
``<model>.cvd`` beside ``<model>.cvx`` (vault/index.py) takes one record per save: the ids removed,
the ids added with their float16 vectors (the values the vectors table holds), and the database
generations the record leads from and to. It is folded into a new base once it holds more than
``fold_bound`` vectors, or at ``reindex`` (vault/sealed_index.py).

A frame is ``base_id (16 bytes) | length (u32 LE) | seal(data_key, record, aad)``; the AAD names
the format, the model and the base id, so a record moved to another vault, model or base fails
authentication. The base id is in plaintext so that a reader tells frames of an older base (left
by a crash between writing a new base and deleting the old delta: skipped) from damaged ones
(skipped too, and reported by `ctxvault doctor`). A torn last frame (a crash while appending)
is simply the end of the file. Records are chained by generation, not by file order: two
processes appending at once may land in either order. Like the base, the file is a cache of the
``vectors`` table: any record that does not chain from the base's generation is ignored, and
whatever the chain does not reach is caught up from the table.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vault.crypto import DataKey, SealError, open_sealed, seal

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAGIC = b"CVD1"
_AAD = b"ctxvault index delta v1"
BASE_ID_BYTES = 16
_FRAME = struct.Struct("<I")
MAX_FRAME = 64 << 20  # a record is a save's worth of vectors: far below this


@dataclass(frozen=True, slots=True)
class Delta:
    """One save's changes: ``removed`` ids, then ``ids`` (re)added with ``vecs``; database generation ``start`` to ``end``."""

    start: int
    end: int
    removed: NDArray[np.int64]
    ids: NDArray[np.int64]
    vecs: NDArray[np.float16]

    @property
    def vectors(self) -> int:
        return len(self.ids) + len(self.removed)


@dataclass(slots=True)
class Scan:
    """What reading the file from an offset found."""

    records: list[Delta] = field(default_factory=list)
    end: int = 0  # the offset read up to (a torn tail is left for the next read)
    stale: int = 0  # frames of another base (a fold's leftovers)
    damaged: int = 0  # frames of this base that failed authentication


def delta_file(base: Path) -> Path:
    """The delta file beside the sealed base ``base``."""
    return base.with_suffix(".cvd")


def _aad(model: str, base_id: bytes) -> bytes:
    return _AAD + b"|" + model.encode() + b"|" + base_id


def encode(delta: Delta) -> bytes:
    head = json.dumps({"start": delta.start, "end": delta.end, "removed": len(delta.removed), "ids": len(delta.ids)}).encode()
    body = (
        np.ascontiguousarray(delta.removed, dtype="<i8").tobytes()
        + np.ascontiguousarray(delta.ids, dtype="<i8").tobytes()
        + np.ascontiguousarray(delta.vecs, dtype="<f2").tobytes()
    )
    return MAGIC + _FRAME.pack(len(head)) + head + body


def decode(raw: bytes, dim: int) -> Delta:
    """Parse ``encode`` output.

    Raises:
        ValueError: not a record of this format, or of another dimension.
    """
    if not raw.startswith(MAGIC) or len(raw) < 8:
        raise ValueError("not a CVD1 record")
    (nh,) = _FRAME.unpack(raw[4:8])
    head = json.loads(raw[8 : 8 + nh])
    nr, na = int(head["removed"]), int(head["ids"])
    body = raw[8 + nh :]
    if len(body) != 8 * nr + 8 * na + 2 * na * dim:
        raise ValueError("record body does not match its header")
    removed = np.frombuffer(body, dtype="<i8", count=nr).astype(np.int64)
    ids = np.frombuffer(body, dtype="<i8", count=na, offset=8 * nr).astype(np.int64)
    vecs = np.frombuffer(body, dtype="<f2", offset=8 * (nr + na)).reshape(na, dim).astype(np.float16)
    return Delta(start=int(head["start"]), end=int(head["end"]), removed=removed, ids=ids, vecs=vecs)


def append(path: Path, key: DataKey, model: str, base_id: bytes, delta: Delta) -> int | None:
    """Append one sealed record in a single write (O_APPEND, 0600); the bytes written, None when the disk refused it."""
    frame = seal(key, encode(delta), _aad(model, base_id))
    data = base_id + _FRAME.pack(len(frame)) + frame
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return None
    try:
        written = os.write(fd, data)
    except OSError:
        return None
    finally:
        os.close(fd)
    # No fsync, as for the base: a torn frame ends the file, and what it held is caught up from the table.
    return written if written == len(data) else None


def read(path: Path, key: DataKey, model: str, base_id: bytes, dim: int, offset: int = 0) -> Scan:
    """The records of base ``base_id`` from ``offset`` on (a missing file holds none)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            raw = f.read()
    except OSError:
        return Scan(end=offset)
    scan, at = Scan(end=offset), 0
    head = BASE_ID_BYTES + _FRAME.size
    while len(raw) - at >= head:
        frame_base = raw[at : at + BASE_ID_BYTES]
        (n,) = _FRAME.unpack(raw[at + BASE_ID_BYTES : at + head])
        if n > MAX_FRAME or len(raw) - at - head < n:
            break  # a torn tail, or garbage: nothing after it can be framed
        blob = raw[at + head : at + head + n]
        at += head + n
        scan.end = offset + at
        if frame_base != base_id:
            scan.stale += 1
            continue
        try:
            scan.records.append(decode(open_sealed(key, blob, _aad(model, base_id)), dim))
        except (SealError, ValueError, KeyError):
            scan.damaged += 1
    return scan


def chain(records: list[Delta], start: int) -> tuple[list[Delta], int]:
    """The records leading from generation ``start``, in order, and the generation they reach.

    Two records leading from one generation (which no correct writer makes) end the chain there.
    """
    by_start: dict[int, Delta | None] = {}
    for record in records:
        by_start[record.start] = None if record.start in by_start else record
    out: list[Delta] = []
    at = start
    while (found := by_start.get(at)) is not None and found.end > at:
        out.append(found)
        at = found.end
    return out, at


def discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


__all__ = ["BASE_ID_BYTES", "Delta", "Scan", "append", "chain", "decode", "delta_file", "discard", "encode", "read"]
