from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from vault import index as index_module
from vault import vectors as vector_rows
from vault.crypto import new_key
from vault.index import VectorIndex, load_sealed, save_sealed


def _unit(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    x = centres[rng.integers(0, 20, rows)] + 0.5 * rng.standard_normal((rows, dim))
    x = x.astype(np.float32)
    out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def test_flat_search_is_exact_while_small() -> None:
    x = _unit(500)
    index = VectorIndex(32, ann_threshold=1000)
    index.add(np.arange(500, dtype=np.int64), x)
    scores, ids = index.search(x[7], 10)
    assert index.kind == "flat" and ids[0] == 7
    assert list(ids) == list(np.argsort(-(x @ x[7]))[:10])
    assert np.allclose(scores, np.sort(x @ x[7])[::-1][:10], atol=1e-5)


def test_search_sees_only_the_allowed_ids() -> None:
    x = _unit(500)
    index = VectorIndex(32, ann_threshold=1000)
    index.add(np.arange(500, dtype=np.int64), x)
    allowed = np.arange(100, 150, dtype=np.int64)
    _, ids = index.search(x[7], 10, allowed)
    assert set(ids) <= set(allowed) and len(ids) == 10
    assert len(index.search(x[7], 10, np.zeros(0, dtype=np.int64))[1]) == 0


def _recall_at_10(index: VectorIndex, x: np.ndarray, ids: np.ndarray, queries: np.ndarray) -> float:
    exact = ids[np.argsort(-(queries @ x.T), axis=1)[:, :10]]
    return float(np.mean([len(set(index.search(q, 10)[1]) & set(exact[i])) / 10 for i, q in enumerate(queries)]))


def test_ivf_past_the_threshold_keeps_recall_at_10_above_095() -> None:
    x = _unit(6000, seed=1)
    index = VectorIndex(32, ann_threshold=2000)
    index.add(np.arange(6000, dtype=np.int64), x)
    assert index.kind == "ivf" and index.lists == 32
    assert _recall_at_10(index, x, np.arange(6000), _unit(100, seed=2)) >= 0.95


def test_ivf_lists_hold_exactly_the_float16_values_of_the_table() -> None:
    """The vectors table stores float16; the lists must hold those values, not a centroid plus a rounded residual."""
    x = vector_rows.rounded(_unit(3000, seed=4))
    index = VectorIndex(32, ann_threshold=1000)
    index.add(np.arange(3000, dtype=np.int64), x)
    assert index.kind == "ivf"
    assert np.array_equal(index.vectors(np.arange(0, 3000, 7, dtype=np.int64)), x[::7])


def test_ivf_adds_put_each_vector_in_the_list_faiss_would_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adds choose lists by numpy's matrix product, block by block, not by faiss's quantizer: the lists
    must be those the quantizer chooses, but for ties closer than float rounding."""
    monkeypatch.setattr(index_module, "ASSIGN_BLOCK", 700)  # several blocks per add
    x = vector_rows.rounded(_unit(6000, seed=8))
    index = VectorIndex(32, ann_threshold=1000)
    index.add(np.arange(5000, dtype=np.int64), x[:5000])  # the switch to IVF adds all at once
    index.add(np.arange(5000, 6000, dtype=np.int64), x[5000:])  # then batch by batch
    assert index.kind == "ivf" and len(index) == 6000
    ivf = index._index
    list_of = np.full(6000, -1)
    for n in range(ivf.nlist):
        list_of[faiss.rev_swig_ptr(ivf.invlists.get_ids(n), ivf.invlists.list_size(n))] = n
    _, chosen = ivf.quantizer.search(x, 1)
    scores = x.astype(np.float64) @ ivf.quantizer.reconstruct_n(0, ivf.nlist).T.astype(np.float64)
    differ = list_of != chosen[:, 0]
    assert (list_of >= 0).all()
    assert differ.sum() <= 3, differ.sum()
    rows = np.flatnonzero(differ)
    assert np.allclose(scores[rows, list_of[rows]], scores[rows].max(axis=1), atol=1e-5)


def test_vectors_present_returns_exactly_the_held_ids_with_their_vectors_in_both_index_kinds() -> None:
    """Fusion asks for the vectors of lexical candidates; some may lack one (not embedded yet): those are
    left out, the rest come back in the order asked, with the values the index holds."""
    x = vector_rows.rounded(_unit(3000, seed=6))
    for threshold, kind in ((5000, "flat"), (1000, "ivf")):
        index = VectorIndex(32, ann_threshold=threshold)
        index.add(np.arange(0, 6000, 2, dtype=np.int64), x)  # even ids only
        assert index.kind == kind
        held = np.array([40, 2, 5998, 10], dtype=np.int64)
        got, vecs = index.vectors_present(held)
        assert got.tolist() == held.tolist() and np.array_equal(vecs, x[held // 2])
        got, vecs = index.vectors_present(np.array([7, 40, 9999, 2, 3], dtype=np.int64))
        assert got.tolist() == [40, 2] and np.array_equal(vecs, x[[20, 1]])
        got, vecs = index.vectors_present(np.zeros(0, dtype=np.int64))
        assert len(got) == 0 and vecs.shape == (0, 32)


def test_growing_in_batches_retrains_the_lists_and_keeps_recall() -> None:
    x = _unit(12_000, seed=3)
    index = VectorIndex(32, ann_threshold=1000)
    for start in range(0, 12_000, 500):
        index.add(np.arange(start, start + 500, dtype=np.int64), x[start : start + 500])
    # Trained at 1,500 (16 lists), retrained past 6,000 (32 lists): sized for what it holds.
    assert index.kind == "ivf" and index.lists == 32 and len(index) == 12_000
    assert sorted(index.ids().tolist()) == list(range(12_000))
    assert _recall_at_10(index, x, np.arange(12_000), _unit(100, seed=4)) >= 0.95


def test_lists_trained_ahead_serve_a_bulk_writer_adding_in_batches() -> None:
    """A bulk import trains for its final size first, then adds batch by batch: no batch may retrain,
    fall back to exact, or add a vector twice. The first batches alone are below half the threshold,
    where removing (the absent ids of each next batch) used to switch an IVF index back to exact."""
    x = _unit(8000, seed=6)
    index = VectorIndex(32, ann_threshold=4000)
    plan = index.training_sample(x)
    assert plan is not None
    trained = VectorIndex(32, ann_threshold=4000).train_lists(*plan)
    for start in range(0, 8000, 1000):
        index.add(np.arange(start, start + 1000, dtype=np.int64), x[start : start + 1000], trained=trained)
        assert index.kind == "ivf" and index._index is trained.index, start
    assert len(index) == 8000 and sorted(index.ids().tolist()) == list(range(8000))
    assert _recall_at_10(index, x, np.arange(8000), _unit(100, seed=7)) >= 0.95


def test_a_filtered_ivf_search_finds_the_allowed_neighbours_exactly_or_nearly() -> None:
    x = _unit(30_000, seed=5)
    index = VectorIndex(32, ann_threshold=1000)
    index.add(np.arange(30_000, dtype=np.int64), x)
    for allowed in (np.arange(0, 30_000, 7, dtype=np.int64), np.arange(0, 30_000, 2, dtype=np.int64)):  # exact subset, then selector
        _, got = index.search(x[14], 10, allowed)
        assert set(got.tolist()) <= set(allowed.tolist()) and len(got) == 10
        assert got[0] == 14
        best = allowed[np.argsort(-(x[allowed] @ x[14]))[:10]]
        assert len(set(got.tolist()) & set(best.tolist())) >= 9


def test_shrinking_below_half_the_threshold_goes_back_to_exact() -> None:
    x = _unit(3000)
    index = VectorIndex(32, ann_threshold=2000)
    index.add(np.arange(3000, dtype=np.int64), x)
    assert index.kind == "ivf"
    index.remove(np.arange(2100, dtype=np.int64))
    assert index.kind == "flat" and len(index) == 900
    assert list(index.search(x[2500], 3)[1]) == list(2100 + np.argsort(-(x[2100:] @ x[2500]))[:3])


def test_removed_ids_leave_both_index_kinds() -> None:
    x = _unit(3000)
    for threshold in (10_000, 1000):
        index = VectorIndex(32, ann_threshold=threshold)
        index.add(np.arange(3000, dtype=np.int64), x)
        index.remove(np.array([7, 99_999], dtype=np.int64))  # an absent id is ignored
        assert 7 not in index.search(x[7], 5)[1] and len(index) == 2999
        assert 7 not in index.ids() and len(index.ids()) == 2999


def test_sealed_index_round_trips_and_holds_no_plaintext_vector(tmp_path: Path) -> None:
    x = _unit(50)
    index = VectorIndex(32, ann_threshold=1000)
    index.add(np.arange(50, dtype=np.int64), x)
    key = new_key()
    path = tmp_path / "m.cvx"
    save_sealed(path, key, index, "m", generation=9)
    assert x[3].tobytes()[:16] not in path.read_bytes()
    loaded = load_sealed(path, key, "m", 1000)
    assert loaded is not None and loaded[1].generation == 9
    assert list(loaded[0].search(x[3], 3)[1]) == list(index.search(x[3], 3)[1])


def test_a_sealed_ivf_index_round_trips_with_its_lists(tmp_path: Path) -> None:
    x = _unit(3000)
    index = VectorIndex(32, ann_threshold=1000)
    index.add(np.arange(3000, dtype=np.int64), x)
    key = new_key()
    save_sealed(tmp_path / "m.cvx", key, index, "m", generation=2)
    loaded = load_sealed(tmp_path / "m.cvx", key, "m", 1000)
    assert loaded is not None and loaded[0].kind == "ivf" and loaded[0].lists == index.lists
    loaded[0].remove(np.array([5], dtype=np.int64))  # the id map survives the round trip
    assert 5 not in loaded[0].search(x[5], 5)[1] and len(loaded[0]) == 2999


def test_a_sealed_index_under_another_key_or_model_is_not_trusted(tmp_path: Path) -> None:
    index = VectorIndex(32, ann_threshold=1000)
    index.add(np.arange(5, dtype=np.int64), _unit(5))
    key = new_key()
    path = tmp_path / "m.cvx"
    save_sealed(path, key, index, "m", generation=1)
    assert load_sealed(path, new_key(), "m", 1000) is None
    assert load_sealed(path, key, "other-model", 1000) is None
    path.write_bytes(path.read_bytes()[:-5])
    assert load_sealed(path, key, "m", 1000) is None
