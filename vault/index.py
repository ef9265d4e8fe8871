"""The vector index: faiss inner product over unit vectors, persisted sealed, rebuilt when stale.

Exact (flat) search while the index is small; an inverted-file index past
``settings.ann_threshold`` vectors, its lists holding float16 codes (the precision the
vectors table stores; files written before held IVF-Flat lists and still load). IVF rather than HNSW because a vault is written in
bulk (imports, reindex): IVF trains k-means on a sample in about a second and then adds
100k vectors in under one, where an HNSW graph took ~25 s to build here, and it removes
ids for real instead of leaving dead nodes in a graph. Probing 1/10 of the lists keeps
recall@10 at 0.98 of exact on real MiniLM vectors (tests/vault/test_index.py, `bench search`).
The lists are retrained when the index has grown 4x since training, so the cost stays
amortised and the lists stay the right size.

The file on disk is ``seal(data_key, CVX2 header + faiss bytes, aad)``: vectors can be
inverted back to text, so they never touch disk in plaintext. The header records the
model and the ``index_state.generation`` the file matches, and a random ``base_id`` that the
delta records appended after it name (vault/index_delta.py, vault/sealed_index.py). A file of
an older format, or that fails to open, is discarded and the index rebuilt from the ``vectors``
table, which is the truth; one behind the database is caught up from that table.

Scope is applied inside the search: the caller passes the allowed unit ids and faiss sees
only those (an id selector; exact scoring of the allowed vectors when they are few).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vault.crypto import DataKey, SealError, open_sealed, seal
from vault.rwlock import ReadWriteLock

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAGIC = b"CVX2"
_AAD = b"ctxvault vector index v2"
# k-means on at most this many points per list: enough for stable centroids, and
# training stays ~1 s at 100k (faiss warns below 39).
TRAIN_POINTS_PER_LIST = 40
TRAIN_ITERATIONS = 10
PROBE_FRACTION = 10  # probe 1/10 of the lists...
MIN_PROBES, MAX_PROBES = 12, 64  # ...within these bounds (100k real vectors, 128 lists: 12 probes, recall@10 0.984)
RETRAIN_GROWTH = 4
# Below this many allowed ids, exact scoring of just those vectors is both faster
# than a filtered probe and exact.
EXACT_SUBSET = 20_000
# Vectors assigned to lists per matrix product: a block's scores stay a few MB whatever the lists.
ASSIGN_BLOCK = 8192
# Every index state gets a number of its own: a new index and each change draw the next one.
_VERSIONS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class IndexHeader:
    model: str
    dim: int
    generation: int
    kind: str
    count: int
    base_id: str = ""  # names this file: delta records (vault/index_delta.py) apply only to the base they name


def _faiss() -> Any:
    import faiss

    # 1 faiss thread: single queries run 2-4x faster than with 2 threads here (BRIEF §6).
    faiss.omp_set_num_threads(1)
    return faiss


def list_count(n: int) -> int:
    """IVF lists for ``n`` vectors: the power of two nearest sqrt(n)/2, at least 16, with enough points to train each.

    Half the textbook sqrt(n): at 100k, 128 lists train in 0.23 s and take 100k vectors in
    0.54 s against 0.92 s and 1.02 s for 256 (one thread), so a bulk import shares its two
    cores with less index work. Probing 12 of 128 gives the recall of 16 of 256 (0.984 of
    exact) for +0.28 ms a query (p50 0.76 ms against 0.48 ms; isolated test, 100k real vectors).
    """
    nearest = 1 << max(0, round(math.log2(math.sqrt(max(n, 1)) / 2)))
    return max(1, min(max(16, nearest), n // 39))


def probe_count(nlist: int) -> int:
    return min(nlist, max(MIN_PROBES, min(MAX_PROBES, nlist // PROBE_FRACTION)))


class VectorIndex:
    """An id-addressed set of unit vectors with exact or approximate top-k search."""

    def __init__(self, dim: int, ann_threshold: int) -> None:
        self.dim = dim
        self.ann_threshold = ann_threshold
        self._faiss = _faiss()
        self._index: Any = self._flat()
        self.kind = "flat"
        self._trained_at = 0  # the size the IVF lists were trained for
        self._ids: NDArray[np.int64] | None = None  # cache of ids(), dropped on every change
        # Threads for training and bulk adds; 1 when the other core is busy writing rows.
        self.batch_threads = os.cpu_count() or 1
        # Searches on other threads (reader connections, vault/readers.py) hold ``guard.reading()``;
        # add and remove hold its write side: faiss reallocates what a search is reading.
        self.guard = ReadWriteLock()
        self.version = next(_VERSIONS)  # changes with every add or removal (a reader's cache key)

    def _flat(self) -> Any:
        f = self._faiss
        return f.IndexIDMap2(f.IndexFlatIP(self.dim))

    def _ivf(self, vecs: NDArray[np.float32]) -> TrainedLists:
        """IVF lists trained on a sample of ``vecs`` (all cores: a batch job)."""
        return self.train_lists(_sample(vecs, list_count(len(vecs)) * TRAIN_POINTS_PER_LIST), len(vecs))

    def train_lists(self, sample: NDArray[np.float32], size: int) -> TrainedLists:
        """An empty IVF index trained on ``sample`` for ``size`` vectors; touches nothing of this index (any thread).

        The lists hold float16 codes (faiss's scalar quantizer) of the vectors: the vectors
        table holds float16 too, so the lists hold exactly its values, and the index is half
        the memory and file of IVF-Flat, with faster scans (measured in ``bench search``).
        """
        f = self._faiss
        nlist = list_count(size)
        index = f.IndexIVFScalarQuantizer(f.IndexFlatIP(self.dim), self.dim, nlist, f.ScalarQuantizer.QT_fp16, f.METRIC_INNER_PRODUCT)
        # Codes of the vectors themselves, not of their residuals to the centroid: float16 vectors are then
        # held exactly as the table holds them, and adding skips a subtraction per vector.
        index.by_residual = False
        index.cp.niter = TRAIN_ITERATIONS
        index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
        index.cp.seed = 1234  # the same vectors give the same lists
        with self._all_cores():
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.set_direct_map_type(f.DirectMap.Hashtable)  # reconstruct and remove by id
        index.nprobe = probe_count(nlist)
        return TrainedLists(index, size)

    def training_sample(
        self, incoming: NDArray[np.float32] | NDArray[np.float16], total: int | None = None
    ) -> tuple[NDArray[np.float32], int] | None:
        """If adding ``incoming`` will (re)train the lists: the sample to train on and the size to train for.

        Lets a bulk writer train on another thread (``train_lists``) before the add. ``total``:
        how many vectors are coming when ``incoming`` is a sample of them (``training_points``).
        """
        size = len(self) + (len(incoming) if total is None else total)
        if not self._needs_training(size):
            return None
        nlist = list_count(size)
        want = min(size, nlist * TRAIN_POINTS_PER_LIST)
        rng = np.random.default_rng(1234)
        have = len(self)
        take_old = min(have, round(want * have / size))
        old = self.vectors(np.sort(rng.choice(self.ids(), take_old, replace=False))) if take_old else np.zeros((0, self.dim), np.float32)
        new = _sample(incoming, want - take_old, rng).astype(np.float32)
        return np.concatenate([old, new]), size

    def _needs_training(self, size: int) -> bool:
        return (self.kind == "flat" and size > self.ann_threshold) or (self.kind == "ivf" and size > RETRAIN_GROWTH * self._trained_at)

    def _all_cores(self) -> _Threads:
        return _Threads(self._faiss, self.batch_threads)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def shape(self) -> tuple[str, int, int]:
        """What a delta record cannot change: the kind, the lists and the size they were trained for."""
        return (self.kind, self.lists, self._trained_at)

    @property
    def lists(self) -> int:
        """IVF lists (0 for the flat index)."""
        return int(self._index.nlist) if self.kind == "ivf" else 0

    def ids(self) -> NDArray[np.int64]:
        if self._ids is None:
            f = self._faiss
            if self.kind == "flat":
                self._ids = f.vector_to_array(self._index.id_map).astype(np.int64)
            else:
                inv = self._index.invlists
                parts = [f.rev_swig_ptr(inv.get_ids(i), inv.list_size(i)).copy() for i in range(self._index.nlist) if inv.list_size(i)]
                self._ids = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        return self._ids

    def add(self, ids: NDArray[np.int64], vecs: NDArray[np.float32], trained: TrainedLists | None = None) -> None:
        """Add (or replace) vectors; trains the IVF lists past the threshold, retrains them after 4x growth.

        ``trained``: lists already trained (``training_sample``) for the size this add belongs to; a bulk
        writer adding in batches passes them with each batch, and the first batch switches to them.
        """
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        with self.guard.writing():
            self.version = next(_VERSIONS)
            self.remove(ids)
            size = len(self) + len(ids)
            if self._needs_training(max(size, trained.size) if trained is not None else size):
                self._rebuild(ann=True, extra=(ids, vecs), trained=trained)
                return
            self._bulk_add(ids, vecs)

    def _bulk_add(self, ids: NDArray[np.int64], vecs: NDArray[np.float32]) -> None:
        self._ids = None
        with self._all_cores():
            if self.kind == "ivf":
                f, lists = self._faiss, self._assign(vecs)
                self._index.add_core(len(ids), f.swig_ptr(vecs), f.swig_ptr(ids), f.swig_ptr(lists))
            else:
                self._index.add_with_ids(vecs, ids)

    def _assign(self, vecs: NDArray[np.float32]) -> NDArray[np.int64]:
        """The IVF list of each vector: its centroid of largest inner product, from one matrix product per block.

        faiss's own assignment (the quantizer's search) computes the inner products one pair at a
        time: 0.5 s for 90k vectors and 128 lists here, against 0.13 s for numpy's matrix product
        and argmax on one thread. The lists are the same but for exact ties.
        """
        quantizer = self._index.quantizer
        centroids = quantizer.reconstruct_n(0, quantizer.ntotal).T.copy()
        lists = np.empty(len(vecs), dtype=np.int64)
        for start in range(0, len(vecs), ASSIGN_BLOCK):
            lists[start : start + ASSIGN_BLOCK] = np.argmax(vecs[start : start + ASSIGN_BLOCK] @ centroids, axis=1)
        return lists

    def remove(self, ids: NDArray[np.int64]) -> None:
        if len(ids) == 0 or self._index.ntotal == 0:
            return
        f = self._faiss
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        # The flat map scans every id against a batch set; the IVF direct map looks each id up.
        selector = f.IDSelectorBatch(ids) if self.kind == "flat" else f.IDSelectorArray(ids)
        with self.guard.writing():
            self.version = next(_VERSIONS)
            if not self._index.remove_ids(selector):
                return
            self._ids = None
            if self.kind == "ivf" and len(self) <= self.ann_threshold // 2:
                self._rebuild(ann=False)  # shrunk well below the threshold: exact again

    def _rebuild(
        self, ann: bool, extra: tuple[NDArray[np.int64], NDArray[np.float32]] | None = None, trained: TrainedLists | None = None
    ) -> None:
        ids = self.ids()
        vecs = self.vectors(ids)
        if extra is not None:
            ids = np.concatenate([ids, extra[0]])
            vecs = np.concatenate([vecs, extra[1]])
        if ann:
            fresh = trained is not None and trained.index.d == self.dim and trained.index.ntotal == 0  # used once
            lists = trained if trained is not None and fresh else self._ivf(vecs)
            self._index, self._trained_at = lists.index, lists.size
        else:
            self._index = self._flat()
        self.kind = "ivf" if ann else "flat"
        self._ids = None
        if len(ids):
            self._bulk_add(ids, vecs)

    def vectors(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """The stored vectors of ``ids`` (each must be present)."""
        if len(ids) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out: NDArray[np.float32] = self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))
        return out.astype(np.float32, copy=False)

    def vectors_present(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The ids among ``ids`` that the index holds, with their vectors.

        Usually it holds them all (a unit lacks a vector only until it is embedded): one batch
        call then, 0.2 ms for a query's 100 lexical candidates against 0.7-1.0 ms id by id.
        """
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return ids, np.zeros((0, self.dim), np.float32)
        try:
            return ids, self.vectors(ids)
        except RuntimeError:  # faiss: an id not in the map; find which, one by one
            pass
        got: list[int] = []
        rows: list[NDArray[np.float32]] = []
        for uid in ids.tolist():
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
        params: Any = None
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            if self.kind == "ivf" and len(allowed) <= EXACT_SUBSET:
                return self._exact_subset(q[0], k, allowed)
            sel = f.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            # A filter thins every list: probe twice as many to find k allowed neighbours.
            params = (
                f.SearchParametersIVF(sel=sel, nprobe=min(self._index.nlist, 2 * self._index.nprobe))
                if self.kind == "ivf"
                else f.SearchParameters(sel=sel)
            )
        want = min(k, int(self._index.ntotal))
        scores, ids = self._index.search(q, want, params=params) if params is not None else self._index.search(q, want)
        keep = ids[0] >= 0
        return scores[0][keep].astype(np.float32), ids[0][keep].astype(np.int64)

    def _exact_subset(self, q: NDArray[np.float32], k: int, allowed: NDArray[np.int64]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        present = np.ascontiguousarray(allowed, dtype=np.int64)
        present = present[np.isin(present, self.ids())]
        if len(present) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores = self.vectors(present) @ q
        top = np.argsort(-scores)[:k]
        return scores[top].astype(np.float32), present[top]

    # -- persistence ------------------------------------------------------------------------

    def to_bytes(self, model: str, generation: int, base_id: str = "") -> bytes:
        header = {
            "model": model, "dim": self.dim, "generation": generation, "kind": self.kind, "count": len(self),
            "trained_at": self._trained_at, "base_id": base_id,
        }  # fmt: skip
        head = json.dumps(header, sort_keys=True).encode()
        body: bytes = self._faiss.serialize_index(self._index).tobytes()
        return MAGIC + struct.pack("<II", len(head), len(body)) + head + body

    @classmethod
    def from_bytes(cls, raw: bytes, ann_threshold: int) -> tuple[VectorIndex, IndexHeader]:
        """Parse ``to_bytes`` output.

        Raises:
            ValueError: not an index blob of this version.
        """
        if not raw.startswith(MAGIC) or len(raw) < 12:
            raise ValueError("not a CVX2 index")
        nh, nb = struct.unpack("<II", raw[4:12])
        head = json.loads(raw[12 : 12 + nh])
        header = IndexHeader(
            model=str(head["model"]),
            dim=int(head["dim"]),
            generation=int(head["generation"]),
            kind=str(head["kind"]),
            count=int(head["count"]),
            base_id=str(head.get("base_id", "")),
        )
        if header.kind not in ("flat", "ivf") or len(raw) != 12 + nh + nb:
            raise ValueError(f"unknown index kind {header.kind!r} or truncated body")
        index = cls(header.dim, ann_threshold)
        index._index = index._faiss.deserialize_index(np.frombuffer(raw[12 + nh :], dtype=np.uint8))
        index.kind = header.kind
        index._trained_at = int(head.get("trained_at", 0))
        return index, header


@dataclass(frozen=True, slots=True)
class TrainedLists:
    """An empty IVF index trained for ``size`` vectors."""

    index: Any
    size: int


def training_points(n: int) -> int:
    """Vectors enough to train the lists for ``n``: a bulk writer converts only this many before it starts."""
    return min(n, list_count(n) * TRAIN_POINTS_PER_LIST)


def _sample(vecs: NDArray[Any], want: int, rng: np.random.Generator | None = None) -> NDArray[Any]:
    """``want`` rows of ``vecs`` at random (all of them when there are no more)."""
    if want >= len(vecs):
        return vecs
    rng = rng or np.random.default_rng(1234)
    return vecs[np.sort(rng.choice(len(vecs), want, replace=False))]


class _Threads:
    """All cores for a batch job (training, bulk adds); searches go back to one thread.

    Given one thread (the other core writes rows), numpy's BLAS is held to one as well
    for the job: its matrix products would otherwise take the writer's core.
    """

    def __init__(self, faiss: Any, threads: int) -> None:
        self._faiss = faiss
        self._threads = threads
        self._blas: Any = None

    def __enter__(self) -> None:
        self._faiss.omp_set_num_threads(self._threads)
        if self._threads == 1:
            self._blas = _blas().limit(limits=1, user_api="blas")

    def __exit__(self, *exc: object) -> None:
        self._faiss.omp_set_num_threads(1)
        if self._blas is not None:
            self._blas.restore_original_limits()
            self._blas = None


@functools.cache
def _blas() -> Any:
    """The process's BLAS libraries (threadpoolctl), found once."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def index_file(index_dir: Path, model: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return index_dir / f"{safe}.cvx"


def save_sealed(path: Path, key: DataKey, index: VectorIndex, model: str, generation: int, base_id: str = "") -> bool:
    """Seal the index under the data key and replace the file atomically (0600); False when the disk refused it.

    The file is a cache of the ``vectors`` table: a full disk, a read-only one, or an ``index``
    that is not a directory must not fail the search or import that saves it (issue 29). The
    index stays in memory, and the next save (or the next process, from the table) tries again.
    """
    tmp = seal_beside(path, key, index, model, generation, base_id)
    if tmp is None:
        return False
    try:
        os.replace(tmp, path)
    except OSError:
        _discard(tmp)
        return False
    return True


def seal_beside(path: Path, key: DataKey, index: VectorIndex, model: str, generation: int, base_id: str = "") -> Path | None:
    """Seal the index into a temporary file next to ``path``; the caller renames it into place (or deletes it).

    None when the disk refused it (``save_sealed``): no partial temporary file is left behind.
    """
    blob = seal(key, index.to_bytes(model, generation, base_id), _AAD + b"|" + model.encode())
    # Unique per writer: two threads of one process (or two processes) may save at once.
    tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
    except OSError:
        _discard(tmp)
        return None
    # No fsync: the file is a cache. After a crash a torn or empty file fails to open
    # (authenticated encryption) or is behind the database, and is rebuilt from the table.
    return tmp


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def load_sealed(path: Path, key: DataKey, model: str, ann_threshold: int) -> tuple[VectorIndex, IndexHeader] | None:
    """The sealed index at ``path``, or None when it is missing, damaged, or for another model."""
    try:
        blob = path.read_bytes()
    except OSError:  # missing, or ``index`` (or the file) is not what it should be: rebuilt from the table
        return None
    try:
        index, header = VectorIndex.from_bytes(open_sealed(key, blob, _AAD + b"|" + model.encode()), ann_threshold)
    except (SealError, ValueError, KeyError, RuntimeError):
        # A derived file that fails to open is rebuilt from the database, never trusted.
        return None
    if header.model != model:
        return None
    return index, header


__all__ = ["IndexHeader", "TrainedLists", "VectorIndex", "index_file", "load_sealed", "save_sealed", "seal_beside"]
