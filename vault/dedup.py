"""When two memories are the same fact: the rule that lets `remember` merge a near-duplicate.

A near-duplicate by embedding is not the same fact: "Meeting with Bob on Monday" and
"... on Tuesday" score 0.99 with MiniLM, and so do "I like cats but not dogs" and
"I like dogs but not cats". Merging them would lose the older fact, so similarity only
*finds* candidates; a candidate is merged only when ``same_fact`` holds:

- both texts have the same words once case, punctuation, articles, a few fillers
  ("really", "actually", "just", …) and contractions ("I'm" = "I am", "don't" = "do not")
  are set aside, so every number, date, weekday, month, name, unit, code and negation
  of one is in the other, as often;
- in the same order, up to moving one phrase ("Every Sunday I run 10 km" = "I run 10 km
  every Sunday"), which is what tells "Alice owes Bob" from "Bob owes Alice".

It is deliberately lexical and strict: a rephrasing with other words ("I have a peanut
allergy") is kept as a second memory and reported as similar. bench/dedup.py measures
it on bench/data/dedup_pairs.json (precision of "merge" 1.0 there; docs/benchmarks.md).
"""

from __future__ import annotations

import re

# Words whose absence changes no fact. Deliberately few: prepositions, auxiliaries, tense,
# degree and quantity words all carry meaning ("to"/"from", "was"/"is", "too", "no").
FILLERS = frozenset({"a", "an", "the", "really", "actually", "just", "basically", "honestly", "literally", "also", "um", "uh", "erm"})

# A word (letters/digits, joined by inner . , : / - ' _ + @ so that 3.5, 10:30, 2026-05-12,
# order-1001 and 10,000 stay one token), a minus before a digit, or a symbol that is a fact
# (currency, percent, degree, a question mark).
_TOKEN = re.compile(r"[^\W_]+(?:[.,:/'\-_+@][^\W_]+)*|(?<![\w])-(?=\d)|[$€£¥%°?&#+]")
_NUMBER_UNIT = re.compile(r"(\d+(?:[.,]\d+)*)([^\W\d_]+)")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})
_NOT = {"won": "will", "can": "can", "ca": "can", "sha": "shall"}
_SUFFIXES = {"'m": "am", "'re": "are", "'ve": "have", "'ll": "will", "'d": "would"}
_IS = frozenset({"it", "that", "he", "she", "there", "what", "who", "where", "here", "how", "this"})
# Neighbours by embedding below this are not compared at all: the lexical rule is the judge,
# the floor only bounds the work (every same-fact pair of the labelled set scores >= 0.91).
MERGE_FLOOR = 0.85
# Longer texts are compared in order only (the phrase search is cubic); memories are a sentence or two.
_MAX_REORDERED = 64


def fact_words(text: str) -> tuple[str, ...]:
    """The words of ``text`` that carry its facts, in order: lowercased, contractions expanded, fillers dropped."""
    out: list[str] = []
    for raw in _TOKEN.findall(text.translate(_APOSTROPHES).lower()):
        out += _expand(raw)
    return tuple(w for w in out if w not in FILLERS)


def _expand(token: str) -> list[str]:
    if unit := _NUMBER_UNIT.fullmatch(token):  # "20mg" = "20 mg"
        return [unit[1], unit[2]]
    if token == "&":
        return ["and"]
    if token == "cannot":
        return ["can", "not"]
    if token == "let's":
        return ["let", "us"]
    if token.endswith("n't") and len(token) > 3:
        stem = token[:-3]
        return [_NOT.get(stem, stem), "not"]
    for suffix, word in _SUFFIXES.items():
        if token.endswith(suffix) and len(token) > len(suffix):
            return [token[: -len(suffix)], word]
    if token.endswith("'s") and token[:-2] in _IS:
        return [token[:-2], "is"]
    return [token]


def same_fact(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` state the same fact by the rule above (symmetric)."""
    x, y = fact_words(a), fact_words(b)
    if x == y:
        return bool(x)
    if len(x) != len(y) or sorted(x) != sorted(y) or len(x) > _MAX_REORDERED:
        return False
    return _one_phrase_moved(x, y)


def merges(existing: str, new: str, score: float) -> bool:
    """The shipped rule: ``new`` updates ``existing`` when they are neighbours by embedding and the same fact."""
    return score >= MERGE_FLOOR and same_fact(existing, new)


def _one_phrase_moved(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
    """Whether ``y`` is ``x`` with one run of words moved: x = P A B S and y = P B A S."""
    n = len(x)
    prefix = 0
    while prefix < n and x[prefix] == y[prefix]:
        prefix += 1
    suffix = 0
    while suffix < n - prefix and x[n - 1 - suffix] == y[n - 1 - suffix]:
        suffix += 1
    # Any such move keeps some common prefix and suffix of its own, no longer than the longest ones.
    for start in range(prefix + 1):
        for end in range(max(start + 2, n - suffix), n + 1):
            mid_x, mid_y = x[start:end], y[start:end]
            if any(mid_y == mid_x[cut:] + mid_x[:cut] for cut in range(1, len(mid_x))):
                return True
    return False
