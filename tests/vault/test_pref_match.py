"""Preferences that apply to a task (vault/pref_match.py), with the real model in a real vault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from schemas.items import SearchQuery
from vault import OWNER, Settings, VaultService
from vault.embed import Embedder, load_embedder
from vault.filters import Clause, ItemFilter
from vault.model_files import export_onnx
from vault.pref_match import DEFAULT_MATCH, TASK_BANK, MatchSettings, constraint_cues, hub_scores, rank_preferences, task_texts
from vault.principal import Principal

# Facts about a person: a profile's background, which constrains no task.
FACTS = [
    "My sister lives in Lisbon", "I have two cats named Miso and Tofu", "My favourite colour is green", "I grew up near the sea",
    "I work as a nurse on night shifts", "I drive a blue hatchback", "My birthday is in March", "I play the piano on weekends",
    "I visited Japan last spring", "My partner loves cooking Italian food", "I ran a marathon in 2019", "I usually wake up at six",
    "I collect vintage postcards", "My brother is a chef in Paris", "I read science fiction novels", "We moved to a new flat in May",
    "I like the smell of fresh bread", "My son plays football at school", "I enjoy long walks by the river", "I speak French and Spanish",
    "I have a small garden with tomatoes", "My grandmother taught me to knit", "I watch cooking shows with my family",
    "I studied biology at university", "I take the train to work", "My dog is a golden retriever", "I love summer evenings on the terrace",
    "My friends meet for dinner on Fridays", "I had sushi for lunch yesterday", "I am saving for a trip to Peru",
]  # fmt: skip
# A task and the one preference that constrains it; none shares a content word with its task.
CASES = [
    ("Book a table at a steakhouse for Friday evening", "I never eat meat"),
    ("Plan my weekend hike in the Alps", "I avoid heights"),
    ("Pick a film for movie night", "I never watch anything scary"),
    ("Plan a dinner party menu", "I only eat plant-based food"),
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder(Settings(home=Path("unused")))


@pytest.fixture
def profile(vault: VaultService, embedder: Embedder) -> VaultService:
    """One profile: the facts and every case's constraint, under keys that say nothing."""
    for n, text in enumerate([*FACTS, *(pref for _, pref in CASES)]):
        vault.set_preference(OWNER, f"note-{n}", text)
    return vault


def _rank_of(found: list[str], want: str) -> int:
    return found.index(want) + 1 if want in found else 0


@pytest.mark.parametrize(("task", "pref"), CASES)
def test_a_task_surfaces_the_preference_that_constrains_it_among_facts(profile: VaultService, task: str, pref: str) -> None:
    found = [p.value for p in profile.preferences_for(OWNER, task=task, limit=5).preferences]
    assert pref in found, f"{pref!r} not in the top 5 for {task!r}: {found}"


def test_without_the_mechanism_plain_search_misses_them(profile: VaultService) -> None:
    """The bite of the test above: plain search over the profile puts most of these constraints below 3."""
    ranks = []
    for task, pref in CASES:
        hits = profile.search(OWNER, SearchQuery(text=task, kinds=["preference"], limit=3)).hits
        ranks.append(_rank_of([h.text.split(": ", 1)[1] for h in hits], pref))
    assert sum(r == 0 for r in ranks) >= 2, ranks


def _total_rank(profile: VaultService, settings: MatchSettings, cases: list[tuple[str, str]] = CASES) -> int:
    """The sum over ``cases`` of the rank of each task's constraint (0 when it is missing)."""
    retriever = profile._retriever
    scope = ItemFilter(request=Clause(kinds=frozenset({"preference"})))
    units = retriever.scoped_units(scope)
    assert units is not None
    by_uid = dict(zip(units.uids.tolist(), units.texts, strict=True))
    out = 0
    for task, pref in cases:
        ranked = rank_preferences(retriever, task, scope, len(by_uid), settings) or []
        out += _rank_of([by_uid[u].split(": ", 1)[1] for u, _ in ranked], pref)
    return out


