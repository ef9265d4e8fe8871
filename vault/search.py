"""Hybrid search over units: FTS5 BM25 and dense vectors, fused; scope applied inside both.

The SQLCipher tables are the truth: ``units`` (text) and ``vectors`` (float16 blobs
with the id of the model that made them, vault/vectors.py). The faiss index is derived, sealed on disk under
the data key as a base and delta records, and brought in step whenever its recorded ``index_state.generation``
differs from the database's (vault/index.py, vault/sealed_index.py).

Scope: the ItemFilter's SQL ``WHERE`` selects the allowed unit ids; FTS runs with
that predicate in SQL and faiss with those ids as its selector, so out-of-scope
units never enter ranking (BRIEF §4).

Fusion (docs/benchmarks.md has the measurements behind every choice): both lists
are widened to ``candidates`` each; every candidate gets its exact cosine (also the
lexical-only ones), min-maxed over the candidates, and its BM25 divided by the best
BM25 of the query; the fused score is ``0.6 · dense + 0.4 · lexical``. Plain
reciprocal rank fusion lost to BM25 alone on LoCoMo, and BM25 alone collapses in
large stores, so the weights are fixed by measurement at both sizes, one
configuration for all. Then the best candidates borrow from the memories written
next to them in their conversation thread, and a month the query names lifts the
memories of that month (vault/neighbours.py; LoCoMo R@10 0.710 → 0.792, 10k: 0.563 → 0.693).

Preferences for a task: vault/pref_match.py ranks the preference profile on its own
(``scoped_units`` hands it the scope's vectors), so memories cannot crowd a preference out.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from schemas.items import Provenance, SearchHit, SearchQuery
from vault import agent_client, sealed_index
from vault import vectors as vector_rows
from vault.crypto import DataKey
from vault.dates import without_context
from vault.embed import Embedder, load_embedder
from vault.errors import EmbedderUnavailable, InvalidInput
from vault.filters import ItemFilter
from vault.fusion import DEFAULT_FUSION, Fusion, fuse
from vault.index import TrainedLists, VectorIndex, index_file, seal_beside
from vault.index_delta import BASE_ID_BYTES, delta_file
from vault.lexical import (
    fts_query,
    query_terms,
    snippet,
)
from vault.lexical_rank import LexicalRanker
from vault.neighbours import Surroundings, surroundings
from vault.scope_units import Allowed, allowed_units
from vault.settings import Settings
from vault.store import Row, Store

if TYPE_CHECKING:
    from numpy.typing import NDArray

Progress = Callable[[int, int], None]

# Writes smaller than this are kept in memory; a crash before the next save only
# costs a rebuild from the vectors table on the next open.
SAVE_EVERY = 1000
# Units per encode-and-write round: one transaction each, and the progress step.
EMBED_BATCH = 2048
# A write embeds its own units before it returns only up to this many (~2 s at 133 texts/s on one
# thread); a larger write, and every unit some other process left without a vector (the backlog),
# waits for the unlock agent's embedder or `ctxvault reindex`: embedding never blocks a write.
INLINE_EMBED = 256
# Units per round of the background embedder: each round is one short transaction, and the
# embedder looks whether a request is being served between rounds (~0.2 s of encoding at 1 thread).
BACKLOG_BATCH = 32
PAUSE_POLL_S = 0.05  # how soon a paused embedder notices that the request it yielded to is done
BACKLOG_FETCH = 512  # units read per query, then encoded shortest first in BACKLOG_BATCH batches


_TEMP_SQL = """
CREATE TEMP TABLE IF NOT EXISTS cv_pending (uid INTEGER PRIMARY KEY);
CREATE TEMP TABLE IF NOT EXISTS cv_removed (uid INTEGER PRIMARY KEY);
CREATE TEMP TABLE IF NOT EXISTS cv_counter (
    id INTEGER PRIMARY KEY, gen_bumps INTEGER NOT NULL,
    bulk INTEGER NOT NULL  -- 1 while a bulk import inserts units: it records them itself (StagedVectors.add)
);
INSERT OR IGNORE INTO cv_counter VALUES (1, 0, 0);
CREATE TEMP TRIGGER IF NOT EXISTS cv_units_ai AFTER INSERT ON main.units WHEN NOT (SELECT bulk FROM cv_counter WHERE id = 1) BEGIN
    INSERT OR IGNORE INTO cv_pending VALUES (new.uid);
END;
CREATE TEMP TRIGGER IF NOT EXISTS cv_units_au AFTER UPDATE OF text ON main.units BEGIN
    DELETE FROM main.vectors WHERE uid = new.uid;
    INSERT OR IGNORE INTO cv_pending VALUES (new.uid);
END;
CREATE TEMP TRIGGER IF NOT EXISTS cv_vectors_ad AFTER DELETE ON main.vectors BEGIN
    INSERT OR IGNORE INTO cv_removed VALUES (old.uid);
