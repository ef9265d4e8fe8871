"""Reader connections: read calls of one server run side by side, and beside its writer.

`ctxvault serve` answers many clients from one process. Its writer is one service on one
connection, whose calls (writes, the owner's console) run one at a time under a lock.
Read calls (searches, reads, preferences, token checks) run on reader services instead, each
on a SQLCipher connection of its own: the WAL lets readers read while one connection writes,
so a search waits neither for another search nor for a write (issue 27, "Load").

What a read also writes stays correct on any connection: an audit entry is appended inside
its own IMMEDIATE transaction, which reads the chain's head after taking the write lock, so
appends from every connection (and every process) form one chain. A reader connection
refuses to change items, units or vectors (temp triggers, ``_GUARD_SQL``): a write sent to a
reader by mistake fails whole instead of leaving the writer's index behind its rows.

The in-memory vector index is not loaded once per connection: readers search the writer's
(``ReaderRetriever``), holding its read lock for the whole ranking, while the writer's
changes to it hold the write lock (vault/index.py ``guard``). A reader brings that index in
step with the database (changes of other processes) only while the writer is idle; while
the writer is busy it searches the index as it is. That index can then lack the newest
vectors (their units are still found lexically: FTS is always current) or hold ones of
removed units, which the scope's unit ids (taken from the reader's own SQL) leave out, so
the scope still filters before ranking. The writer brings the index in step on its next call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from schemas.items import SearchQuery
from vault.crypto import DataKey
from vault.embed import Embedder
from vault.filters import ItemFilter
from vault.index import VectorIndex
from vault.search import Retriever, ScopedUnits
from vault.settings import Settings
from vault.store import Store

if TYPE_CHECKING:
    from vault.service import VaultService

# Readers a server opens: one per core here (a search is CPU work: encode, FTS, faiss); more
# would only queue on the cores. Opened on first need, so a quiet server holds none.
READERS = 2

_GUARDED = ("items", "units", "vectors", "index_state")
_GUARD_SQL = "\n".join(
    f"CREATE TEMP TRIGGER IF NOT EXISTS cv_reader_{table}_{op.lower()} BEFORE {op} ON main.{table} BEGIN "
    f"SELECT RAISE(ABORT, 'a reader connection does not change {table}: send writes to the writer'); END;"
    for table in _GUARDED
    for op in ("INSERT", "UPDATE", "DELETE")
)


class ReaderRetriever(Retriever):
    """Search on a reader connection with the writer's (the keeper's) in-memory index."""

    def __init__(
        self, store: Store, settings: Settings, key: DataKey, *, keeper: Retriever, writer_lock: threading.Lock, **kwargs: Any
    ) -> None:
        super().__init__(store, settings, key, embedder=keeper._embedder, **kwargs)
        store.conn.executescript(_GUARD_SQL)
        self._keeper = keeper
        self._writer_lock = writer_lock
        self._holds: ExitStack | None = None  # open while a ranking runs: the index it pinned

    def embedder(self) -> Embedder:
        # The writer's, once it has one (process-wide anyway, vault/embed.py load_embedder).
        return self._keeper.embedder() if self._embedder is None else self._embedder

    def _follow(self) -> VectorIndex:
        """The keeper's index, brought in step with the database first if the writer is idle (or there is none yet)."""
        keeper = self._keeper
        index = keeper._index
        if index is not None and keeper._gen == self._generation():
            return index
        # With no index at all, wait for the writer once; otherwise never wait for a write.
        if not self._writer_lock.acquire(blocking=index is None):
            assert index is not None
            return index
        try:
            return keeper._ensure_index()
        finally:
            self._writer_lock.release()

    def _index_in_step(self) -> bool:
        # The pinned index is the keeper's; the read hold keeps the keeper from changing it meanwhile.
        keeper = self._keeper
        return self._index is not None and self._index is keeper._index and keeper._gen == self._generation()

    def _ensure_index(self) -> VectorIndex:
        holds = self._holds
        assert holds is not None, "a reader uses the index only inside a pinned call"
        if self._index is None:
            index = self._follow()  # before the read hold: bringing it in step changes it
            holds.enter_context(index.guard.reading())
            # Cache keys (scope ids, scoped units) name this index state, not a generation of this connection.
            self._index, self._gen = index, index.version
        return self._index

    @contextmanager
    def _pinned(self) -> Iterator[None]:
        with ExitStack() as holds:
            self._holds = holds
            try:
                yield
            finally:
                self._holds, self._index = None, None

    def rank(self, query: SearchQuery, scope: ItemFilter) -> list[tuple[int, float]]:
        with self._pinned():
            return super().rank(query, scope)

    def scoped_units(self, scope: ItemFilter) -> ScopedUnits | None:
        with self._pinned():
            return super().scoped_units(scope)

    def similar(self, text: str, scope: ItemFilter, k: int, floor: float) -> list[tuple[str, float]]:
        with self._pinned():
            return super().similar(text, scope, k, floor)

    def sync(self, progress: Callable[[int, int], None] | None = None, *, limit: int | None = None) -> int:
        # This connection writes no units (``_GUARD_SQL``): nothing of its own to embed.
        return 0

    def close(self) -> None:
        self._retire_worker()


class ReaderPool:
    """Reader services beside one writer service, opened on first need, up to ``size``."""

    def __init__(self, writer: VaultService, writer_lock: threading.Lock, size: int = READERS) -> None:
        self._writer = writer
        self._writer_lock = writer_lock
        self._size = size
        self._free: list[VaultService] = []
        self._open: list[VaultService] = []
        self._opening = 0
        self._cond = threading.Condition()
        self._closed = False

    @contextmanager
    def reading(self) -> Iterator[VaultService]:
        """A reader service for the block, alone: a free one, a new one, or the next one freed."""
        svc = self._take()
        try:
            yield svc
        finally:
            with self._cond:
                self._free.append(svc)
                self._cond.notify()

    def _take(self) -> VaultService:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the reader pool is closed")
                if self._free:
                    return self._free.pop()
                if len(self._open) + self._opening < self._size:
                    break
                self._cond.wait()
            self._opening += 1
        try:
            svc = self._writer.reader(self._writer_lock)  # opened outside the lock: other readers go on meanwhile
        finally:
            with self._cond:
                self._opening -= 1
                self._cond.notify()
        with self._cond:
            self._open.append(svc)
        return svc

    @property
    def opened(self) -> int:
        """Readers opened so far."""
        return len(self._open)

    def close(self) -> None:
        """Close every reader; call it once no request is running."""
        with self._cond:
            self._closed = True
            readers, self._open, self._free = self._open, [], []
            self._cond.notify_all()
        for svc in readers:
            svc.close()
