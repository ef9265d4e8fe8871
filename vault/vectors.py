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

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from vault.items import ROWS_PER_STATEMENT, Statement
from vault.store import Store

if TYPE_CHECKING:
    from numpy.typing import NDArray

DTYPE = "<f2"


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


def insert(
    store: Store, model: int, uids: Sequence[int], vecs: NDArray[np.float32] | NDArray[np.float16], *, live_units_only: bool = False
) -> None:
    """Write (or replace) the vectors of ``uids`` (rows of ``vecs``) and bump the generation once; the caller holds the transaction.

    ``live_units_only`` skips units deleted meanwhile (an embedding job racing a forget).
    """
    for sql, params in insert_statements(model, uids, vecs, live_units_only=live_units_only):
        store.execute(sql, params)


def insert_statements(
    model: int, uids: Sequence[int], vecs: NDArray[np.float32] | NDArray[np.float16], *, live_units_only: bool = False
) -> list[Statement]:
    """The statements ``insert`` runs, built apart from running them.

    One statement per ``ROWS_PER_STATEMENT`` rows: the ids as a JSON array and the
    vectors as one float16 blob that ``substr`` cuts per row, so no Python object is
    made or bound per vector (half the time of ``executemany`` at 100k rows). The last
    statement bumps the generation once for them all.
    """
    if not len(uids):
        return []
    half = np.ascontiguousarray(vecs, dtype=DTYPE)
    if half.ndim != 2 or len(half) != len(uids):
        raise ValueError(f"{len(uids)} ids for vectors of shape {half.shape}")
    size = half.shape[1] * half.itemsize
    live = " WHERE EXISTS (SELECT 1 FROM units WHERE uid = value)" if live_units_only else ""
    sql = f"INSERT OR REPLACE INTO vectors (uid, model, vec) SELECT value, ?2, substr(?3, key * ?4 + 1, ?4) FROM json_each(?1){live}"
    out: list[Statement] = []
    for start in range(0, len(uids), ROWS_PER_STATEMENT):
        part = [int(u) for u in uids[start : start + ROWS_PER_STATEMENT]]
        out.append((sql, [json.dumps(part), model, half[start : start + len(part)].tobytes(), size]))
    out.append(("UPDATE index_state SET generation = generation + ? WHERE id = 1", [len(uids)]))
    return out


__all__ = ["DTYPE", "decode", "insert", "insert_statements", "model_dim", "model_id", "rounded"]
