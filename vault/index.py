"""The vector index: faiss inner product over unit vectors, persisted sealed, rebuilt when stale.

Exact (flat) search while the index is small; HNSW past ``settings.ann_threshold``
vectors (recall@10 ≥ 0.95 of exact, tests/vault/test_index.py). The file on disk is
``seal(data_key, CVX1 header + faiss bytes, aad)``: vectors can be inverted back to
text, so they never touch disk in plaintext. The header records the model and the
``index_state.generation`` the file matches; a file behind the database (a crash
between a commit and a save) is discarded and the index rebuilt from the
``vectors`` table, which is the truth.

Scope is applied inside the search: the caller passes the allowed unit ids and
faiss sees only those (an id selector on the flat index; exact scoring of the
allowed vectors when they are few, a selector with a wider beam on HNSW).
"""

from __future__ import annotations

import json
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vault.crypto import DataKey, SealError, open_sealed, seal

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAGIC = b"CVX1"
_AAD = b"ctxvault vector index v1"
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
# Below this many allowed ids, exact scoring of just those vectors is both faster
# than a filtered graph walk and exact.
EXACT_SUBSET = 20_000


@dataclass(frozen=True, slots=True)
class IndexHeader:
    model: str
    dim: int
    generation: int
    kind: str
    count: int


def _faiss() -> Any:
    import faiss

    # 1 faiss thread: single queries run 2-4x faster than with 2 threads here (BRIEF §6).
    faiss.omp_set_num_threads(1)
    return faiss


