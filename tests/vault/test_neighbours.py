"""The neighbour window and named months (vault/neighbours.py, vault/fusion.py): each fails without its signal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.items import SearchQuery
from vault import OWNER, Principal, VaultService
from vault.filters import Clause, ItemFilter
from vault.fusion import DEFAULT_FUSION, fuse
from vault.index import VectorIndex
from vault.neighbours import Surroundings, query_months, surroundings
from vault.portable.records import ImportBatch, ItemRecord

NO_WINDOW = replace(DEFAULT_FUSION, neighbour_weight=0.0, second_weight=0.0)
NO_MONTHS = replace(DEFAULT_FUSION, month_boost=0.0)

SESSION = datetime(2023, 5, 8, 14, 0, tzinfo=UTC)
TURNS = [
    'Melanie said, "What have you been researching lately, Caroline?"',
    'Caroline said, "Adoption agencies. I want to give a child a loving home."',
    'Melanie said, "That is wonderful news, the kids will be lucky."',
]
ANSWER = TURNS[1]
OTHERS = [
    "Caroline enjoyed the open-air concert in the park",
    "Caroline bought new running shoes for the marathon",
    "I was researching cheap flights to Lisbon for the summer",
    "My colleague is researching battery chemistry at the lab",
    "Caroline said the bakery on the corner makes great bread",
    "The library has a quiet room for researching old newspapers",
    "Caroline painted the fence blue last weekend",
    "Researching family history turned up a great-aunt in Porto",
    "Caroline lost her keys at the train station",
    "We spent the evening researching recipes for the party",
]


def _import(vault: VaultService, owner: Principal, records: list[ItemRecord]) -> None:
    vault.import_items(owner, ImportBatch(format="bundle", source="test", records=tuple(records)))
    vault.reindex(owner)


def _conversation(vault: VaultService, owner: Principal, *, space_of_question: str = "personal") -> None:
    """The other memories, each a day apart (no thread), then one session of turns a minute apart."""
    records = [
        ItemRecord(id=None, kind="memory", text=t, space="personal", created_at=SESSION - timedelta(days=40 - n),
                   updated_at=SESSION - timedelta(days=40 - n))
        for n, t in enumerate(OTHERS)
    ]  # fmt: skip
    for n, t in enumerate(TURNS):
        at = SESSION + timedelta(minutes=n)
        space = space_of_question if n == 0 else "personal"
        records.append(ItemRecord(id=None, kind="memory", text=t, space=space, created_at=at, updated_at=at))
    _import(vault, owner, records)


def _top(vault: VaultService, text: str, limit: int = 3, **kw: object) -> list[str]:
    return [h.text for h in vault.search(OWNER, SearchQuery(text=text, limit=limit, **kw)).hits]


def test_an_answer_is_found_through_the_turn_before_it(vault: VaultService, owner: Principal) -> None:
    _conversation(vault, owner)
    question = "What has Caroline been researching?"
    assert ANSWER in _top(vault, question)
    vault._retriever.fusion = NO_WINDOW
    assert ANSWER not in _top(vault, question)


def test_a_neighbour_out_of_scope_lends_nothing(vault: VaultService, owner: Principal) -> None:
    """The question turn in another space: a search of "personal" reads the answer as if the question had been forgotten."""
    _conversation(vault, owner, space_of_question="work")
    uid = {str(r[1]): int(r[0]) for r in vault.store.query("SELECT uid, text FROM units")}
    answer, question = uid[ANSWER], uid[TURNS[0]]
    everything = surroundings(vault.store, ItemFilter(), [answer], "What has Caroline been researching?")
    assert everything.neighbours[answer][1] == question
    personal = ItemFilter(request=Clause(spaces=frozenset({"personal"})))
    scoped = surroundings(vault.store, personal, [answer], "What has Caroline been researching?")
    assert scoped.neighbours[answer][1] is None  # no neighbour before it: the hidden turn lends nothing
    assert question not in scoped.neighbours
    assert scoped.neighbours[answer][2] == uid[TURNS[2]]  # the visible turn after it still does


def test_neighbours_are_one_thread_only(vault: VaultService, owner: Principal) -> None:
    """The same turns written a day apart are no conversation: nothing is lent."""
    records = [
        ItemRecord(id=None, kind="memory", text=t, space="personal", created_at=SESSION - timedelta(days=40 - n),
                   updated_at=SESSION - timedelta(days=40 - n))
        for n, t in enumerate(OTHERS + TURNS)
    ]  # fmt: skip
    _import(vault, owner, records)
    assert ANSWER not in _top(vault, "What has Caroline been researching?")


def test_a_named_month_ranks_the_memories_of_that_month_first(vault: VaultService, owner: Principal) -> None:
    june, august = datetime(2023, 6, 10, tzinfo=UTC), datetime(2023, 8, 20, tzinfo=UTC)
    texts = {"We went for a hike in the hills": august, "We went for a walk by the lake": june, "The car needs new tyres": august}
    _import(vault, owner, [
        ItemRecord(id=None, kind="memory", text=t, space="personal", created_at=at, updated_at=at) for t, at in texts.items()
    ])  # fmt: skip
    question = "Where did we go for a walk or a hike in June?"
    plain = _top(vault, question, limit=2)
    vault._retriever.fusion = NO_MONTHS
    assert _top(vault, question, limit=1) == ["We went for a hike in the hills"]
    vault._retriever.fusion = DEFAULT_FUSION
    assert plain[0] == "We went for a walk by the lake"


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("What did Melanie do in June 2023?", [(6, 2023)]),
        ("Did they meet in May or in July?", [(5, None), (7, None)]),
        ("What may Caroline paint next?", []),  # the verb, not the month
        ("When did she move?", []),
    ],
)
def test_query_months(text: str, months: list[tuple[int, int | None]]) -> None:
    assert query_months(text) == months


def test_fusion_lends_a_neighbour_its_share_and_brings_it_in() -> None:
    index = VectorIndex(4, 50_000)
    vecs = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index.add(np.array([1, 2, 3, 4], dtype=np.int64), vecs)
    q = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    dense = [(1, float(vecs[0] @ q)), (4, 0.0)]
    lexical = [(1, 3.0)]
    # 2 follows 1 in its thread (their vectors alike: cosine 0.71); 3 follows 2 and is like neither.
    around = Surroundings({1: (None, None, 2, 3), 2: (None, 1, 3, None), 3: (1, 2, None, None)})
    plain = dict(fuse(NO_WINDOW, q, index, dense, lexical, around=lambda top: around))
    assert set(plain) == {1, 4}
    windowed = dict(fuse(DEFAULT_FUSION, q, index, dense, lexical, around=lambda top: around))
    assert windowed[2] == pytest.approx(DEFAULT_FUSION.neighbour_weight * plain[1])
    assert windowed[2] > windowed[4]  # the turn after a match outranks an unrelated candidate
    assert windowed[1] == pytest.approx(plain[1])  # 2 scored 0 and 3 is unrelated: nothing lent to 1
    assert 3 not in windowed  # two away from a candidate: lends, is not brought in
    # Neighbours that are not alike lend nothing: memories imported together are no conversation.
    strict = dict(fuse(replace(DEFAULT_FUSION, related_cosine=0.9), q, index, dense, lexical, around=lambda top: around))
    assert strict.get(2, 0.0) == pytest.approx(0.0)


def test_long_memories_stand_on_their_own(vault: VaultService, owner: Principal) -> None:
    """Abstracts imported together are one writer's memories a minute apart, but no conversation."""
    long = ["Abstract on soil bacteria. " * 30, "Abstract on heart surgery. " * 30, "A short turn after them"]
    _import(vault, owner, [
        ItemRecord(id=None, kind="memory", text=t, space="personal", created_at=SESSION + timedelta(minutes=n),
                   updated_at=SESSION + timedelta(minutes=n))
        for n, t in enumerate(long)
    ])  # fmt: skip
    uids = [int(r[0]) for r in vault.store.query("SELECT uid FROM units ORDER BY uid")]
    assert surroundings(vault.store, ItemFilter(), uids, "soil").neighbours == {}
