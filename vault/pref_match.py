"""Preferences that apply to a task: the profile ranked by what would constrain the task.

A task ("recommend a restaurant in Tokyo") rarely shares a word with the preference that
constrains it ("I dislike seafood"), and a profile holds hundreds of statements, most of
them facts ("I have two sisters") that constrain nothing. Four signals, measured on PrefEval
(docs/benchmarks.md, "Preferences for a task"), rank the profile by meaning only (BM25 there
only adds noise):

- **Constraint-style query.** The task is encoded with its constraint templates ("I dislike
  <task>", "I avoid <task>"), and their normalised mean is matched against each preference's
  vector: a vector that sits among stated constraints on the task's subject, not among
  questions about it.
- **Constraint cues.** A preference that states a constraint or a choice ("avoid", "dislike",
  "prefer", "only", "allergic", "can't stand"...) gets a fixed bonus, and one that only
  negates ("don't", "never", "not") half of it: it is what a task has to respect, where a
  neutral fact ("I've never been to Chicago") is only background.
- **Hub discount.** Some statements sit close to every request ("I prefer things that are
  simple and practical") and would top any ranking. Each preference loses a share of its mean
  cosine to its nearest generic tasks (TASK_BANK, everyday requests written by hand, not
  taken from any benchmark): the CSLS correction for hubness, with the bank standing in for
  the tasks the vault will see.
- **Feedback.** The query moves towards the mean of its first five preferences (weight 0.3,
  Rocchio's pseudo-relevance feedback) and the profile is scored again: a constraint worded
  like the ones the task surely touches rises with them.

Topic tags, facet expansion of the task and word-level matching were measured and not kept
(the benchmark page gives the figures).

Nothing is stored: the vectors are the index's, the cues come from the text and the bank's
vectors are encoded once per process, so imports, edits and repairs need no extra step.
Cost per task: one batch of two short encodings and two products over the profile's vectors;
cues and hub discounts are computed once per version of the profile, and the bank once per
process (about 1 s on a loaded 2-core machine, on the first task only).
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vault.embed import Embedder
from vault.errors import EmbedderUnavailable
from vault.filters import ItemFilter
from vault.search import Retriever, ScopedUnits

TEMPLATES = ("I dislike {task}", "I avoid {task}")
CUE_BONUS = 0.2
HUB_WEIGHT = 0.25
HUB_NEIGHBOURS = 5
FEEDBACK_DEPTH = 5
FEEDBACK_WEIGHT = 0.3

# A constraint or a choice: the full bonus.
CUES = re.compile(
    r"\b(avoid\w*|dislike\w*|hate[sd]?|refuse\w*|aversion|not a fan|no interest|not interested|uninterested|rather not|"
    r"allerg\w+|intoleran\w*|phobia|afraid of|fear of|strictly|exclusively|only|prefer\w*|can'?t stand|cannot stand|"
    r"despise|detest|loathe|must|need to|sensitive to|vegan|vegetarian)\b",
    re.IGNORECASE,
)
# A bare negation ("I don't drive", "I never watch horror"): half the bonus, as it is as often a fact.
NEGATIONS = re.compile(r"\b(can'?t|cannot|can not|won'?t|will not|don'?t|do not|never|not)\b", re.IGNORECASE)

# Everyday requests of an assistant's user, for the hub discount: many domains, generic wording.
_BANK_NOUNS = (
    "restaurants", "dishes to try", "TV shows", "movies", "video games", "board games", "books", "outfits", "shoes",
    "makeup products", "skincare products", "workouts", "sports", "cars", "SUVs", "motorcycles", "pets", "dog breeds",
    "travel destinations", "things to do on vacation", "hotels", "tours", "museums", "ways to learn", "online courses",
    "study methods", "recipes", "gifts", "hobbies", "music", "podcasts", "apps", "phones", "laptops", "furniture",
    "plants for my garden", "weekend activities", "date ideas", "party ideas", "jobs",
)  # fmt: skip
_BANK_FORMS = ("Can you recommend some {n} for me?", "What are the best {n} this year?", "I'm looking for {n}. Any suggestions?")
TASK_BANK = tuple(form.format(n=n) for n in _BANK_NOUNS for form in _BANK_FORMS)


@dataclass(frozen=True)
class MatchSettings:
    """How a task is matched to the profile (the defaults are what the vault uses; bench/ varies them)."""

    templates: tuple[str, ...] = TEMPLATES
    cue_bonus: float = CUE_BONUS
    cues: re.Pattern[str] = CUES
    negations: re.Pattern[str] | None = NEGATIONS
    hub_weight: float = HUB_WEIGHT
    hub_neighbours: int = HUB_NEIGHBOURS
    feedback_depth: int = FEEDBACK_DEPTH
    feedback_weight: float = FEEDBACK_WEIGHT


DEFAULT_MATCH = MatchSettings()

_PRIORS: weakref.WeakKeyDictionary[ScopedUnits, dict[tuple[object, ...], NDArray[np.float32]]] = weakref.WeakKeyDictionary()
_BANKS: dict[str, NDArray[np.float32]] = {}  # public fixed text, never written anywhere
_LOCK = threading.Lock()


def constraint_cues(texts: tuple[str, ...] | list[str], settings: MatchSettings = DEFAULT_MATCH) -> NDArray[np.float32]:
    """1.0 for each text that states a constraint or a choice, 0.5 for a bare negation, else 0.0."""
    out = [1.0 if settings.cues.search(t) else 0.5 if settings.negations and settings.negations.search(t) else 0.0 for t in texts]
    return np.array(out, dtype=np.float32)


def hub_scores(vectors: NDArray[np.float32], bank: NDArray[np.float32], neighbours: int = HUB_NEIGHBOURS) -> NDArray[np.float32]:
    """Each vector's mean cosine to its ``neighbours`` nearest bank tasks (how much of a hub it is)."""
    if len(vectors) == 0 or len(bank) == 0:
        return np.zeros(len(vectors), dtype=np.float32)
    k = min(neighbours, len(bank))
    sims = bank @ vectors.T
    out: NDArray[np.float32] = -np.partition(-sims, k - 1, axis=0)[:k].mean(axis=0)
    return out.astype(np.float32)