class VectorIndex:
    """An id-addressed set of unit vectors with exact or approximate top-k search."""

    def __init__(self, dim: int, ann_threshold: int) -> None:
        self.dim = dim
        self.ann_threshold = ann_threshold
        self._faiss = _faiss()
        self._index: Any = self._flat()
        self.kind = "flat"
        self._dead: set[int] = set()  # removed from an HNSW graph (it cannot delete)

    def _flat(self) -> Any:
        f = self._faiss
        return f.IndexIDMap2(f.IndexFlatIP(self.dim))

    def _hnsw(self) -> Any:
        f = self._faiss
        inner = f.IndexHNSWFlat(self.dim, HNSW_M, f.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
        return f.IndexIDMap2(inner)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._dead)

    def ids(self) -> NDArray[np.int64]:
        all_ids: NDArray[np.int64] = self._faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if self._dead:
            all_ids = all_ids[~np.isin(all_ids, np.fromiter(self._dead, dtype=np.int64))]
        return all_ids

    def add(self, ids: NDArray[np.int64], vecs: NDArray[np.float32]) -> None:
        """Add (or replace) vectors; switches to HNSW when the size passes the threshold."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.remove(ids)
        self._dead.difference_update(int(i) for i in ids)
        if self.kind == "flat" and len(self) + len(ids) > self.ann_threshold:
            self._rebuild(self._hnsw(), "hnsw", extra=(ids, vecs))
            return
        self._bulk_add(ids, vecs)

    def _bulk_add(self, ids: NDArray[np.int64], vecs: NDArray[np.float32]) -> None:
        # Building a graph is a batch job: all cores; searches go back to one thread.
        f = self._faiss
        f.omp_set_num_threads(os.cpu_count() or 1)
        try:
            self._index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))
        finally:
            f.omp_set_num_threads(1)

    def remove(self, ids: NDArray[np.int64]) -> None:
        if len(ids) == 0 or self._index.ntotal == 0:
            return
        if self.kind == "flat":
            self._index.remove_ids(self._faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64)))
            return
        present = set(int(i) for i in self._faiss.vector_to_array(self._index.id_map))
        self._dead.update(int(i) for i in ids if int(i) in present)
        if len(self._dead) > 0.1 * max(1, self._index.ntotal):
            big = len(self) > self.ann_threshold
            self._rebuild(self._hnsw() if big else self._flat(), "hnsw" if big else "flat")

    def _rebuild(self, target: Any, kind: str, extra: tuple[NDArray[np.int64], NDArray[np.float32]] | None = None) -> None:
        ids = self.ids()
        vecs = self.vectors(ids) if len(ids) else np.zeros((0, self.dim), np.float32)
        if extra is not None:
            ids = np.concatenate([ids, extra[0]])
            vecs = np.concatenate([vecs, extra[1].astype(np.float32)])
        self._index = target
        self.kind = kind
        self._dead = set()
        if len(ids):
            self._bulk_add(ids, vecs)

    def vectors(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """The stored vectors of ``ids`` (each must be present)."""
        if len(ids) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out: NDArray[np.float32] = self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))
        return out.astype(np.float32, copy=False)

    def vectors_present(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The ids among ``ids`` that the index holds, with their vectors (cheap for a few ids)."""
        got: list[int] = []
        rows: list[NDArray[np.float32]] = []
        for uid in ids.tolist():
            if uid in self._dead:
                continue
            try:
                rows.append(self._index.reconstruct(int(uid)))
            except RuntimeError:  # faiss: id not in the map
                continue
            got.append(uid)
        if not got:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return np.array(got, dtype=np.int64), np.stack(rows).astype(np.float32)

    def search(
        self, query: NDArray[np.float32], k: int, allowed: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-``k`` (scores, ids) by inner product, only among ``allowed`` when given."""
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if self._index.ntotal == 0 or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        f = self._faiss
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            if self.kind == "hnsw" and len(allowed) <= EXACT_SUBSET:
                return self._exact_subset(q[0], k, allowed)
            sel = f.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params = f.SearchParametersHNSW(sel=sel, efSearch=max(HNSW_EF_SEARCH, 4 * k)) if self.kind == "hnsw" else None
            if params is None:
                params = f.SearchParameters(sel=sel)
            want = k
        else:
            params = f.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, 2 * k)) if self.kind == "hnsw" else None
            want = k + len(self._dead)
        want = min(want, int(self._index.ntotal))
        scores, ids = self._index.search(q, want, params=params) if params is not None else self._index.search(q, want)
        keep = ids[0] >= 0
        s, i = scores[0][keep], ids[0][keep]
        if self._dead:
            alive = ~np.isin(i, np.fromiter(self._dead, dtype=np.int64))
            s, i = s[alive], i[alive]
        return s[:k].astype(np.float32), i[:k].astype(np.int64)

    def _exact_subset(self, q: NDArray[np.float32], k: int, allowed: NDArray[np.int64]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        present = np.fromiter((int(a) for a in allowed if int(a) not in self._dead), dtype=np.int64)
        present = present[np.isin(present, self._faiss.vector_to_array(self._index.id_map))]
        if len(present) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores = self.vectors(present) @ q
        top = np.argsort(-scores)[:k]
        return scores[top].astype(np.float32), present[top]

    # -- persistence ------------------------------------------------------------------------

    def to_bytes(self, model: str, generation: int) -> bytes:
        header = {"model": model, "dim": self.dim, "generation": generation, "kind": self.kind, "count": len(self)}
        head = json.dumps(header, sort_keys=True).encode()
        body: bytes = self._faiss.serialize_index(self._index).tobytes()
        dead = np.fromiter(sorted(self._dead), dtype=np.int64).tobytes()
        return MAGIC + struct.pack("<III", len(head), len(body), len(dead)) + head + body + dead

    @classmethod
    def from_bytes(cls, raw: bytes, ann_threshold: int) -> tuple[VectorIndex, IndexHeader]:
        """Parse ``to_bytes`` output.

        Raises:
            ValueError: not an index blob of this version.
        """
        if not raw.startswith(MAGIC) or len(raw) < 16:
            raise ValueError("not a CVX1 index")
        nh, nb, nd = struct.unpack("<III", raw[4:16])
        head = json.loads(raw[16 : 16 + nh])
        header = IndexHeader(
            model=str(head["model"]),
            dim=int(head["dim"]),
            generation=int(head["generation"]),
            kind=str(head["kind"]),
            count=int(head["count"]),
        )
        body = np.frombuffer(raw[16 + nh : 16 + nh + nb], dtype=np.uint8)
        dead = np.frombuffer(raw[16 + nh + nb : 16 + nh + nb + nd], dtype=np.int64)
        index = cls(header.dim, ann_threshold)
        index._index = index._faiss.deserialize_index(body)
        index.kind = header.kind
        index._dead = set(int(d) for d in dead)
        return index, header


def index_file(index_dir: Path, model: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return index_dir / f"{safe}.cvx"


def save_sealed(path: Path, key: DataKey, index: VectorIndex, model: str, generation: int) -> None:
    """Seal the index under the data key and replace the file atomically (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    blob = seal(key, index.to_bytes(model, generation), _AAD + b"|" + model.encode())
    # Unique per writer: two threads of one process (or two processes) may save at once.
    tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_sealed(path: Path, key: DataKey, model: str, ann_threshold: int) -> tuple[VectorIndex, IndexHeader] | None:
    """The sealed index at ``path``, or None when it is missing, damaged, or for another model."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        index, header = VectorIndex.from_bytes(open_sealed(key, blob, _AAD + b"|" + model.encode()), ann_threshold)
    except (SealError, ValueError, KeyError, RuntimeError):
        # A derived file that fails to open is rebuilt from the database, never trusted.
        return None
    if header.model != model:
        return None
    return index, header


__all__ = ["IndexHeader", "VectorIndex", "index_file", "load_sealed", "save_sealed"]
