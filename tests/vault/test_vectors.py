from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import VaultService
from vault import vectors as vector_rows
from vault.items import new_ids

DIM = 12


def _units(vault: VaultService, n: int) -> list[int]:
    """``n`` new units (one memory each), inside the caller's transaction; their uids."""
    ids = new_ids(n)
    stamp = "2024-01-01T00:00:00+00:00"
    for item_id in ids:
        vault.store.execute(
            "INSERT INTO items (id, kind, text, created_at, updated_at, content_hash) VALUES (?, 'memory', ?, ?, ?, ?)",
            [item_id, f"memory {item_id}", stamp, stamp, f"sha256:{item_id}"],
        )
        vault.store.execute("INSERT INTO units (item_id, text) VALUES (?, ?)", [item_id, f"memory {item_id}"])
    return [int(r[0]) for r in vault.store.query("SELECT uid FROM units ORDER BY uid DESC LIMIT ?", [n])][::-1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.integers(1, 23),
    per_statement=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
    gone=st.sets(st.integers(0, 22), max_size=5),
)
def test_insert_stores_each_rows_float16_bytes_across_statements(
    vault: VaultService, monkeypatch: pytest.MonkeyPatch, count: int, per_statement: int, seed: int, gone: set[int]
) -> None:
    """One blob per statement is cut per row by substr: every row must get exactly its own vector,
    across statement boundaries; ``live_units_only`` skips units deleted meanwhile and nothing else."""
    monkeypatch.setattr(vector_rows, "ROWS_PER_STATEMENT", per_statement)
    vecs = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    vault.store.execute("BEGIN IMMEDIATE")
    try:  # rolled back: every example starts from the same empty vault
        model = vector_rows.model_id(vault.store, "test/model", DIM)
        assert model is not None
        uids = _units(vault, count)
        removed = [uids[n] for n in sorted(gone) if n < count]
        for uid in removed:
            vault.store.execute("DELETE FROM units WHERE uid = ?", [uid])
        before = vault.store.one("SELECT generation FROM index_state WHERE id = 1")[0]  # type: ignore[index]
        vector_rows.insert(vault.store, model, uids, vecs, live_units_only=True)
        after = vault.store.one("SELECT generation FROM index_state WHERE id = 1")[0]  # type: ignore[index]
        stored = {int(r[0]): bytes(r[1]) for r in vault.store.query("SELECT uid, vec FROM vectors WHERE model = ?", [model])}
    finally:
        vault.store.execute("ROLLBACK")
    assert after > before
    expected = {uid: vecs[n].astype("<f2").tobytes() for n, uid in enumerate(uids) if uid not in removed}
    assert stored == expected


def test_insert_refuses_ids_and_vectors_that_do_not_pair(vault: VaultService) -> None:
    with pytest.raises(ValueError, match="2 ids"):
        vector_rows.insert(vault.store, 1, [1, 2], np.zeros((3, DIM), np.float32))