END;
CREATE TEMP TRIGGER IF NOT EXISTS cv_gen_au AFTER UPDATE ON main.index_state BEGIN
    UPDATE cv_counter SET gen_bumps = gen_bumps + new.generation - old.generation;
END;
"""


@dataclass(frozen=True, slots=True)
class RetrievalStats:
    model: str
    backend: str | None
    units: int
    vectors: int
    stale_vectors: int
    missing_vectors: int
    index_kind: str | None
    index_size: int
    generation: int


# "Has no vector of this model" (?1), probed in the small (model, uid) index: probing the
# table itself would read (and decrypt) every vector's page, ~0.6 s at 100k.
_LACKING = "NOT EXISTS (SELECT 1 FROM vectors INDEXED BY vectors_model WHERE model = ?1 AND uid = u.uid)"


class Retriever:
    """Search, dedup lookups and derived-index upkeep for one open vault."""

    def __init__(
        self, store: Store, settings: Settings, key: DataKey, embedder: Embedder | None = None, fusion: Fusion = DEFAULT_FUSION
    ) -> None:
        self._store = store
        self._settings = settings
        self._key = key
        self._embedder = embedder
        self.fusion = fusion
        self._index: VectorIndex | None = None
        self._gen = -1  # the database generation the in-memory index matches
        self._bumps_seen = 0  # our own connection's generation bumps already reflected
        self._dirty = 0  # vectors added since the last save
        # The files the index came from and its changes since (vault/sealed_index.py): a save appends a delta record.
        self._persisted: sealed_index.Persisted | None = None
        self._changes = sealed_index.Changes()
        self._inexact = False  # caught up from the table's ids (a behind file): used, never saved
        self._pool: ThreadPoolExecutor | None = None
        self._mid: int | None = None  # this model's id in ``models``, once it has one
        self._stale: tuple[int, int] | None = None  # (generation, vectors of another model)
        self._scope_cache: dict[tuple[object, ...], Allowed] = {}
        self.lexical = LexicalRanker(store, lambda: (*self._data_version(), self._generation()))
        self._scoped: dict[tuple[object, ...], ScopedUnits] = {}  # scoped_units(), for vault/pref_match.py
        # Temp triggers (this connection only) record what changed, so sync() stays cheap.
        store.conn.executescript(_TEMP_SQL)

    # -- the embedder and the index ----------------------------------------------------------

    @property
    def model(self) -> str:
        return self._settings.model

    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self._settings)
        return self._embedder

    def _generation(self) -> int:
        row = self._store.one("SELECT generation FROM index_state WHERE id = 1")
        return int(row[0]) if row else 0

    def _own_bumps(self) -> int:
        row = self._store.one("SELECT gen_bumps FROM temp.cv_counter WHERE id = 1")
        return int(row[0]) if row else 0

    def _stale_count(self) -> int:
        """Vectors made by another model; cached per database generation (a scan costs ~60 ms at 100k)."""
        gen = self._generation()
        if self._stale is not None and self._stale[0] == gen:
            return self._stale[1]
        self._stale = (gen, self._count_stale())
        return self._stale[1]

    def _model_id(self) -> int:
        """This model's id in ``models``, or -1 while it has no vector (then every vector is stale)."""
        if self._mid is None:
            self._mid = vector_rows.model_id(self._store, self.model)  # ids are never reassigned: cache once known
        return -1 if self._mid is None else self._mid

    def _count_stale(self) -> int:
        model = self._model_id()
        row = self._store.one(
            "SELECT EXISTS (SELECT 1 FROM vectors WHERE model < ?) OR EXISTS (SELECT 1 FROM vectors WHERE model > ?)",
            [model, model],
        )
        if not row or not row[0]:
            return 0
        count = self._store.one("SELECT count(*) FROM vectors WHERE model != ?", [model])
        return int(count[0]) if count else 0

    def _ensure_index(self) -> VectorIndex:
        """The in-memory index, in step with the vectors table of the current model."""
        gen = self._generation()
        bumps = self._own_bumps()
        if self._index is not None and gen == self._gen:
            self._bumps_seen = bumps
            return self._index
        if self._index is not None and gen - self._gen == bumps - self._bumps_seen:
            # Every change since the index was built came from this connection: apply the
            # removals recorded by the temp triggers; additions were applied by sync().
            removed = np.array([r[0] for r in self._store.query("SELECT uid FROM temp.cv_removed")], dtype=np.int64)
            self._store.execute("DELETE FROM temp.cv_removed")
            self._index.remove(removed)
            self._changes.remove(removed)
            readd = self._store.query(
                "SELECT uid, vec FROM vectors WHERE model = ? AND uid IN (SELECT value FROM json_each(?))",
                [self._model_id(), json.dumps(removed.tolist())],
            )
            self._add_rows(self._index, readd, track=True)
            self._dirty += len(removed)
            self._gen, self._bumps_seen = gen, bumps
            return self._index
        return self._from_files(gen, bumps) or self._rebuild(gen, bumps)

    def _from_files(self, gen: int, bumps: int) -> VectorIndex | None:
        """The index from the sealed files (or the agent's warm copy of them) at generation ``gen``, if they reach it.

        An index already held, with no unsaved change, applies the records other processes appended. Files behind
        the database (another process wrote and has not saved yet, e.g. the background embedder between two
        batches) are used too: the vectors they lack are read from the table by id, and those they hold
        for removed units dropped, so no search waits for a rebuild (issue 25). Such an index is never saved.
        """
        path = index_file(self._settings.index_dir, self.model)
        held = self._persisted
        if self._index is not None and (held is None or held.index is not self._index or self._changes or self._inexact):
            held = None  # changed here and not saved, or not from the files: only the table can bring it in step
        elif held is not None and not sealed_index.catch_up(held, path, self._key, self.model):
            held = None
        if held is None:
            self._index, self._persisted, self._changes, self._inexact = None, None, sealed_index.Changes(), False
            held = sealed_index.take(path, self._key, self.model, self._settings.ann_threshold)
        if held is None or held.generation > gen:
            return None
        self._index, self._persisted, self._gen, self._bumps_seen = held.index, held, gen, bumps
        self._store.execute("DELETE FROM temp.cv_removed")
        if held.generation < gen:
            self._catch_up_from_table(held.index)
        return held.index

    def _catch_up_from_table(self, index: VectorIndex) -> None:
        """Bring ``index`` to the table's set of ids (an id index scan, then only the rows it lacks)."""
        table = np.array(
            [r[0] for r in self._store.query("SELECT uid FROM vectors INDEXED BY vectors_model WHERE model = ?", [self._model_id()])],
            dtype=np.int64,
        )
        have = index.ids()
        index.remove(np.setdiff1d(have, table, assume_unique=True))
        missing = np.setdiff1d(table, have, assume_unique=True)
        for start in range(0, len(missing), 20_000):
            part = json.dumps(missing[start : start + 20_000].tolist())
            rows = self._store.query(
                "SELECT uid, vec FROM vectors WHERE model = ? AND uid IN (SELECT value FROM json_each(?))", [self._model_id(), part]
            )
            self._add_rows(index, rows)
        self._persisted, self._inexact = None, True

    def _add_rows(self, index: VectorIndex, rows: list[Row], *, track: bool = False) -> None:
        if not rows:
            return
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = vector_rows.decode([r[1] for r in rows], index.dim)
        index.add(ids, vecs)
        if track:
            self._changes.add(ids, vecs)

    def _rebuild(self, gen: int, bumps: int) -> VectorIndex:
        """Rebuild the index from the vectors table (the truth) and seal it."""
        dim = vector_rows.model_dim(self._store, self.model) or (self._embedder.dim if self._embedder else 384)
        index = VectorIndex(dim, self._settings.ann_threshold)
        cur = self._store.execute("SELECT uid, vec FROM vectors WHERE model = ? ORDER BY uid", [self._model_id()])
        while batch := cur.fetchmany(20_000):
            self._add_rows(index, batch)
        self._store.execute("DELETE FROM temp.cv_removed")
        self._index, self._gen, self._bumps_seen = index, gen, bumps
        self._persisted, self._changes, self._inexact = None, sealed_index.Changes(), False
        self._save()
        return index

    def _save(self) -> None:
        """Persist the index: a delta record for a few changes, a new sealed base otherwise (vault/sealed_index.py)."""
        if self._index is None or self._inexact:
            return
        path = index_file(self._settings.index_dir, self.model)
        self._persisted = sealed_index.save(path, self._key, self._index, self.model, self._gen, self._persisted, self._changes)
        self._changes = sealed_index.Changes()
        self._dirty = 0

    # -- keeping vectors in step ---------------------------------------------------------------

    def _pending(self) -> list[tuple[int, str]]:
        """The units this connection wrote that still lack a vector of this model (its own writes, never the backlog)."""
        if self._store.read_only:
            return []  # nothing can be stored: searches use the vectors there are (and FTS finds the rest)
        if self._store.one("SELECT 1 FROM temp.cv_pending LIMIT 1") is None:
            return []  # the common case after every search: nothing written since
        rows = self._store.query(
            # CROSS JOIN: from the few pending ids to their units, never a scan of every unit (~0.13 s at 100k).
            f"SELECT u.uid, u.text FROM temp.cv_pending p CROSS JOIN units u ON u.uid = p.uid WHERE {_LACKING} ORDER BY u.uid",
            [self._model_id()],
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def sync(self, progress: Progress | None = None, *, limit: int | None = None) -> int:
        """Embed the units this connection wrote that lack a vector, store the vectors, and bring the index in step.

        Returns the units embedded. With ``limit``, more own units than that are left unembedded: they join
        the backlog (units lacking a vector, whoever wrote them), which only ``embed_backlog`` and
        ``reindex`` embed. Units other processes left are never embedded here.
        """
        pending = self._pending()
        if limit is not None and len(pending) > limit:
            # Left for the unlock agent's embedder, told at once (nothing happens without an agent).
            agent_client.embed_backlog(self._settings)
        if not pending or (limit is not None and len(pending) > limit):
            self._store.execute("DELETE FROM temp.cv_pending")
            if self._index is not None:
                self._ensure_index()
            return 0
        if self._stale_count():
            # Vectors of another model exist: embedding new units with this one would
            # mix two spaces in one index. `ctxvault reindex` converts them all.
            return 0
        done = self._embed_and_store(pending, progress)
        self._store.execute("DELETE FROM temp.cv_pending")
        if self._dirty >= SAVE_EVERY:
            self._save()
        return done

    def backlog(self) -> tuple[int, int]:
        """Items and units lacking a vector of this model (with vectors of another model: every unit)."""
        # Every vector belongs to a unit (ON DELETE CASCADE): equal counts, the common case, mean no
        # backlog, found in two index counts instead of a probe per unit.
        units = self._store.one("SELECT count(*) FROM units")
        have = self._store.one("SELECT count(*) FROM vectors INDEXED BY vectors_model WHERE model = ?", [self._model_id()])
        if int(units[0] if units else 0) <= int(have[0] if have else 0):
            return (0, 0)
        row = self._store.one(f"SELECT count(DISTINCT u.item_id), count(*) FROM units u WHERE {_LACKING}", [self._model_id()])
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def embed_backlog(
        self, *, paused: Callable[[], bool] | None = None, progress: Progress | None = None, batch: int = BACKLOG_BATCH
    ) -> int:
        """Embed every unit lacking a vector, ``batch`` units per transaction; returns units embedded.

        Units are read oldest first, ``BACKLOG_FETCH`` at a time, and encoded shortest first within each read.

        Resumable by construction: the state is only "units without a vector", so a run killed at any point
        keeps every batch it committed and the next run starts where it stopped. While ``paused()`` holds,
        nothing is encoded (a request is being served: it gets the CPU). Nothing is done while vectors of
        another model exist (``reindex`` converts those).
        """
        if self._stale_count():
            return 0
        total = self.backlog()[1]
        done, after = 0, -1
        while True:
            rows = self._store.query(
                f"SELECT u.uid, u.text FROM units u WHERE u.uid > ?2 AND {_LACKING} ORDER BY u.uid LIMIT ?3",
                [self._model_id(), after, BACKLOG_FETCH],
            )
            if not rows:
                break
            after = int(rows[-1][0])
            # Batches of similar lengths: a batch is padded to its longest text.
            fetched = sorted(((int(r[0]), str(r[1])) for r in rows), key=lambda p: len(p[1]))
            for start in range(0, len(fetched), batch):
                while paused is not None and paused():
                    time.sleep(PAUSE_POLL_S)
                done += self._embed_and_store(fetched[start : start + batch], None, batch=batch)
                if progress:
                    progress(done, max(total, done))
                if self._index is not None and self._dirty:
                    # A delta record per batch: other processes' searches find these vectors at once (issue 25).
                    self._save()
        if self._dirty:
            self._save()
        return done

    def _embed_and_store(self, pending: list[tuple[int, str]], progress: Progress | None, batch: int | None = None) -> int:
        """Encode in batches; each batch is written and indexed on the worker thread while the next one encodes.

        The encoder and SQLCipher both release the GIL, so the writes cost (almost)
        nothing next to encoding. Only one thread touches the connection at a time:
        the main thread encodes and waits for the previous write before queueing the next.
        """
        batch = batch or EMBED_BATCH  # read here, not bound at definition: a test may lower it
        embedder = self.embedder()
        index = self._ensure_index()
        done = 0
        writing: Future[None] | None = None
        try:
            for start in range(0, len(pending), batch):
                part = pending[start : start + batch]
                vecs = embedder.encode(embedding_texts([t for _, t in part]), batch_size=64)
                if writing is not None:
                    writing.result()
                uids = np.array([u for u, _ in part], dtype=np.int64)
                writing = self._worker().submit(self._write_batch, index, uids, vecs, embedder.model_id, embedder.dim)
                done += len(part)
                self._dirty += len(part)
                if progress:
                    progress(done, len(pending))
        except BaseException:
            if writing is not None:
                wait([writing])  # the connection is free again before the error propagates
            raise
        if writing is not None:
            writing.result()
        return done

    def _write_batch(self, index: VectorIndex, uids: NDArray[np.int64], vecs: NDArray[np.float32], model: str, dim: int) -> None:
        keep = self._store_vectors(uids, vecs, model, dim)
        index.add(uids[keep], vector_rows.rounded(vecs[keep]))
        if index is self._index:
            self._changes.add(uids[keep], vector_rows.rounded(vecs[keep]))
        self._advance()

    def _store_vectors(self, uids: NDArray[np.int64], vecs: NDArray[np.float32], model: str, dim: int) -> NDArray[np.bool_]:
        """Write one batch of vectors in one transaction; which rows were written (a unit may be gone)."""
        listed = json.dumps(uids.tolist())
        with self._store.transaction():
            # REPLACE: a re-embedded unit (model change) loses its old vector in the same statement.
            model_id = vector_rows.model_id(self._store, model, dim)
            assert model_id is not None
            vector_rows.insert(self._store, model_id, uids.tolist(), vecs, live_units_only=True)
            written = np.array(
                [r[0] for r in self._store.query("SELECT uid FROM vectors WHERE uid IN (SELECT value FROM json_each(?))", [listed])],
                dtype=np.int64,
            )
        self._store.execute("DELETE FROM temp.cv_removed WHERE uid IN (SELECT value FROM json_each(?))", [listed])
        return np.isin(uids, written)

    def prepare(self) -> None:
        """Bring the in-memory index in step (load or rebuild it) before a bulk write, outside its transaction.

        The bulk write queues its own units lacking a vector (``StagedVectors.written``). It seals the index
        as a new base, so an index caught up from the table's ids (``_from_files``) is rebuilt first.
        """
        self._ensure_index()
        if self._inexact:
            self._rebuild(self._generation(), self._own_bumps())

    def stage(self, incoming: NDArray[np.float16], total: int | None = None) -> StagedVectors:
        """Index vectors a bulk write is about to commit, on the worker thread, while the caller writes rows.

        Called before the transaction with the vectors to come, or a sample of ``total`` of them
        (training starts at once);
        ``add()`` with each batch of vectors as the transaction writes them (any thread),
        ``written()`` after the last, and ``finish()`` when the transaction has ended. The
        faiss work (training, adds, sealing) releases the GIL, so it costs the import
        little on a second core.
        """
        return StagedVectors(self, incoming, total)

    def _advance(self) -> None:
        """Record that the in-memory index reflects this connection's latest writes."""
        gen, bumps = self._generation(), self._own_bumps()
        if gen - self._gen == bumps - self._bumps_seen:
            self._gen, self._bumps_seen = gen, bumps
        # Otherwise another process wrote too; the next _ensure_index rebuilds.

    def use_model(self, settings: Settings) -> None:
        """Embed and search with ``settings.model`` from now on (the vault's model was switched: vault/vault_model.py)."""
        if settings.model != self.model:
            if self._embedder is not None and self._embedder.model_id != settings.model:
                self._embedder = None
            self._index, self._gen, self._dirty, self._mid, self._stale = None, -1, 0, None, None
            self._persisted, self._changes, self._inexact = None, sealed_index.Changes(), False
            self._scope_cache.clear()
            self._scoped.clear()
        self._settings = settings

    def reindex(self, progress: Progress | None = None) -> int:
        """Re-embed every unit whose vector is missing or made by another model; resumable.

        When no vector of another model is left, the sealed index files of other models are deleted.
        """
        rows = self._store.query(
            "SELECT u.uid, u.text FROM units u LEFT JOIN vectors v ON v.uid = u.uid WHERE v.uid IS NULL OR v.model != ? ORDER BY u.uid",
            [self._model_id()],
        )
        if self._stale_count():
            self._index = None
            self._gen = -1
        pending = [(int(r[0]), str(r[1])) for r in rows]
        done = self._embed_and_store(pending, progress) if pending else 0
        self._rebuild(self._generation(), self._own_bumps())
        self._stale = None
        if not self._stale_count():
            self._discard_other_models()
        return done

    def _discard_other_models(self) -> None:
        """Delete the sealed index files of models the vault no longer uses (their vectors are gone from the table)."""
        mine = index_file(self._settings.index_dir, self.model)
        if not self._settings.index_dir.is_dir():
            return
        for path in self._settings.index_dir.glob("*.cvx"):
            if path != mine:
                sealed_index.discard(path)
                path.unlink(missing_ok=True)
                delta_file(path).unlink(missing_ok=True)

    def stats(self) -> RetrievalStats:
        units = self._store.one("SELECT count(*) FROM units")
        vectors = self._store.one("SELECT count(*) FROM vectors WHERE model = ?", [self._model_id()])
        missing = self._store.one("SELECT count(*) FROM units u LEFT JOIN vectors v ON v.uid = u.uid WHERE v.uid IS NULL")
        index = self._index
        return RetrievalStats(
            model=self.model,
            backend=self._embedder.backend if self._embedder else None,
            units=int(units[0]) if units else 0,
            vectors=int(vectors[0]) if vectors else 0,
            stale_vectors=self._stale_count(),
            missing_vectors=int(missing[0]) if missing else 0,
            index_kind=index.kind if index else None,
            index_size=len(index) if index else 0,
            generation=self._generation(),
        )

    # -- scope ----------------------------------------------------------------------------------

    def _data_version(self) -> tuple[int, int, int]:
        """Changes to items and units by any connection, and only those (migration m0012_content): updates and deletes
        counted by triggers, inserts seen in the largest rowids. Audit appends and other writes leave it alone."""
        row = self._store.one(
            "SELECT (SELECT n FROM content_version WHERE id = 1), (SELECT max(rowid) FROM items), (SELECT max(uid) FROM units)"
        )
        return (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)) if row else (0, 0, 0)

    def _index_in_step(self) -> bool:
        """Whether the in-memory index reflects every unit of the database (then it holds no deleted unit's vector)."""
        return self._gen == self._generation()

    def _allowed(self, scope: ItemFilter, index: VectorIndex) -> Allowed:
        """The index ids the scope allows, whether they are the whole index (then no selector is needed), cached."""
        where, params = scope.where("i")
        in_step = self._index_in_step()
        key = (where, tuple(params), *self._data_version(), self._gen, in_step)
        hit = self._scope_cache.get(key)
        if hit is not None:
            return hit
        allowed = allowed_units(self._store, scope, index.ids(), in_step=in_step)
        if len(self._scope_cache) > 32:
            self._scope_cache.clear()
        self._scope_cache[key] = allowed
        return allowed

    # -- search ---------------------------------------------------------------------------------

    def rank(self, query: SearchQuery, scope: ItemFilter) -> list[tuple[int, float]]:
        """Ranked (unit id, score) pairs inside ``scope``, best first."""
        mode = query.mode
        f = self.fusion
        n = max(f.candidates, query.limit)
        if mode == "lexical":
            return self.lexical.rank(query.text, scope, query.limit)
        if self._stale_count():
            if mode == "dense":
                raise InvalidInput(f"vectors were made by another model than {self.model!r}: run `ctxvault reindex`")
            return self.lexical.rank(query.text, scope, query.limit)
        self.sync(limit=INLINE_EMBED)  # this process's own few writes; units lacking a vector are found lexically
        index = self._ensure_index()
        allowed = self._allowed(scope, index)
        if not allowed.any_unit:
            return []
        embedder = self.embedder()
        # The FTS query runs on the second core while the query is encoded on the first
        # (both release the GIL): end-to-end ≈ max(encode, FTS) instead of their sum.
        # Only the worker touches the connection until its result is taken.
        pending = self._worker().submit(self.lexical.rank_with_rare, query.text, scope, n) if mode == "hybrid" else None
        try:
            qvec = embedder.encode_query(query.text)
            dense_scores, dense_ids = index.search(qvec, n if mode == "hybrid" else query.limit, None if allowed.covers else allowed.ids)
        finally:
            lexical, rare = pending.result() if pending is not None else ([], frozenset())
        if mode == "dense":
            return [(int(i), float(s)) for i, s in zip(dense_ids, dense_scores, strict=True)]
        dense = list(zip(dense_ids.tolist(), dense_scores.tolist(), strict=True))
        return fuse(f, qvec, index, dense, lexical, rare, self.surroundings(f, query.text, scope, dense, lexical))[: query.limit]

    def surroundings(
        self, f: Fusion, text: str, scope: ItemFilter, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]
    ) -> Callable[[list[int]], Surroundings] | None:
        """How fusion reads its best candidates' thread neighbours and named-month units (vault/neighbours.py), if ``f`` uses them."""
        if f.method != "weighted" or not (f.neighbour_weight or f.second_weight or f.month_boost):
            return None
        return lambda top: surroundings(self._store, scope, top, text)

    def _worker(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctxvault-worker")
        return self._pool

    def _retire_worker(self) -> None:
        """Let the worker thread end once its jobs are done; the next job starts a fresh one (at normal priority)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def search(self, query: SearchQuery, scope: ItemFilter) -> list[SearchHit]:
        ranked = self.rank(query, scope)
        if not ranked:
            return []
        where, params = scope.where("i")
        uids = [u for u, _ in ranked]
        # CROSS JOIN: the ranked ids are the outer loop. Given a plain JOIN and a scope naming a kind,
        # the planner started from every item of that kind (items_kind_space) and probed the id list:
        # 0.87 s at 100k for an app's ten hits, against well under 1 ms.
        rows = {
            int(r["uid"]): r
            for r in self._store.query(
                f"""SELECT u.uid, u.seq, u.text AS unit_text, i.* FROM units u CROSS JOIN items i ON i.id = u.item_id
                WHERE u.uid IN (SELECT value FROM json_each(?)) AND {where}""",
                [json.dumps(uids), *params],
            )
        }
        terms = query_terms(query.text)
        hits = []
        for uid, score in ranked:
            r = rows.get(uid)
            if r is None:  # defence in depth: the SQL predicate has the last word
                continue
            hits.append(
                SearchHit(
                    item_id=r["id"],
                    kind=r["kind"],
                    text=r["unit_text"],
                    snippet=snippet(r["unit_text"], terms),
                    score=round(score, 6),
                    space=r["space"],
                    tags=json.loads(r["tags"]),
                    sensitivity=r["sensitivity"],
                    key=r["pref_key"],
                    chunk=r["seq"] if r["kind"] == "document" else None,
                    title=r["text"] if r["kind"] == "document" else None,
                    provenance=Provenance(
                        source=r["source"],
                        created_by=r["created_by"],
                        created_at=datetime.fromisoformat(r["created_at"]),
                        updated_at=datetime.fromisoformat(r["updated_at"]),
                    ),
                )
            )
        return hits

    def similar(self, text: str, scope: ItemFilter, k: int, floor: float) -> list[tuple[str, float]]:
        """Up to ``k`` (item id, cosine) of the units in ``scope`` most like ``text``, best first, none below ``floor``.

        Only units that have a vector are compared: nothing is embedded here but ``text``
        (a backlog of pending units waits for the next sync, not for a write). Empty while
        vectors of another model exist or the model cannot load.
        """
        if self._stale_count():
            return []
        index = self._ensure_index()
        if len(index) == 0:
            return []
        allowed = self._allowed(scope, index)
        if len(allowed.ids) == 0:
            return []
        try:
            query = self.embedder().encode_query(embedding_texts([text])[0])
        except EmbedderUnavailable:
            return []
        scores, ids = index.search(query, k, None if allowed.covers else allowed.ids)
        keep = [(int(uid), float(score)) for uid, score in zip(ids, scores, strict=True) if float(score) >= floor]
        if not keep:
            return []
        rows = self._store.query(
            "SELECT uid, item_id FROM units WHERE uid IN (SELECT value FROM json_each(?))", [json.dumps([u for u, _ in keep])]
        )
        owner = {int(r[0]): str(r[1]) for r in rows}
        return [(owner[uid], score) for uid, score in keep if uid in owner]

    def scoped_units(self, scope: ItemFilter) -> ScopedUnits | None:
        """The units inside ``scope`` that have a vector, with their vectors and texts, for a caller that
        ranks a small scope itself (vault/pref_match.py); None while vectors of another model exist.

        Cached until the scope's units, or the index, change: the same object is returned meanwhile.
        """
        if self._stale_count():
            return None
        self.sync(limit=INLINE_EMBED)
        index = self._ensure_index()
        where, params = scope.where("i")
        key = (where, tuple(params), *self._data_version(), self._gen)
        hit = self._scoped.get(key)
        if hit is not None:
            return hit
        uids, vecs = index.vectors_present(self._allowed(scope, index).ids)
        rows = self._store.query("SELECT uid, text FROM units WHERE uid IN (SELECT value FROM json_each(?))", [json.dumps(uids.tolist())])
        text = {int(r[0]): str(r[1]) for r in rows}
        units = ScopedUnits(uids=uids, vectors=vecs, texts=tuple(text.get(int(u), "") for u in uids.tolist()))
        if len(self._scoped) >= 4:
            self._scoped.clear()
        self._scoped[key] = units
        return units

    def discard_index(self) -> None:
        """Delete the sealed index files and the in-memory index; the next search rebuilds them.

        Purge calls this: memory freed by removals may still hold vectors, and a sealed
        file written before the purge still holds them (BRIEF §4: no recoverable copy).
        """
        self._index, self._gen, self._dirty = None, -1, 0
        self._persisted, self._changes, self._inexact = None, sealed_index.Changes(), False
        sealed_index.discard(index_file(self._settings.index_dir, self.model))
        if self._settings.index_dir.is_dir():
            for path in self._settings.index_dir.iterdir():
                if path.is_file():
                    path.unlink(missing_ok=True)

    def close(self) -> None:
        self._retire_worker()
        if self._index is not None and self._dirty:
            self._save()


@dataclass(eq=False)
class ScopedUnits:
    """Units of one scope with their vectors (rows in ``uids`` order) and indexed texts (Retriever.scoped_units)."""

    uids: NDArray[np.int64]
    vectors: NDArray[np.float32]
    texts: tuple[str, ...]


class StagedVectors:
    """Vectors being indexed beside the transaction that writes them (``Retriever.stage``)."""

    def __init__(self, owner: Retriever, incoming: NDArray[np.float16], total: int | None = None) -> None:
        self._owner = owner
        self._added: list[NDArray[np.int64]] = []
        self._jobs: list[Future[object]] = []
        self._state: tuple[int, int] | None = None
        self._temp: Path | None = None
        self._base_id = b""
        # The units about to be inserted are recorded once in written(), not row by row by the temp trigger.
        owner._store.execute("UPDATE temp.cv_counter SET bulk = 1 WHERE id = 1")
        index = owner._ensure_index()
        index.batch_threads = 1  # the other core is writing the rows
        # The rows writer is the import's critical path; the index work only has to be done by the
        # time it commits. Run it at a lower priority so it takes the CPU the writer leaves
        # (finish() retires the thread: an unprivileged process cannot raise it back).
        owner._worker().submit(background_priority)
        self._index = index
        # Training needs only vectors, not unit ids: it starts before the transaction does.
        plan = index.training_sample(incoming, total)
        self._trained: Future[TrainedLists] | None = None
        if plan is not None:
            sample, size = plan
            trainer = VectorIndex(index.dim, owner._settings.ann_threshold)
            trainer.batch_threads = 1
            self._trained = owner._worker().submit(trainer.train_lists, sample, size)

    def add(self, uids: NDArray[np.int64], vecs: NDArray[np.float16]) -> None:
        """The rows of ``uids`` are being written in the transaction: add their vectors on the worker (any thread)."""
        index, trained = self._index, self._trained
        self._added.append(uids)

        def job() -> None:
            index.add(uids, vector_rows.rounded(vecs), trained=trained.result() if trained is not None else None)

        self._jobs.append(self._owner._worker().submit(job))

    def written(self, lacking: NDArray[np.int64]) -> None:
        """Every row is written (``lacking``: the new units without a vector): seal the index at the
        generation the transaction will commit. The units lacking a vector are queued for embedding, as the
        temp trigger would have; the transaction's removals (replaced items) are applied after the adds."""
        owner = self._owner
        store = owner._store
        store.execute("UPDATE temp.cv_counter SET bulk = 0 WHERE id = 1")
        if len(lacking):
            store.execute("INSERT OR IGNORE INTO temp.cv_pending SELECT value FROM json_each(?)", [json.dumps(lacking.tolist())])
        removed = np.array([r[0] for r in store.query("SELECT uid FROM temp.cv_removed")], dtype=np.int64)
        store.execute("DELETE FROM temp.cv_removed")
        if len(removed):
            self._jobs.append(owner._worker().submit(self._index.remove, removed))
        self._state = (owner._generation(), owner._own_bumps())
        if self._added and owner._dirty + sum(map(len, self._added)) >= SAVE_EVERY:
            self._jobs.append(owner._worker().submit(self._seal, self._index, self._state[0]))

    def _seal(self, index: VectorIndex, generation: int) -> None:
        settings = self._owner._settings
        self._base_id = os.urandom(BASE_ID_BYTES)
        path = index_file(settings.index_dir, settings.model)
        self._temp = seal_beside(path, self._owner._key, index, settings.model, generation, self._base_id.hex())

    def finish(self, committed: bool) -> None:
        """Publish the index if the transaction committed; otherwise forget it (rebuilt from the table on next use)."""
        owner = self._owner
        owner._store.execute("UPDATE temp.cv_counter SET bulk = 0 WHERE id = 1")  # also when written() never came
        jobs: list[Future[Any]] = [*self._jobs, *([self._trained] if self._trained is not None else [])]
        wait(jobs)
        owner._retire_worker()
        self._index.batch_threads = os.cpu_count() or 1
        failed = any(job.exception() is not None for job in jobs)
        if not self._jobs and not failed:
            return  # nothing was added or removed: the index is as it was
        if not committed or failed or self._state is None:
            # The rows are the truth: an index that missed them (or holds rolled-back ones) is rebuilt.
            owner._index, owner._gen = None, -1
            owner._persisted, owner._changes, owner._inexact = None, sealed_index.Changes(), False
            if self._temp is not None:
                self._temp.unlink(missing_ok=True)
            return
        owner._gen, owner._bumps_seen = self._state
        if self._temp is not None:
            path = index_file(owner._settings.index_dir, owner.model)
            os.replace(self._temp, path)
            owner._persisted = sealed_index.published(path, self._index, self._state[0], self._base_id)
            owner._changes = sealed_index.Changes()
            owner._dirty = 0
        else:
            owner._changes.lost = True  # staged in bulk, not vector by vector: the next save writes a new base
            owner._dirty += sum(map(len, self._added))


BACKGROUND_NICE = 10


def background_priority() -> None:
    """Lower the calling thread's CPU priority (Linux, where the nice value is per thread; elsewhere a no-op)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def embedding_texts(texts: list[str]) -> list[str]:
    """The text given to the embedder for each unit: the unit text without its date context (vault/dates.py)."""
    return [without_context(t) for t in texts]


__all__ = [
    "BACKLOG_BATCH",
    "DEFAULT_FUSION",
    "INLINE_EMBED",
    "Fusion",
    "RetrievalStats",
    "Retriever",
    "ScopedUnits",
    "fts_query",
    "fuse",
    "query_terms",
]
