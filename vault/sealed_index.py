"""The index on disk as a process holds it: a sealed base, its delta records, and a warm copy for the agent's children.

A process loads the base (vault/index.py) and the delta records chained from its generation
(vault/index_delta.py) into a ``Persisted``: the index, the generation the files reach, and
where its reading stopped, so that it can later apply only the records other processes
appended since (``catch_up``: a stat and a small read, instead of loading 100k vectors again).
Its own changes are kept in ``Changes`` and saved as one more record (``save``), or as a new
base once the delta holds more than ``fold_bound`` vectors, when the index changed shape
(trained lists), or when the base on disk is no longer the one it loaded.

The unlock agent keeps one ``Persisted`` in step (``warm``: before each command it forks),
so a command's child takes the index inherited copy-on-write (``take``) instead of loading
and decrypting it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vault import index_delta
from vault.index import VectorIndex, load_sealed, save_sealed
from vault.index_delta import Delta, delta_file

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vault.crypto import DataKey

FOLD_MIN = 2_000  # the delta is folded into a new base past this many vectors...
FOLD_FRACTION = 20  # ...or 1/20 of the index, whichever is more (at 100k: 5,000 vectors, ~4 MB)
MAX_TRACKED = 50_000  # changes past this are saved as a new base anyway: not kept vector by vector

Stamp = tuple[int, int, int, int]


def fold_bound(size: int) -> int:
    return max(FOLD_MIN, size // FOLD_FRACTION)


def _stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)  # ctime: a copy restored with its mtime still differs


@dataclass(slots=True)
class Persisted:
    """An index as loaded from ``base`` and its delta, and how far the files it came from were read."""

    index: VectorIndex
    generation: int  # the database generation the files reach (and the index, while it holds no unsaved change)
    base_id: bytes  # empty for a base written before delta files: then every save writes a new base
    stamp: Stamp | None  # the base file's (inode, size, mtime, ctime): another base means a reload
    offset: int = 0  # delta bytes read
    waiting: list[Delta] = field(default_factory=list)  # records read that do not chain yet
    delta_vectors: int = 0  # vectors the delta file holds for this base (the fold bound)
    shape: tuple[str, int, int] = ("flat", 0, 0)


class Changes:
    """A process's changes to its index since it was loaded or saved: what its next delta record holds."""

    def __init__(self) -> None:
        self.added: dict[int, NDArray[np.float16]] = {}
        self.removed: set[int] = set()
        self.lost = False  # changed in a way not tracked here (bulk staging): the next save writes a base

    def __bool__(self) -> bool:
        return self.lost or bool(self.added) or bool(self.removed)

    @property
    def vectors(self) -> int:
        return len(self.added) + len(self.removed)

    def add(self, ids: NDArray[np.int64], vecs: NDArray[np.float32]) -> None:
        if self.lost:
            return
        half = np.asarray(vecs).astype(np.float16)
        for uid, row in zip(ids.tolist(), half, strict=True):
            self.added[int(uid)] = row
        self._bound()

    def remove(self, ids: NDArray[np.int64]) -> None:
        if self.lost:
            return
        for uid in ids.tolist():
            self.added.pop(int(uid), None)
            self.removed.add(int(uid))
        self._bound()

    def _bound(self) -> None:
        if self.vectors > MAX_TRACKED:
            self.lost, self.added, self.removed = True, {}, set()

    def delta(self, start: int, end: int, dim: int) -> Delta:
        ids = np.array(sorted(self.added), dtype=np.int64)
        vecs = np.stack([self.added[int(u)] for u in ids]) if len(ids) else np.zeros((0, dim), np.float16)
        return Delta(start=start, end=end, removed=np.array(sorted(self.removed), dtype=np.int64), ids=ids, vecs=vecs)


def apply(index: VectorIndex, delta: Delta) -> None:
    """Replay one record: its removals, then its (re)additions."""
    index.remove(delta.removed)
    index.add(delta.ids, delta.vecs.astype(np.float32))


