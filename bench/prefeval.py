"""PrefEval explicit preferences: does a task surface the user's own stated preference?

    python -m bench prefeval --data ../shared/data/prefeval \
        --distractors ../shared/data/distractors/msc_personas_all.json

Every topic file's preferences are stored as preferences. Each question (a task
that never names its preference) is asked several ways, in the same run:
``plain`` is the ordinary hybrid search over the whole vault (with its BM25-only and
dense-only parts); ``mechanism`` is what the vault does for a task
(``VaultService.preferences_for(task=…)``, the MCP ``get_preferences`` and ``personalize``
paths: vault/pref_match.py ranks the preference profile on its own). Its ablations:
``profile_hybrid`` (the first mechanism, a hybrid search restricted to preferences),
``previous_mechanism`` (templates + the first cue list, 2026-12-03), ``profile_dense`` (the
profile by plain cosine), ``profile_+templates`` / ``+cues`` / ``+hub`` / ``+feedback`` (each
signal of vault/pref_match.py alone), ``mechanism_-templates`` / ``-cues`` / ``-hub`` /
``-feedback`` (each one left out), and, measured and not kept (each added to the
mechanism's score before feedback): ``mechanism_+topics`` (life-domain tags from prototype
phrases, matched to the task's) and ``mechanism_+facets`` (the task also encoded once per
constraint facet, max-pooled).
Every figure is given for all questions and for two halves (alternate questions of each
topic file): a setting chosen on half A must also hold on half B.
Settings: no distractors; ~31k MSC persona statements stored as memories (the
realistic case: facts about a person); and the same statements stored as
preferences (adversarial: the profile itself is 60x larger).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CachedEmbedder, bench_vault, bulk_insert, emit, percentiles, real_embedder
from schemas.items import SearchQuery
from vault.filters import Clause, ItemFilter
from vault.pref_match import DEFAULT_MATCH, rank_preferences, scores, task_texts
from vault.search import Retriever, ScopedUnits

DEPTH = 50

# Life domains for the +topics ablation (written by hand, not from the data): a unit's topic
# weights are a softmax of its cosines to each domain's mean phrase vector.
TOPICS = {
    "food": ["restaurants and dining out", "food, dishes and cuisine", "cooking recipes and meals", "diet, allergies and what I eat"],
    "screen": ["movies and films", "TV shows and series", "theatre, plays and musicals", "documentaries and streaming"],
    "music": ["music, songs and concerts", "bands, artists and albums"],
    "reading": ["books, novels and reading", "podcasts and magazines"],
    "games": ["video games and consoles", "board games and tabletop games", "puzzles and game nights"],
    "fashion": ["clothing, outfits and fashion", "shoes, bags and accessories", "jewelry and style"],
    "beauty": ["makeup and cosmetics", "skincare and hair care", "perfume and fragrance"],
    "fitness": ["exercise, workouts and the gym", "sports and physical activities", "running, yoga and training"],
    "health": ["health, medicine and doctors", "sleep, stress and wellbeing"],
    "vehicles": ["cars, vehicles and driving", "buying a car", "motorcycles and bikes"],
    "travel": ["travel, trips and vacations", "tourist activities and sightseeing", "hotels and accommodation"],
    "outdoors": ["hiking, camping and nature", "outdoor adventures"],
    "pets": ["pets, dogs and cats", "pet food and pet care", "animals"],
    "learning": ["studying, learning and education", "courses, classes and school", "learning a language or a skill"],
    "work": ["work, career and job", "meetings, colleagues and office"],
    "tech": ["technology, phones and computers", "apps, software and gadgets"],
    "home": ["home, furniture and decor", "gardening and house chores"],
    "money": ["money, budget and finance", "shopping and purchases"],
    "social": ["family, friends and relationships", "parties, events and gifts"],
    "communication": ["how to write to me and tone", "language, formatting and length of answers"],
    "schedule": ["schedule, time of day and planning", "commute and daily routine"],
    "arts": ["art, museums and crafts", "photography and hobbies"],
}
TOPIC_TEMP = 0.05
TOPIC_BONUS = 0.1
# Constraint facets for the +facets ablation (the brief's list, written before measuring): the task is
# also encoded as "<task> Consider my <facet>.", and a unit keeps its best score over the facets.
FACETS = [
    "food, diet, allergies and ingredients", "physical ability, health conditions and injuries", "fears, phobias and discomforts",
    "ethics, animals and the environment", "budget, price and cost", "time, schedule and duration", "crowds, noise and social settings",
    "style, look and aesthetics", "materials and textures", "genre, theme and content", "accessibility and comfort",
    "religion and culture", "weather, climate and temperature", "technology and features", "size, space and quantity", "safety and risk",
]  # fmt: skip
# The cue list of the 2026-12-03 mechanism: no "prefer", every negation a full cue.
PREVIOUS_CUES = re.compile(
    r"\b(avoid\w*|dislike\w*|hate|can'?t|cannot|can not|won'?t|will not|don'?t|do not|never|refuse\w*|aversion|"
    r"not a fan|no interest|rather not|allerg\w+|intoleran\w*|phobia|afraid of|strictly|exclusively|only)\b",
    re.IGNORECASE,
)
NOTHING = replace(DEFAULT_MATCH, templates=(), cue_bonus=0.0, hub_weight=0.0, feedback_weight=0.0)
VARIANTS = {
    "previous_mechanism": replace(DEFAULT_MATCH, cues=PREVIOUS_CUES, negations=None, hub_weight=0.0, feedback_weight=0.0),
    "profile_dense": NOTHING,
    "profile_+templates": replace(NOTHING, templates=DEFAULT_MATCH.templates),
    "profile_+cues": replace(NOTHING, cue_bonus=DEFAULT_MATCH.cue_bonus),
    "profile_+hub": replace(NOTHING, hub_weight=DEFAULT_MATCH.hub_weight),
    "profile_+feedback": replace(NOTHING, feedback_weight=DEFAULT_MATCH.feedback_weight),
    "mechanism_-templates": replace(DEFAULT_MATCH, templates=()),
    "mechanism_-cues": replace(DEFAULT_MATCH, cue_bonus=0.0),
    "mechanism_-hub": replace(DEFAULT_MATCH, hub_weight=0.0),
    "mechanism_-feedback": replace(DEFAULT_MATCH, feedback_weight=0.0),
    "mechanism": DEFAULT_MATCH,
}
EXTRAS = ("mechanism_+topics", "mechanism_+facets")


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return out


def _topic_weights(vecs: np.ndarray, protos: np.ndarray) -> np.ndarray:
    s = vecs @ protos.T
    e = np.exp((s - s.max(axis=-1, keepdims=True)) / TOPIC_TEMP)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def _top(got: np.ndarray, units: ScopedUnits) -> list[int]:
    return [int(units.uids[i]) for i in np.argsort(-got, kind="stable")[:DEPTH]]


def extras(r: Retriever, units: ScopedUnits, task: str, protos: np.ndarray) -> dict[str, list[int]]:
    """The ablations measured and not kept, each on top of the mechanism's score before feedback."""
    emb = r.embedder()
    query = _unit(emb.encode(task_texts(task)).mean(axis=0)).astype(np.float32)
    base = scores(query, units, emb)
    shared = _topic_weights(units.vectors, protos) @ _topic_weights(emb.encode_query(task)[None, :], protos)[0]
    facets = _unit(emb.encode([f"{task} Consider my {f}." for f in FACETS]))
    faceted = np.maximum(units.vectors @ query, (units.vectors @ facets.T).max(axis=1)) + (base - units.vectors @ query)
    return {
        "mechanism_+topics": _top(base + TOPIC_BONUS * shared, units),
        "mechanism_+facets": _top(faceted, units),
    }


