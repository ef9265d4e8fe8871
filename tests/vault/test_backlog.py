"""The embedding backlog: a write never embeds it, the background embedder does, and a killed one resumes.

The backlog is written the way an interrupted import leaves it: rows and FTS committed by another
connection, no vectors. The embedder is the real model, wrapped to count the texts it is given.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from schemas.items import MemoryIn, SearchQuery
from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, VaultService, backlog
from vault.embed import Embedder, Progress, load_embedder
from vault.items import new_id
from vault.portable.records import ImportBatch, ItemRecord
from vault.search import INLINE_EMBED
from vault.unlock import open_store, unlock_key

if TYPE_CHECKING:
    from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[2]
CTXVAULT = Path(sys.executable).with_name("ctxvault")
STAMP = "2025-01-01T00:00:00+00:00"
# A backlog memory the test looks for by meaning: its words are not in the query.
NEEDLE = "I restore old bicycles in my garage at the weekend"


class Counting:
    """The real embedder, counting the texts it encodes (a spy, not a stand-in)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.texts = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def backend(self) -> str:
        return self.inner.backend

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Progress | None = None) -> NDArray[np.float32]:
        self.texts += len(texts)
        return self.inner.encode(texts, batch_size, progress)

    def encode_query(self, text: str) -> NDArray[np.float32]:
        self.texts += 1
        return self.inner.encode_query(text)


@pytest.fixture(scope="module")
def real() -> Embedder:
    return load_embedder(Settings(home=Path("unused")))


def write_backlog(settings: Settings, count: int, needle: bool = True) -> None:
    """``count`` memories committed with their FTS rows and no vectors, by a connection that never embeds."""
    store = open_store(settings, unlock_key(settings, PASSPHRASE))
    texts = [f"backlog note number {n}" for n in range(count - int(needle))] + ([NEEDLE] if needle else [])
    ids = [new_id() for _ in texts]
    with store.transaction(bulk=True):
        store.conn.executemany(
            "INSERT INTO items (id, kind, text, space, tags, sensitivity, source, created_by, created_at, updated_at, content_hash, meta)"
            " VALUES (?, 'memory', ?, 'personal', '[]', 'low', 'test', 'owner', ?, ?, ?, '{}')",
            [(i, t, STAMP, STAMP, f"h{n}") for n, (i, t) in enumerate(zip(ids, texts, strict=True))],
        )
        store.conn.executemany(
            "INSERT INTO units (item_id, seq, text, start, end) VALUES (?, 0, ?, 0, ?)",
            [(i, t, len(t)) for i, t in zip(ids, texts, strict=True)],
        )
    store.close()


@pytest.fixture
def spied(settings: Settings, recovery_key: str, real: Embedder) -> Iterator[tuple[VaultService, Counting]]:
    """A vault with a few embedded memories, opened with the counting embedder (the backlog comes later)."""
    key = unlock_key(settings, PASSPHRASE)
    counting = Counting(real)
    svc = VaultService(open_store(settings, key), settings, key, embedder=counting)
    for text in ("I drive a blue Toyota Corolla", "My sister lives in Porto", "I am allergic to peanuts"):
        svc.remember(OWNER, MemoryIn(text=text))
    yield svc, counting
    svc.close()


def _texts(svc: VaultService, text: str, **kw: object) -> list[str]:
    return [h.text for h in svc.search(OWNER, SearchQuery(text=text, **kw)).hits]


def test_an_add_with_a_10k_backlog_embeds_only_its_own_text_and_is_found_at_once(
    spied: tuple[VaultService, Counting], settings: Settings
) -> None:
    svc, counting = spied
    write_backlog(settings, 10_000)
    assert svc._retriever.backlog() == (10_000, 10_000)
    counting.texts = 0
    added = svc.remember(OWNER, MemoryIn(text="The spare key is under the blue flower pot"))
    assert added.action == "added"
    assert counting.texts <= 2  # the dedup query and its own vector: never the backlog
    assert svc._retriever.backlog() == (10_000, 10_000)
    assert _texts(svc, "spare key flower pot", mode="lexical", limit=1) == [added.item.text]
    assert _texts(svc, "where is the extra house key hidden", mode="dense", limit=1) == [added.item.text]
    assert _texts(svc, "backlog note number 9876", mode="lexical", limit=1) == ["backlog note number 9876"]
    # A hybrid search does not embed the backlog either.
    counting.texts = 0
    assert _texts(svc, "bicycles garage", limit=1) == [NEEDLE]
    assert counting.texts == 1


