"""PrefEval explicit preferences: does a task surface the user's own stated preference?

    python -m bench prefeval --data ../shared/data/prefeval \
        --distractors ../shared/data/distractors/msc_personas_all.json

Every topic file's preferences are stored as preferences. Each question (a task
that never names its preference) is asked several ways, in the same run:
``plain`` is the ordinary hybrid search over the whole vault (with its BM25-only and
dense-only parts); ``mechanism`` is what the vault does for a task
(``VaultService.preferences_for(task=…)``, the MCP ``get_preferences`` and ``personalize``
paths: vault/pref_match.py ranks the preference profile on its own). Its ablations:
``profile_hybrid`` (the previous mechanism, a hybrid search restricted to preferences),
``profile_dense`` (the profile by plain cosine), ``+templates`` and ``+cues`` (each signal
of vault/pref_match.py alone), and ``+topics`` (life-domain tags from prototype phrases,
matched to the task's: measured, not kept).
Settings: no distractors; ~31k MSC persona statements stored as memories (the
realistic case: facts about a person); and the same statements stored as
preferences (adversarial: the profile itself is 60x larger).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CachedEmbedder, bench_vault, bulk_insert, emit, percentiles, real_embedder
from schemas.items import SearchQuery
from vault.filters import Clause, ItemFilter
from vault.pref_match import DEFAULT_MATCH, MatchSettings, rank_preferences, scores, task_texts
from vault.search import Retriever

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
VARIANTS = {
    "profile_dense": MatchSettings(templates=(), cue_bonus=0.0),
    "profile_+templates": MatchSettings(cue_bonus=0.0),
    "profile_+cues": MatchSettings(templates=()),
    "mechanism": DEFAULT_MATCH,
}


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return out


def _topic_weights(vecs: np.ndarray, protos: np.ndarray) -> np.ndarray:
    s = vecs @ protos.T
    e = np.exp((s - s.max(axis=-1, keepdims=True)) / TOPIC_TEMP)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def with_topics(r: Retriever, scope: ItemFilter, task: str, settings: MatchSettings, protos: np.ndarray) -> list[int]:
    """The +topics ablation: vault/pref_match.py's score plus TOPIC_BONUS x the task's and the unit's shared topic weight."""
    units = r.scoped_units(scope)
    assert units is not None
    emb = r.embedder()
    query = _unit(emb.encode(task_texts(task, settings)).mean(axis=0))
    shared = _topic_weights(units.vectors, protos) @ _topic_weights(emb.encode_query(task)[None, :], protos)[0]
    got = scores(query.astype(np.float32), units, settings) + TOPIC_BONUS * shared
    return [int(units.uids[i]) for i in np.argsort(-got, kind="stable")[:DEPTH]]


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
    return {
        "R@1": round(float(np.mean(r == 1)), 4),
        "R@5": round(float(np.mean((r >= 1) & (r <= 5))), 4),
        "R@10": round(float(np.mean((r >= 1) & (r <= 10))), 4),
        "MRR": round(float(np.mean(np.where(r >= 1, 1.0 / np.maximum(r, 1), 0.0))), 4),
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
        runs: dict[str, list[int]] = {
            k: []
            for k in ("plain_lexical", "plain_dense", "plain", "profile_hybrid", *VARIANTS, "profile_dense_+topics", "mechanism_+topics")
        }
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
            ranked_by["profile_dense_+topics"] = with_topics(r, profile, question, VARIANTS["profile_dense"], protos)
            ranked_by["mechanism_+topics"] = with_topics(r, profile, question, DEFAULT_MATCH, protos)
            for name, ranked in ranked_by.items():
                runs[name].append(ranked.index(target) + 1 if target in ranked else 0)
        size = len(r._ensure_index())
    out: dict[str, Any] = {"store_size": size, **{k: metrics(v) for k, v in runs.items()}, "mechanism_latency": percentiles(took)}
    plain5 = out["plain"]["R@5"]
    out["mechanism_over_plain_R@5"] = round(out["mechanism"]["R@5"] / plain5, 2) if plain5 else None
    dense5 = out["plain_dense"]["R@5"]
    out["mechanism_over_plain_dense_R@5"] = round(out["mechanism"]["R@5"] / dense5, 2) if dense5 else None
    return out


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench prefeval", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--distractors", type=Path)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    items = load(args.data)
    embedder = CachedEmbedder(real_embedder())
    result: dict[str, Any] = {"benchmark": "prefeval", "questions": len(items), "no_distractors": setting(items, [], "memory", embedder)}
    if args.distractors:
        extra = personas(args.distractors)
        result["distractors"] = len(extra)
        result["distractors_as_memories"] = setting(items, extra, "memory", embedder)
        result["distractors_as_preferences"] = setting(items, extra, "preference", embedder)
    embedder.persist()
    emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
