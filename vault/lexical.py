"""Lexical search pieces: query words, the FTS5 MATCH expression, snippets, BM25 constants."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)

# Function words that match nearly every conversational memory; BM25 gives them a
# little weight each, and across 10k items that noise outranks the one real match.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "s",
        "t",
        "don",
        "ve",
        "ll",
        "re",
        "d",
        "m",
    ]
)

# FTS5's bm25() constants, reused by the scope-local BM25 so both rank alike.
BM25_K1 = 1.2
BM25_B = 0.75
SCOPED_CANDIDATES = 1000


def query_terms(text: str) -> list[str]:
    """The words of a query that carry meaning (function words dropped unless nothing else is left)."""
    words = list(dict.fromkeys(_WORD.findall(text.lower())))
    content = [w for w in words if w not in STOPWORDS]
    return content or words


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression: every content word quoted (no operators from users), OR-ed."""
    return match_expression(query_terms(text))


def match_expression(words: list[str]) -> str | None:
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', "") + '"' for w in words)


# In a store of at least COMMON_TERM_UNITS / COMMON_TERM_FRACTION (40k) units, a term
# that matches more than 5% of them is left out of a store-wide lexical query when the
# query has rarer terms: its BM25 weight is small, but scoring its long posting list
# set the FTS tail. On 100k real sentences this cut FTS p95 from 15.6 to 11.9 ms with
# 0.98 of the same top 10 (docs/benchmarks.md). Smaller stores are never pruned.
COMMON_TERM_UNITS = 2000
COMMON_TERM_FRACTION = 0.05

# A query term held by at most this many units of the scope is rare: an exact code, name
# or number. Hybrid search ranks its lexical hits above every candidate that matches no
# query term (vault/fusion.py). 2 was the best of 1-3 on LoCoMo (docs/benchmarks.md).
RARE_TERM_POSTINGS = 2


def snippet(text: str, terms: list[str], width: int = 160) -> str:
    """A window of ``text`` around the first query term it contains, matches in [brackets]."""
    low = text.lower()
    hits = [p for p in (low.find(t) for t in terms) if p >= 0]
    start = max(0, min(hits) - width // 4) if hits and len(text) > width else 0
    window = text[start : start + width]
    if terms:
        pattern = re.compile(r"\b(" + "|".join(re.escape(t) for t in terms) + r")\w*", re.IGNORECASE)
        window = pattern.sub(lambda m: f"[{m.group(0)}]", window)
    return ("…" if start else "") + window + ("…" if start + width < len(text) else "")
