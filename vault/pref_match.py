"""Preferences that apply to a task: the profile ranked by what would constrain the task.

A task ("recommend a restaurant in Tokyo") rarely shares a word with the preference that
constrains it ("I dislike seafood"), and a profile holds hundreds of statements, most of
them facts ("I have two sisters") that constrain nothing. Two signals, measured on PrefEval
(docs/benchmarks.md, "Preferences for a task"), rank the profile by meaning only (BM25 there
only adds noise):

- **Constraint-style query.** The task is encoded with its constraint templates ("I dislike
  <task>", "I avoid <task>"), and their normalised mean is matched against each preference's
  vector: a vector that sits among stated constraints on the task's subject, not among
  questions about it.
- **Constraint cues.** A preference that says what to avoid, refuse or keep to ("avoid",
  "dislike", "never", "only", "allergic", "can't"...) gets a fixed bonus: it is what a task
  has to respect, where a neutral fact is only background.

Topic tags (life domains from prototype phrases, matched to the task's) were measured and
not kept: they did not move R@5 at any size, because the preferences a task competes with
are of its own topic.

Nothing is stored: the vectors are the index's and the cues come from the text, so imports,
edits and repairs need no extra step. Cost per task: one batch of three short encodings and
one product over the profile's vectors (cached per version of the profile).
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vault.errors import EmbedderUnavailable
from vault.filters import ItemFilter
from vault.search import Retriever, ScopedUnits

TEMPLATES = ("I dislike {task}", "I avoid {task}")
CUE_BONUS = 0.2

_CUES = re.compile(
    r"\b(avoid\w*|dislike\w*|hate|can'?t|cannot|can not|won'?t|will not|don'?t|do not|never|refuse\w*|aversion|"
    r"not a fan|no interest|rather not|allerg\w+|intoleran\w*|phobia|afraid of|strictly|exclusively|only)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class MatchSettings:
    """How a task is matched to the profile (the defaults are what the vault uses; bench/ varies them)."""

    templates: tuple[str, ...] = TEMPLATES
    cue_bonus: float = CUE_BONUS


DEFAULT_MATCH = MatchSettings()

_CUE_CACHE: weakref.WeakKeyDictionary[ScopedUnits, NDArray[np.float32]] = weakref.WeakKeyDictionary()


def constraint_cues(texts: tuple[str, ...] | list[str]) -> NDArray[np.float32]:
    """1.0 for each text that states a constraint (avoid, dislike, never, only, allergic...), else 0.0."""
    return np.array([1.0 if _CUES.search(t) else 0.0 for t in texts], dtype=np.float32)


def task_texts(task: str, settings: MatchSettings = DEFAULT_MATCH) -> list[str]:
    """The texts encoded for a task: its constraint templates, or the task itself when there are none."""
    text = task.strip()
    if not settings.templates:
        return [text]
    return [t.format(task=text) for t in settings.templates]


def scores(query: NDArray[np.float32], units: ScopedUnits, settings: MatchSettings = DEFAULT_MATCH) -> NDArray[np.float32]:
    """Each unit's score for the task vector ``query``: cosine plus the constraint bonus."""
    out: NDArray[np.float32] = units.vectors @ query
    if settings.cue_bonus:
        cues = _CUE_CACHE.get(units)
        if cues is None:
            cues = _CUE_CACHE[units] = constraint_cues(units.texts)
        out = out + np.float32(settings.cue_bonus) * cues
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
        vecs = retriever.embedder().encode(task_texts(task, settings), batch_size=len(settings.templates) or 1)
    except EmbedderUnavailable:
        return None
    mean = vecs.mean(axis=0)
    query = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    got = scores(query, units, settings)
    if limit < len(got):  # the top ``limit`` without sorting the whole profile
        part = np.argpartition(-got, limit - 1)[:limit]
        top = part[np.argsort(-got[part], kind="stable")]
    else:
        top = np.argsort(-got, kind="stable")
    return [(int(units.uids[i]), float(got[i])) for i in top]


__all__ = ["CUE_BONUS", "DEFAULT_MATCH", "TEMPLATES", "MatchSettings", "constraint_cues", "rank_preferences", "scores", "task_texts"]