def test_a_backlog_item_is_found_by_meaning_once_the_backlog_is_embedded(spied: tuple[VaultService, Counting], settings: Settings) -> None:
    svc, counting = spied
    write_backlog(settings, 300)
    added = svc.remember(OWNER, MemoryIn(text="The spare key is under the blue flower pot"))
    assert NEEDLE not in _texts(svc, "fixing up bikes is my hobby", mode="dense", limit=3)
    counting.texts = 0
    assert svc._retriever.embed_backlog() == 300
    assert counting.texts == 300
    assert svc._retriever.backlog() == (0, 0)
    assert _texts(svc, "fixing up bikes is my hobby", mode="dense", limit=1) == [NEEDLE]
    assert _texts(svc, "where is the extra house key hidden", mode="dense", limit=1) == [added.item.text]


def test_a_large_write_leaves_its_own_units_to_the_backlog_and_small_ones_are_embedded(spied: tuple[VaultService, Counting]) -> None:
    svc, counting = spied
    at = datetime(2025, 1, 1, tzinfo=UTC)
    few = tuple(
        ItemRecord(id=None, kind="memory", text=f"small import {n}", space="personal", created_at=at, updated_at=at) for n in range(3)
    )
    svc.import_items(OWNER, ImportBatch("bundle", "test", few))
    assert svc._retriever.backlog() == (0, 0)
    many = tuple(
        ItemRecord(id=None, kind="memory", text=f"large import {n}", space="personal", created_at=at, updated_at=at)
        for n in range(INLINE_EMBED + 1)
    )
    counting.texts = 0
    svc.import_items(OWNER, ImportBatch("bundle", "test", many))
    assert counting.texts == 0
    assert svc._retriever.backlog() == (INLINE_EMBED + 1, INLINE_EMBED + 1)
    assert svc.status(OWNER).waiting_items == INLINE_EMBED + 1
    assert svc.retrieval_stats(OWNER).waiting_units == INLINE_EMBED + 1


def test_the_background_embedder_encodes_nothing_while_a_request_is_served(
    spied: tuple[VaultService, Counting], settings: Settings
) -> None:
    svc, counting = spied
    write_backlog(settings, 40, needle=False)
    counting.texts = 0
    seen: list[int] = []

    def paused() -> bool:
        seen.append(counting.texts)
        return len(seen) <= 3  # busy for the first three looks, then free

    assert svc._retriever.embed_backlog(paused=paused, batch=16) == 40
    assert seen[:4] == [0, 0, 0, 0]  # nothing was encoded before the request was done
    assert counting.texts == 40


def _vectors(settings: Settings) -> tuple[int, int, int]:
    """(items, units, vectors) as another process sees them."""
    store = open_store(settings, unlock_key(settings, PASSPHRASE))
    try:
        counts = [store.one(f"SELECT count(*) FROM {table}") for table in ("items", "units", "vectors")]
        items, units, vectors = (int(row[0]) if row else 0 for row in counts)
        return items, units, vectors
    finally:
        store.close()


def _unlock(env: dict[str, str]) -> int:
    done = subprocess.run([str(CTXVAULT), "unlock", "--timeout", "10m", "--json"], env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["pid"])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the agent's worker is found through /proc")
def test_killing_the_agent_mid_backlog_loses_nothing_and_the_next_session_resumes(
    settings: Settings, recovery_key: str, tmp_path: Path
) -> None:
    count = 1500
    write_backlog(settings, count, needle=False)
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "CTXVAULT_PASSPHRASE"} | {
        "CTXVAULT_HOME": str(settings.home), "CTXVAULT_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    agent = _unlock(env | {"CTXVAULT_PASSPHRASE": PASSPHRASE})  # unlock finds the backlog and the agent embeds it
    deadline = time.monotonic() + 240
    while (vectors := _vectors(settings)[2]) == 0:
        assert time.monotonic() < deadline, "the agent's embedder never started"
        time.sleep(0.2)
    workers = _children(agent)
    assert workers, "the embedder ran in no child of the agent"
    for pid in [agent, *workers]:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    items, units, vectors = _vectors(settings)
    assert (items, units) == (count, count)  # nothing written is lost
    assert 0 < vectors < count, "the kill came too late to be mid-backlog"
    _unlock(env | {"CTXVAULT_PASSPHRASE": PASSPHRASE})
    try:
        while _vectors(settings)[2] < count:
            assert time.monotonic() < deadline, "the next session did not finish the backlog"
            time.sleep(0.5)
    finally:
        subprocess.run([str(CTXVAULT), "lock"], env=env, capture_output=True, timeout=60)
    assert _vectors(settings) == (count, count, count)
    assert backlog.waiting(settings, unlock_key(settings, PASSPHRASE)) == (0, 0)
