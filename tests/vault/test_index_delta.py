"""The delta file's format: records round-trip, a tampered or torn frame is never applied, a record of another base is stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import index_delta
from vault.crypto import new_key
from vault.index_delta import Delta, append, chain, decode, encode, read

DIM = 8
BASE = b"b" * index_delta.BASE_ID_BYTES
OTHER = b"o" * index_delta.BASE_ID_BYTES


def _delta(start: int, end: int, ids: list[int], removed: list[int] | None = None, seed: int = 0) -> Delta:
    rng = np.random.default_rng(seed)
    return Delta(
        start=start,
        end=end,
        removed=np.array(removed or [], dtype=np.int64),
        ids=np.array(ids, dtype=np.int64),
        vecs=rng.standard_normal((len(ids), DIM)).astype(np.float16),
    )


def _same(a: Delta, b: Delta) -> bool:
    return (
        (a.start, a.end) == (b.start, b.end)
        and np.array_equal(a.removed, b.removed)
        and np.array_equal(a.ids, b.ids)
        and np.array_equal(a.vecs, b.vecs)
    )


@settings(max_examples=40, deadline=None)
@given(
    start=st.integers(0, 2**40),
    ids=st.lists(st.integers(1, 2**40), max_size=20, unique=True),
    removed=st.lists(st.integers(1, 2**40), max_size=20, unique=True),
)
def test_a_record_round_trips(start: int, ids: list[int], removed: list[int]) -> None:
    record = _delta(start, start + len(ids) + len(removed) + 1, ids, removed)
    assert _same(decode(encode(record), DIM), record)


def test_records_appended_are_read_back_sealed_and_in_order(tmp_path: Path) -> None:
    key, path = new_key(), tmp_path / "m.cvd"
    first, second = _delta(5, 6, [11]), _delta(6, 8, [12, 13], [11], seed=1)
    assert append(path, key, "m", BASE, first) and append(path, key, "m", BASE, second)
    assert path.stat().st_mode & 0o777 == 0o600
    assert encode(first)[8:40] not in path.read_bytes()  # sealed: the record's plaintext is nowhere in the file
    scan = read(path, key, "m", BASE, DIM)
    assert [_same(a, b) for a, b in zip(scan.records, [first, second], strict=True)] == [True, True]
    assert scan.end == path.stat().st_size and scan.stale == scan.damaged == 0
    # Reading on from where a reader stopped finds only what came since.
    third = _delta(8, 9, [14], seed=2)
    append(path, key, "m", BASE, third)
    later = read(path, key, "m", BASE, DIM, offset=scan.end)
    assert len(later.records) == 1 and _same(later.records[0], third)


def test_a_tampered_frame_is_detected_and_never_applied(tmp_path: Path) -> None:
    key, path = new_key(), tmp_path / "m.cvd"
    append(path, key, "m", BASE, _delta(5, 6, [11]))
    size = path.stat().st_size
    append(path, key, "m", BASE, _delta(6, 7, [12], seed=1))
    raw = bytearray(path.read_bytes())
    raw[size + 40] ^= 0x01  # a bit of the second frame's ciphertext
    path.write_bytes(bytes(raw))
    scan = read(path, key, "m", BASE, DIM)
    assert [r.start for r in scan.records] == [5] and scan.damaged == 1
    # Another key, or another model's AAD, opens nothing.
    assert read(path, new_key(), "m", BASE, DIM).damaged == 2
    assert read(path, key, "other-model", BASE, DIM).damaged == 2


def test_a_torn_last_frame_ends_the_file(tmp_path: Path) -> None:
    key, path = new_key(), tmp_path / "m.cvd"
    append(path, key, "m", BASE, _delta(5, 6, [11]))
    whole = path.stat().st_size
    append(path, key, "m", BASE, _delta(6, 7, [12]))
    path.write_bytes(path.read_bytes()[:-10])  # a crash while appending
    scan = read(path, key, "m", BASE, DIM)
    assert [r.start for r in scan.records] == [5] and scan.end == whole and scan.damaged == 0


def test_frames_of_another_base_are_stale(tmp_path: Path) -> None:
    key, path = new_key(), tmp_path / "m.cvd"
    append(path, key, "m", OTHER, _delta(5, 6, [11]))  # left by a crash between a fold's new base and deleting the delta
    append(path, key, "m", BASE, _delta(9, 10, [12]))
    scan = read(path, key, "m", BASE, DIM)
    assert [r.start for r in scan.records] == [9] and scan.stale == 1 and scan.damaged == 0


def test_records_chain_by_generation_whatever_their_order_in_the_file() -> None:
    a, b, c = _delta(5, 6, [1]), _delta(6, 9, [2]), _delta(9, 10, [3])
    run, reached = chain([c, a, b], 5)
    assert [r.start for r in run] == [5, 6, 9] and reached == 10
    assert chain([a, c], 5)[1] == 6  # a gap: the chain stops where it is
    assert chain([a, b], 4) == ([], 4)  # records of a later generation than the base: none apply
    assert chain([a, _delta(5, 7, [4])], 5) == ([], 5)  # two records from one generation: neither is trusted
