"""The vectors table: one float16 vector per unit, with the id of the model that made it.

float16 halves the pages of the largest table (a 384-dim vector is 768 bytes, five to
a page instead of two), which halves what SQLCipher encrypts on every bulk write;
its rounding (relative 2^-11 per component) moves a cosine by ~1e-4, far below the
gap between neighbours that ranking depends on. The faiss index is built from the
same rounded values, so the index and the table always agree.

Every write goes through ``insert``, which bumps ``index_state.generation`` once per
statement (a per-row trigger cost ~0.5 s per 100k rows); deletes and updates keep
their triggers (m0005).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from vault.store import Store

if TYPE_CHECKING:
    from numpy.typing import NDArray

DTYPE = "<f2"


def encode(vecs: NDArray[np.float32] | NDArray[np.float16]) -> list[bytes]:
    """One little-endian float16 blob per row."""
    half = np.ascontiguousarray(vecs, dtype=DTYPE)
    return [row.tobytes() for row in half]


def decode(blobs: Sequence[bytes], dim: int) -> NDArray[np.float32]:
    """Stored blobs back to a float32 matrix (rows of the wrong size are a bug upstream)."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=DTYPE).reshape(len(blobs), dim).astype(np.float32)


def rounded(vecs: NDArray[np.float32] | NDArray[np.float16]) -> NDArray[np.float32]:
    """The values the table will hold: what an index built now must hold too (float16 input is taken as is)."""
    half = vecs if vecs.dtype == np.float16 else np.asarray(vecs, dtype=np.float32).astype(DTYPE)
    out: NDArray[np.float32] = half.astype(np.float32)
    return out


def model_id(store: Store, name: str, dim: int | None = None) -> int | None:
    """The id of ``name`` in ``models``; registered first when ``dim`` is given."""
    row = store.one("SELECT id FROM models WHERE name = ?", [name])
    if row is not None:
        return int(row[0])
    if dim is None:
        return None
    store.execute("INSERT INTO models (name, dim) VALUES (?, ?)", [name, dim])
    row = store.one("SELECT id FROM models WHERE name = ?", [name])
    return int(row[0]) if row else None


def model_dim(store: Store, name: str) -> int | None:
    row = store.one("SELECT dim FROM models WHERE name = ?", [name])
    return int(row[0]) if row else None


def insert(store: Store, model: int, uids: Sequence[int], blobs: Sequence[bytes], *, live_units_only: bool = False) -> None:
    """Write (or replace) the vectors of ``uids`` and bump the generation once; the caller holds the transaction.

    ``live_units_only`` skips units deleted meanwhile (an embedding job racing a forget).
    """
    if not uids:
        return
    if live_units_only:
        sql = "INSERT OR REPLACE INTO vectors (uid, model, vec) SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM units WHERE uid = ?1)"
    else:
        sql = "INSERT OR REPLACE INTO vectors (uid, model, vec) VALUES (?, ?, ?)"
    store.executemany(sql, [(u, model, b) for u, b in zip(uids, blobs, strict=True)])
    store.execute("UPDATE index_state SET generation = generation + ? WHERE id = 1", [len(uids)])


__all__ = ["DTYPE", "decode", "encode", "insert", "model_dim", "model_id", "rounded"]
