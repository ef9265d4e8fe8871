"""Shared benchmark plumbing: a throwaway encrypted vault, bulk loading, a caching embedder, metrics."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vault import Settings, VaultService, init_vault
from vault.embed import Embedder, Progress, load_embedder
from vault.items import content_hash, insert_units, new_ids, next_uid, unit_text
from vault.search import Retriever
from vault.unlock import open_store, unlock_key

PASSPHRASE = "benchmark passphrase"
FAST_KDF = {"CTXVAULT_KDF_MEMORY_KIB": "8192", "CTXVAULT_KDF_ITERATIONS": "1", "CTXVAULT_KDF_LANES": "1"}


class CachedEmbedder:
    """Wraps the real embedder; a text seen before is not encoded again (distractors repeat per store)."""

    def __init__(self, inner: Embedder, disk: Path | None = None) -> None:
        self.inner = inner
        self.cache: dict[str, np.ndarray] = {}
        self.encoded = 0
        # Public benchmark text only: a vault never uses this cache.
        self.disk = disk or Path(tempfile.gettempdir()) / "ctxvault-bench-cache" / f"{inner.model_id.replace('/', '_')}.npz"
        if self.disk.exists() and not os.environ.get("CTXVAULT_BENCH_NO_CACHE"):
            with np.load(self.disk, allow_pickle=False) as z:
                self.cache = dict(zip(z["texts"].tolist(), z["vecs"], strict=True))

    def persist(self) -> None:
        if self.encoded:
            self.disk.parent.mkdir(parents=True, exist_ok=True)
            texts = list(self.cache)
            tmp = self.disk.with_name(f"{self.disk.stem}.{os.getpid()}.tmp.npz")
            np.savez(tmp, texts=np.array(texts), vecs=np.stack([self.cache[t] for t in texts]))
            os.replace(tmp, self.disk)  # benchmarks run side by side: readers never see half a file

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def backend(self) -> str:
        return self.inner.backend

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            vecs = self.inner.encode(todo, batch_size=batch_size)
            self.encoded += len(todo)
            for t, v in zip(todo, vecs, strict=True):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.inner.encode_query(text)

    def warm(self, texts: Sequence[str]) -> None:
        self.encode(texts)


@dataclass
class BenchVault:
    settings: Settings
    service: VaultService

    @property
    def retriever(self) -> Retriever:
        return self.service._retriever

    def close(self) -> None:
        self.service.close()


@contextmanager
def bench_vault(embedder: Embedder | None = None, ann_threshold: int | None = None) -> Iterator[BenchVault]:
    """A fresh encrypted vault in a temp dir (fast KDF: the KDF is not what is measured)."""
    with tempfile.TemporaryDirectory(prefix="ctxvault-bench-") as tmp:
        env = {**FAST_KDF, "CTXVAULT_HOME": tmp}
        if model := os.environ.get("CTXVAULT_MODEL"):
            env["CTXVAULT_MODEL"] = model  # a variant under test (#int8) is the vault's model too
        if ann_threshold is not None:
            env["CTXVAULT_ANN_THRESHOLD"] = str(ann_threshold)
        settings = Settings.from_env(env=env)
        init_vault(settings, PASSPHRASE)
        key = unlock_key(settings, passphrase=PASSPHRASE)
        store = open_store(settings, key)
        bv = BenchVault(settings, VaultService(store, settings, key, embedder=embedder))
        try:
            yield bv
        finally:
            bv.close()


def bulk_insert(
    bv: BenchVault,
    texts: Sequence[str],
    kind: str = "memory",
    created: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    at: Sequence[datetime | None] | None = None,
) -> list[int]:
    """Insert memories or preferences (items + units) in one transaction; returns their unit ids in order.

    ``at``: each memory's own time, as the vault resolves relative dates against it (vault/dates.py).
    """
    store = bv.retriever._store
    stamp = "2024-01-01T00:00:00+00:00"
    if at is not None and created is None:
        created = [a.isoformat() if a else stamp for a in at]
    ids = new_ids(len(texts))
    with store.transaction():
        store.executemany(
            "INSERT INTO items (id, kind, text, pref_key, created_at, updated_at, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (item_id, kind, text, keys[n] if keys else None, created[n] if created else stamp, created[n] if created else stamp,
                 content_hash(text))
                for n, (item_id, text) in enumerate(zip(ids, texts, strict=True))
            ],
        )  # fmt: skip
        first = next_uid(store)
        units = [
            (first + n, item_id, 0, unit := unit_text(kind, text, keys[n] if keys else None, at=at[n] if at else None), 0, len(unit))
            for n, (item_id, text) in enumerate(zip(ids, texts, strict=True))
        ]
        insert_units(store, units)
    return [first + n for n in range(len(ids))]


def real_embedder() -> Embedder:
    return load_embedder(Settings.from_env(home=Path("unused")))  # CTXVAULT_MODEL picks a variant


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    a = np.asarray(samples_s) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3)}  # fmt: skip


def emit(result: dict[str, object]) -> None:
    print(json.dumps(result, indent=2))


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        t, self.t0 = self.t0, time.perf_counter()
        return self.t0 - t
