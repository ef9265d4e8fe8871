from __future__ import annotations

from pathlib import Path

import numpy as np

from vault.crypto import new_key
from vault.index import VectorIndex, load_sealed, save_sealed


def _unit(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    x = centres[rng.integers(0, 20, rows)] + 0.5 * rng.standard_normal((rows, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


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


def test_hnsw_past_the_threshold_keeps_recall_at_10_above_095() -> None:
    x = _unit(6000, seed=1)
    index = VectorIndex(32, ann_threshold=2000)
    index.add(np.arange(6000, dtype=np.int64), x)
    assert index.kind == "hnsw"
    queries = _unit(100, seed=2)
    exact = np.argsort(-(queries @ x.T), axis=1)[:, :10]
    recall = np.mean([len(set(index.search(q, 10)[1]) & set(exact[i])) / 10 for i, q in enumerate(queries)])
    assert recall >= 0.95


def test_removed_ids_leave_both_index_kinds() -> None:
    x = _unit(3000)
    for threshold in (10_000, 1000):
        index = VectorIndex(32, ann_threshold=threshold)
        index.add(np.arange(3000, dtype=np.int64), x)
        index.remove(np.array([7], dtype=np.int64))
        assert 7 not in index.search(x[7], 5)[1] and len(index) == 2999


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