def load(path: Path, key: DataKey, model: str, ann_threshold: int) -> Persisted | None:
    """The base at ``path`` with every delta record chained from it; None when there is no usable base."""
    stamp = _stamp(path)
    loaded = load_sealed(path, key, model, ann_threshold)
    if loaded is None:
        return None
    index, header = loaded
    try:
        base_id = bytes.fromhex(header.base_id)
    except ValueError:
        base_id = b""
    persisted = Persisted(index=index, generation=header.generation, base_id=base_id, stamp=stamp, shape=index.shape)
    catch_up(persisted, path, key, model)
    return persisted


def catch_up(persisted: Persisted, path: Path, key: DataKey, model: str) -> bool:
    """Apply the records appended since ``persisted`` was read; False when the base itself was replaced (load again).

    Only for an index holding no unsaved change of its own.
    """
    if _stamp(path) != persisted.stamp:
        return False
    if not persisted.base_id:
        return True
    scan = index_delta.read(delta_file(path), key, model, persisted.base_id, persisted.index.dim, persisted.offset)
    persisted.offset = scan.end
    persisted.delta_vectors += sum(r.vectors for r in scan.records)
    records = persisted.waiting + scan.records
    run, reached = index_delta.chain(records, persisted.generation)
    for record in run:
        apply(persisted.index, record)
    persisted.generation = reached
    persisted.waiting = [r for r in records if r.start > reached]
    return True


def save(
    path: Path,
    key: DataKey,
    index: VectorIndex,
    model: str,
    generation: int,
    persisted: Persisted | None,
    changes: Changes | None,
) -> Persisted | None:
    """Persist ``index`` at ``generation``: one delta record when ``persisted`` is its lineage, else a new base.

    Returns the lineage to save against next time (None when the disk refused: the next save writes a base).
    """
    if (
        persisted is not None
        and changes is not None
        and not changes.lost
        and persisted.base_id
        and persisted.index is index
        and index.shape == persisted.shape
        and generation > persisted.generation
        and persisted.delta_vectors + changes.vectors <= fold_bound(len(index))
        and _stamp(path) == persisted.stamp
    ):
        record = changes.delta(persisted.generation, generation, index.dim)
        if index_delta.append(delta_file(path), key, model, persisted.base_id, record) is not None:
            persisted.generation = generation
            persisted.delta_vectors += record.vectors
            return persisted
    base_id = os.urandom(index_delta.BASE_ID_BYTES)
    if not save_sealed(path, key, index, model, generation, base_id.hex()):
        return None
    return published(path, index, generation, base_id)


def published(path: Path, index: VectorIndex, generation: int, base_id: bytes) -> Persisted:
    """A new base was just renamed into place at ``path``: the old delta is dropped (its frames name the old base)."""
    index_delta.discard(delta_file(path))
    return Persisted(index=index, generation=generation, base_id=base_id, stamp=_stamp(path), shape=index.shape)


# -- the agent's warm copy ------------------------------------------------------------------

_WARM: dict[Path, Persisted] = {}


def warm(path: Path, key: DataKey, model: str, ann_threshold: int) -> None:
    """Keep this process's copy of the index at ``path`` in step with the files (cheap when nothing changed).

    The unlock agent calls this before each fork; it never changes the copy otherwise.
    """
    path = path.resolve()
    held = _WARM.get(path)
    if held is not None and catch_up(held, path, key, model):
        return
    _WARM.pop(path, None)
    loaded = load(path, key, model, ann_threshold)
    if loaded is None:
        return
    loaded.index.batch_threads = 1  # the agent forks: no second faiss/BLAS thread may start in it
    _WARM[path] = loaded


def take(path: Path, key: DataKey, model: str, ann_threshold: int) -> Persisted | None:
    """The index at ``path``: the warm copy this process inherited if it is still that file's, else loaded now.

    Taken, not shared: the caller may change it.
    """
    held = _WARM.pop(path.resolve(), None)
    if held is not None:
        held.index.batch_threads = os.cpu_count() or 1
        if catch_up(held, path, key, model):
            return held
    return load(path, key, model, ann_threshold)


def discard(path: Path) -> None:
    """Forget the warm copy of ``path`` (purge: its memory must not outlive the files)."""
    _WARM.pop(path.resolve(), None)


__all__ = ["Changes", "Persisted", "apply", "catch_up", "discard", "fold_bound", "load", "published", "save", "take", "warm"]
