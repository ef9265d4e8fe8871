"""The index's readers-writer lock: readers share, a writer waits for them and then excludes them."""

from __future__ import annotations

import threading
import time

import pytest

from vault.rwlock import ReadWriteLock


def _until(condition: threading.Event) -> None:
    assert condition.wait(5)


def test_readers_hold_the_lock_together() -> None:
    lock = ReadWriteLock()
    inside = threading.Event()
    with lock.reading():

        def other() -> None:
            with lock.reading():
                inside.set()

        thread = threading.Thread(target=other)
        thread.start()
        _until(inside)  # a second reader got in while the first holds it
        thread.join(5)


def test_a_writer_waits_for_the_readers_and_new_readers_wait_for_it() -> None:
    lock = ReadWriteLock()
    wrote, read_after = threading.Event(), threading.Event()
    order: list[str] = []

    def writer() -> None:
        with lock.writing():
            order.append("write")
            wrote.set()

    def late_reader() -> None:
        with lock.reading():
            order.append("late read")
            read_after.set()

    with lock.reading():
        w = threading.Thread(target=writer)
        w.start()
        deadline = time.monotonic() + 5
        while lock._waiting == 0:  # until the writer is queued behind this reader (a state, not a time)
            assert time.monotonic() < deadline
            time.sleep(0)
        r = threading.Thread(target=late_reader)
        r.start()
        assert not wrote.is_set()
        order.append("first read done")
    _until(wrote)
    _until(read_after)
    w.join(5)
    r.join(5)
    # Writer-preferring: the reader that came after the waiting writer went after it.
    assert order == ["first read done", "write", "late read"]


def test_both_sides_are_reentrant_and_a_writer_may_read() -> None:
    lock = ReadWriteLock()
    with lock.reading(), lock.reading():
        pass
    with lock.writing(), lock.writing(), lock.reading():
        pass
    with lock.writing():  # released fully above: free again
        pass


def test_a_reader_asking_to_write_is_refused_instead_of_waiting_forever() -> None:
    lock = ReadWriteLock()
    with lock.reading(), pytest.raises(RuntimeError), lock.writing():
        pass
    with lock.writing():
        pass