def test_each_signal_left_out_ranks_lower_than_all_three(profile: VaultService) -> None:
    """Template query and constraint cues each help; together they rank every case first or second."""
    both = _total_rank(profile, DEFAULT_MATCH)
    assert both <= 2 * len(CASES)
    assert _total_rank(profile, MatchSettings(templates=())) > both
    assert _total_rank(profile, MatchSettings(cue_bonus=0.0)) > both


# Statements that sit close to any request: without the discount they crowd every task's top 5
# (their constraints' own ranks move too little on a profile this small to assert; docs/benchmarks.md).
HUBS = [
    "I prefer recommendations that are popular, well reviewed and good value",
    "I prefer plans and suggestions that are simple and practical",
    "I prefer things that are fun, relaxing and easy to book",
]


def test_the_hub_discount_lowers_generic_statements(profile: VaultService) -> None:
    for n, text in enumerate(HUBS):
        profile.set_preference(OWNER, f"note-h{n}", text)
    without = MatchSettings(hub_weight=0.0)
    hubs = [(task, hub) for task, _ in CASES for hub in HUBS]
    assert _total_rank(profile, DEFAULT_MATCH, hubs) > _total_rank(profile, without, hubs)


def test_hub_scores_rank_a_bank_like_vector_above_a_specific_one(embedder: Embedder) -> None:
    bank = embedder.encode(list(TASK_BANK))
    vecs = embedder.encode(["Can you recommend some good things for me?", "I am allergic to shellfish"])
    hub = hub_scores(vecs, bank)
    assert hub[0] > hub[1]
    assert hub_scores(vecs[:0], bank).shape == (0,)


def test_the_ranking_stays_inside_the_apps_grant(profile: VaultService) -> None:
    profile.set_preference(OWNER, "food-secret", "I never eat meat, which my family must not know", space="family")
    profile.add_app(OWNER, "planner")
    profile.grant(OWNER, "planner", ["search:preferences#space=personal", "read:preferences#space=personal"])
    app: Principal = profile.principal_for_app("planner")
    found = [p.item.space for p in profile.preferences_for(app, task="Book a table at a steakhouse", limit=50).preferences]
    assert found and set(found) == {"personal"}


def test_a_change_to_the_profile_is_seen_by_the_next_task(profile: VaultService) -> None:
    task = "Recommend a seafood restaurant in Lisbon"
    profile.set_preference(OWNER, "note-shellfish", "I can't eat shellfish")
    assert [p.value for p in profile.preferences_for(OWNER, task=task, limit=1).preferences] == ["I can't eat shellfish"]
    profile.unset_preference(OWNER, "note-shellfish")
    assert "I can't eat shellfish" not in [p.value for p in profile.preferences_for(OWNER, task=task, limit=5).preferences]


def test_constraint_cues_and_templates() -> None:
    cues = constraint_cues(
        ["I avoid heights", "I prefer tea", "I only wear black", "I can't stand jazz", "I don't drive", "I've never been to Chicago",
         "My sister lives in Lisbon", "I like tea"]
    )  # fmt: skip
    assert cues.tolist() == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.0, 0.0]
    assert task_texts("  plan a trip ") == ["I dislike plan a trip", "I avoid plan a trip"]
    assert task_texts("plan a trip", MatchSettings(templates=())) == ["plan a trip"]
    assert np.all(constraint_cues([]) == np.zeros(0))


def test_the_task_bank_is_the_bulk_encoders_vectors_and_the_agent_encodes_it_before_it_forks(embedder: Embedder) -> None:
    """The bank is encoded on the query session (no bulk session to build: ~1 s per process); the same vectors,
    up to int8's quantisation of activations per batch (min cosine 0.986 measured with the default int8 model)."""
    from cli import agent
    from vault import pref_match

    pref_match._BANKS.clear()
    bank = pref_match.task_bank(embedder)
    bulk = embedder.encode(list(pref_match.TASK_BANK))
    assert bank.shape == bulk.shape and float(np.min(np.sum(bank * bulk, axis=1))) > 0.97
    pref_match._BANKS.clear()
    export_onnx(Settings.from_env().model)  # warm_search loads only an ONNX encoder already made (made once, cached)
    agent.warm_search()  # what the unlock agent runs before it forks a command's child
    assert set(pref_match._BANKS) == {Settings.from_env().model}