def load(data: Path) -> list[tuple[str, str, str]]:
    out = []
    for f in sorted(data.glob("*.json")):
        if f.name.startswith("filtered"):
            continue
        out += [(f.stem, x["preference"], x["question"]) for x in json.loads(f.read_text())]
    return out


def personas(path: Path) -> list[str]:
    raw = json.loads(path.read_text())
    return list(
        dict.fromkeys(s.strip() for split in raw.values() for dl in split for side in ("Speaker 1", "Speaker 2") for s in dl.get(side, []))
    )


def metrics(ranks: list[int]) -> dict[str, float]:
    r = np.array(ranks)
    hit5 = (r >= 1) & (r <= 5)
    half = np.arange(len(r)) % 2  # alternate questions: each topic file falls into both halves
    return {
        "R@1": round(float(np.mean(r == 1)), 4),
        "R@5": round(float(np.mean(hit5)), 4),
        "R@10": round(float(np.mean((r >= 1) & (r <= 10))), 4),
        "MRR": round(float(np.mean(np.where(r >= 1, 1.0 / np.maximum(r, 1), 0.0))), 4),
        "R@5_A": round(float(np.mean(hit5[half == 0])), 4),
        "R@5_B": round(float(np.mean(hit5[half == 1])), 4),
    }


def setting(items: list[tuple[str, str, str]], distractors: list[str], as_kind: str, embedder: CachedEmbedder) -> dict[str, Any]:
    prefs = list(dict.fromkeys(p for _, p, _ in items))
    with bench_vault(embedder) as bv:
        uids = bulk_insert(bv, prefs, kind="preference", keys=[f"p{n}" for n in range(len(prefs))])
        if distractors:
            keys = [f"d{n}" for n in range(len(distractors))] if as_kind == "preference" else None
            bulk_insert(bv, distractors, kind=as_kind, keys=keys)
        bv.retriever.sync()
        own = dict(zip(prefs, uids, strict=True))
        r = bv.retriever
        everything = ItemFilter()
        profile = ItemFilter(request=Clause(kinds=frozenset({"preference"})))
        protos = _unit(np.stack([embedder.encode(p).mean(axis=0) for p in TOPICS.values()]))
        runs: dict[str, list[int]] = {k: [] for k in ("plain_lexical", "plain_dense", "plain", "profile_hybrid", *VARIANTS, *EXTRAS)}
        took: list[float] = []
        for _, pref, question in items:
            target = own[pref]
            asks = {
                "plain_lexical": (SearchQuery(text=question, limit=DEPTH, mode="lexical"), everything),
                "plain_dense": (SearchQuery(text=question, limit=DEPTH, mode="dense"), everything),
                "plain": (SearchQuery(text=question, limit=DEPTH), everything),
                "profile_hybrid": (SearchQuery(text=question, limit=DEPTH, kinds=["preference"]), profile),
            }
            ranked_by = {name: [u for u, _ in r.rank(q, scope)] for name, (q, scope) in asks.items()}
            for name, settings in VARIANTS.items():
                t0 = time.perf_counter()
                ranked_by[name] = [u for u, _ in rank_preferences(r, question, profile, DEPTH, settings) or []]
                if name == "mechanism":
                    took.append(time.perf_counter() - t0)
            units = r.scoped_units(profile)
            assert units is not None
            ranked_by |= extras(r, units, question, protos)
            for name, ranked in ranked_by.items():
                runs[name].append(ranked.index(target) + 1 if target in ranked else 0)
        size = len(r._ensure_index())
    out: dict[str, Any] = {"store_size": size, **{k: metrics(v) for k, v in runs.items()}, "mechanism_latency": percentiles(took)}
    for base in ("plain", "plain_dense", "previous_mechanism"):  # baselines measured in the same run
        got = out[base]["R@5"]
        out[f"mechanism_over_{base}_R@5"] = round(out["mechanism"]["R@5"] / got, 2) if got else None
    return out


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench prefeval", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--distractors", type=Path)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    items = load(args.data)
    embedder = CachedEmbedder(real_embedder())
    load_before = os.getloadavg()
    result: dict[str, Any] = {"benchmark": "prefeval", "questions": len(items), "no_distractors": setting(items, [], "memory", embedder)}
    if args.distractors:
        extra = personas(args.distractors)
        result["distractors"] = len(extra)
        result["distractors_as_memories"] = setting(items, extra, "memory", embedder)
        result["distractors_as_preferences"] = setting(items, extra, "preference", embedder)
    embedder.persist()
    result["loadavg_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