def task_bank(embedder: Embedder) -> NDArray[np.float32]:
    """TASK_BANK's vectors, encoded once per process on the query session (one thread, no bulk session
    to build: the unlock agent encodes them before it forks, cli/agent.py, so a command's child has them)."""
    with _LOCK:
        vecs = _BANKS.get(embedder.model_id)
        if vecs is None:
            vecs = _BANKS[embedder.model_id] = np.stack([embedder.encode_query(t) for t in TASK_BANK])
        return vecs


def task_texts(task: str, settings: MatchSettings = DEFAULT_MATCH) -> list[str]:
    """The texts encoded for a task: its constraint templates, or the task itself when there are none."""
    text = task.strip()
    if not settings.templates:
        return [text]
    return [t.format(task=text) for t in settings.templates]


def priors(units: ScopedUnits, embedder: Embedder, settings: MatchSettings = DEFAULT_MATCH) -> NDArray[np.float32]:
    """What each unit gets before the task is known: its cue bonus minus its hub discount (cached per profile)."""
    key = (settings.cue_bonus, settings.cues.pattern, settings.negations and settings.negations.pattern, settings.hub_weight,
           settings.hub_neighbours)  # fmt: skip
    cached = _PRIORS.setdefault(units, {})
    hit = cached.get(key)
    if hit is not None:
        return hit
    out = np.zeros(len(units.uids), dtype=np.float32)
    if settings.cue_bonus:
        out += np.float32(settings.cue_bonus) * constraint_cues(units.texts, settings)
    if settings.hub_weight:
        out -= np.float32(settings.hub_weight) * hub_scores(units.vectors, task_bank(embedder), settings.hub_neighbours)
    cached[key] = out
    return out


def scores(
    query: NDArray[np.float32], units: ScopedUnits, embedder: Embedder, settings: MatchSettings = DEFAULT_MATCH
) -> NDArray[np.float32]:
    """Each unit's score for the task vector ``query``: cosine plus cue bonus minus hub discount."""
    out: NDArray[np.float32] = units.vectors @ query
    if settings.cue_bonus or settings.hub_weight:
        out = out + priors(units, embedder, settings)
    return out


def rank_preferences(
    retriever: Retriever, task: str, scope: ItemFilter, limit: int, settings: MatchSettings = DEFAULT_MATCH
) -> list[tuple[int, float]] | None:
    """The ``limit`` best (unit id, score) inside ``scope`` for ``task``, best first.

    None when meaning cannot be used (no model, or vectors of another model): the caller
    falls back to ordinary search.
    """
    units = retriever.scoped_units(scope)
    if units is None:
        return None
    if len(units.uids) == 0:
        return []
    try:
        embedder = retriever.embedder()
        vecs = embedder.encode(task_texts(task, settings), batch_size=len(settings.templates) or 1)
        query = _unit(vecs.mean(axis=0))
        got = scores(query, units, embedder, settings)
    except EmbedderUnavailable:
        return None
    if settings.feedback_weight and settings.feedback_depth:
        first = _best(got, settings.feedback_depth)
        moved = query + np.float32(settings.feedback_weight) * _unit(units.vectors[first].mean(axis=0))
        got = scores(_unit(moved), units, embedder, settings)
    return [(int(units.uids[i]), float(got[i])) for i in _best(got, limit)]


def _best(got: NDArray[np.float32], limit: int) -> NDArray[np.intp]:
    """The indices of the ``limit`` highest scores, best first, without sorting the whole profile."""
    if limit >= len(got):
        return np.argsort(-got, kind="stable")
    part = np.argpartition(-got, limit - 1)[:limit]
    out: NDArray[np.intp] = part[np.argsort(-got[part], kind="stable")]
    return out


def _unit(v: NDArray[np.float32]) -> NDArray[np.float32]:
    out: NDArray[np.float32] = (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
    return out


__all__ = [
    "CUES", "CUE_BONUS", "DEFAULT_MATCH", "FEEDBACK_DEPTH", "FEEDBACK_WEIGHT", "HUB_NEIGHBOURS", "HUB_WEIGHT", "NEGATIONS",
    "TASK_BANK", "TEMPLATES", "MatchSettings", "constraint_cues", "hub_scores", "priors", "rank_preferences", "scores", "task_bank",
    "task_texts",
]  # fmt: skip
