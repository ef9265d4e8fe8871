"""A readers-writer lock: many threads read at once, one writes alone.

The in-memory vector index is searched by several reader connections of one server at
once and changed by its one writer (``ctxvault serve``, vault/readers.py): faiss searches may
run side by side, but an add or a removal reallocates the storage a search is reading.

Writer-preferring: once a writer waits, new readers wait behind it, so a stream of searches
cannot starve a write. Both sides are reentrant in one thread (a search calls ``ids()`` and
``search()`` under one hold; ``add`` calls ``remove``); a thread that writes may also read.
A thread that holds the read side may not ask for the write side: it would wait for itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Shared holds for readers, an exclusive hold for one writer at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0  # threads holding the read side (each counted once)
        self._writer: int | None = None  # the thread holding the write side
        self._writes = 0  # its nested holds
        self._waiting = 0  # writers waiting
        self._held = threading.local()  # this thread's nested read holds

    def _reads(self) -> int:
        return int(getattr(self._held, "reads", 0))

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the read side for the block (waits while a writer holds or waits for the lock)."""
        me = threading.get_ident()
        nested = self._reads() > 0 or self._writer == me
        if not nested:
            with self._cond:
                while self._writer is not None or self._waiting:
                    self._cond.wait()
                self._readers += 1
        self._held.reads = self._reads() + 1
        try:
            yield
        finally:
            self._held.reads = self._reads() - 1
            if not nested:
                with self._cond:
                    self._readers -= 1
                    if self._readers == 0:
                        self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the write side for the block (waits for every reader to leave).

        Raises:
            RuntimeError: this thread holds the read side (it would wait for itself forever).
        """
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                if self._reads():
                    raise RuntimeError("a thread holding the index for reading cannot change it")
                self._waiting += 1
                try:
                    while self._writer is not None or self._readers:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
                self._writer = me
            self._writes += 1
        try:
            yield
        finally:
            with self._cond:
                self._writes -= 1
                if self._writes == 0:
                    self._writer = None
                    self._cond.notify_all()
