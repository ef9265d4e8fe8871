"""Reader connections beside one writer (vault/readers.py): reads run while the writer is busy, search the
writer's one in-memory index, refuse item writes, and leave one valid audit chain."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from schemas.items import MemoryIn, SearchQuery
from vault import OWNER, Principal, Settings, VaultService, index, open_vault
from vault.embed import load_embedder
from vault.errors import VaultError
from vault.readers import ReaderPool
from vault.search import Retriever

PASSPHRASE = "correct horse battery staple"

FACTS = [
    "My sister Ana lives in Porto and works as an architect",
    "I am allergic to peanuts and shellfish",
    "I drive a blue Toyota Corolla from 2015",
    "I run 10 km every Sunday morning along the river",
]


@pytest.fixture
def filled(vault: VaultService) -> VaultService:
    for text in FACTS:
        vault.remember(OWNER, MemoryIn(text=text))
    vault.search(OWNER, SearchQuery(text="warm up", mode="dense"))  # the writer holds its index from here on
    return vault


@pytest.fixture
def lock() -> threading.Lock:
    return threading.Lock()


@pytest.fixture
def reader(filled: VaultService, lock: threading.Lock) -> Iterator[VaultService]:
    svc = filled.reader(lock)
    yield svc
    svc.close()


@pytest.fixture
def app(filled: VaultService) -> Principal:
    created = filled.add_app(OWNER, "notes")
    filled.grant(OWNER, "notes", ["search:memories", "read:memories", "write:memories"], purpose="test")
    return filled.authenticate_app(created.token)


def _texts(page: object) -> list[str]:
    return [h.text for h in page.hits]  # type: ignore[attr-defined]


def test_a_reader_answers_while_the_writer_is_busy(reader: VaultService, lock: threading.Lock, app: Principal) -> None:
    with lock, ThreadPoolExecutor(1) as pool:
        # Taken as a write in progress would take it; the search must not need it.
        found = pool.submit(reader.search, app, SearchQuery(text="peanut allergy")).result(timeout=60)
    assert _texts(found)[0] == "I am allergic to peanuts and shellfish"


def test_a_reader_ranks_exactly_as_the_writer_with_the_writers_index(
    filled: VaultService, reader: VaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []
    built = index.VectorIndex.__init__

    def counting(self: index.VectorIndex, *args: object, **kwargs: object) -> None:
        made.append(self)
        built(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(index.VectorIndex, "__init__", counting)
    for mode in ("dense", "hybrid"):
        query = SearchQuery(text="where does my sister live", mode=mode)
        assert reader.search(OWNER, query).hits == filled.search(OWNER, query).hits
    assert made == []  # no index of its own: the writer's is searched


def test_a_reader_finds_what_the_writer_wrote_just_before(filled: VaultService, reader: VaultService) -> None:
    filled.remember(OWNER, MemoryIn(text="The harbour lantern is made of copper"))
    found = reader.search(OWNER, SearchQuery(text="what is the harbour lantern made of", mode="dense"))
    assert _texts(found)[0] == "The harbour lantern is made of copper"


def test_a_reader_follows_another_process_write_once_the_writer_is_free(
    filled: VaultService, reader: VaultService, settings: Settings
) -> None:
    with open_vault(settings, PASSPHRASE) as other:  # another `ctxvault mcp`, say
        other.remember(OWNER, MemoryIn(text="My violin teacher is called Ines"))
    found = reader.search(OWNER, SearchQuery(text="who teaches me the violin", mode="dense"))
    assert _texts(found)[0] == "My violin teacher is called Ines"


def test_a_reader_refuses_to_change_items_and_leaves_nothing_behind(filled: VaultService, reader: VaultService) -> None:
    before = filled.list_items(OWNER).total
    item = filled.list_items(OWNER).items[0].id
    with pytest.raises(VaultError):
        reader.remember(OWNER, MemoryIn(text="Written to the wrong connection"))
    with pytest.raises(VaultError):
        reader.forget(OWNER, item)
    assert filled.list_items(OWNER).total == before
    assert filled.get_item(OWNER, item).id == item


def test_readers_and_the_writer_append_one_valid_audit_chain(filled: VaultService, lock: threading.Lock, app: Principal) -> None:
    pool = ReaderPool(filled, lock, size=2)
    searches, writes = 12, 6

    def search(n: int) -> int:
        with pool.reading() as svc:
            return len(svc.search(app, SearchQuery(text=f"sister {n}")).hits)

    def write(n: int) -> str:
        with lock:
            return filled.remember(app, MemoryIn(text=f"Load note number {n} about a walnut orchard")).item.id

    def disclosed() -> int:
        return sum(e.detail.get("via") == "search" for e in filled.audit_entries(OWNER, event="disclose"))

    before = disclosed()
    with ThreadPoolExecutor(4) as run:
        jobs = [run.submit(search, n) for n in range(searches)] + [run.submit(write, n) for n in range(writes)]
        for job in jobs:
            job.result(timeout=120)
    assert pool.opened == 2
    pool.close()
    assert filled.verify_audit(OWNER).entries == len(filled.audit_entries(OWNER))
    assert disclosed() == before + searches
    assert len(filled.audit_entries(OWNER, event="write")) >= writes


def test_a_readers_own_index_copy_never_exists(reader: VaultService) -> None:
    retriever = reader._retriever
    assert isinstance(retriever, Retriever)
    reader.search(OWNER, SearchQuery(text="car", mode="dense"))
    assert retriever._index is None  # held only for the length of a ranking


def test_the_shared_embedder_encodes_queries_from_many_threads_as_from_one() -> None:
    """Readers share the process's embedder (one ONNX session, one tokenizer): concurrent queries get their own vectors."""
    embedder = load_embedder(Settings(home=Path("unused")))
    queries = [f"{fact} ({n})" for n in range(6) for fact in FACTS]
    alone = [embedder.encode_query(q) for q in queries]
    with ThreadPoolExecutor(4) as run:
        together = list(run.map(embedder.encode_query, queries))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))


def test_every_call_the_server_sends_to_readers_works_on_a_reader(filled: VaultService, reader: VaultService, app: Principal) -> None:
    """The read tools, resources and prompt of mcp_server/server.py, and the HTTP door's checks, on a reader connection."""
    filled.set_preference(OWNER, "diet", "vegetarian")
    filled.grant(OWNER, "notes", ["read:preferences"], purpose="test")
    item = filled.list_items(OWNER).items[0].id
    token = filled.rotate_app_token(OWNER, "notes").token
    asked = filled.request_access(app, ["read:documents"], "to read my notes")
    assert reader.search(app, SearchQuery(text="sister")).hits
    assert reader.get_item(app, item, versions=True).id == item
    assert reader.preferences_for(app, keys=["diet"]).preferences
    task = "cook a vegetarian dinner"
    assert reader.preferences_for(app, task=task) == filled.preferences_for(app, task=task)
    assert reader.task_context(app, task) == filled.task_context(app, task)
    assert reader.profile(app).spaces
    assert reader.access_report(app).scopes
    assert reader.consent_status(app, asked.id).id == asked.id
    assert reader.authenticate_bearer(token, "http://127.0.0.1:8765/mcp", "127.0.0.1") == app
    assert reader.step_up(app, "search_context") is None
    assert reader.principal_for_app("notes") == app
    assert filled.verify_audit(OWNER).entries > 0
