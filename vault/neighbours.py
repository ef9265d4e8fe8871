"""The surroundings of search candidates: the memories written next to them, and the months a query names.

A conversation is stored one memory per turn, and a turn often only makes sense with
the one before it ("the new addition", "them", an answer to a question). Two memories
are **neighbours** when they were written one after the other (adjacent unit ids) by
the same writer through the same channel (``created_by``, ``source``), both short
memories (``WINDOW_CHARS``), at most ``THREAD_GAP`` apart: one thread of a conversation. Fusion lends a candidate
part of its neighbours' scores (vault/fusion.py), so the answer next to a matching
question is found too (docs/benchmarks.md, "Retrieval v3").

Scope: the units are read through the caller's ``ItemFilter`` only. A neighbour the
caller may not read is absent, exactly as if it had been forgotten (unit ids are never
reassigned), so out-of-scope items never lend or withhold more than a deleted one would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vault.filters import ItemFilter
from vault.store import Store

# Turns of one conversation session are written within minutes; sessions days apart.
THREAD_GAP = timedelta(hours=1)
# A memory longer than this stands on its own: it neither lends nor borrows. Conversation turns are
# short (LoCoMo: at most 518 characters, median 170); imported abstracts are not (SciFact: 1st percentile
# 528), and lending between them cost SciFact 0.03 nDCG@10.
WINDOW_CHARS = 600
# The window reaches two memories each side; its candidates' own neighbours are read too.
REACH = 2
_SPAN = REACH + 1

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")
# A capitalised month name ("in June", "May 2023"): lower-case "may" is the verb.
_MONTH = re.compile(r"\b(" + "|".join(_MONTHS) + r")\b(?:\s+(\d{4}))?")


@dataclass(frozen=True, slots=True)
class Surroundings:
    """For fusion: each unit's neighbours (``-2, -1, +1, +2``, None where there is none) and the units of a named month."""

    neighbours: dict[int, tuple[int | None, int | None, int | None, int | None]] = field(default_factory=dict)
    dated: frozenset[int] = frozenset()


NONE = Surroundings()


def query_months(text: str) -> list[tuple[int, int | None]]:
    """The months a query names, as (month, year or None): "What did Mel do in June 2023?" → [(6, 2023)]."""
    out = []
    for m in _MONTH.finditer(text):
        month = _MONTHS.index(m.group(1)) + 1
        out.append((month, int(m.group(2)) if m.group(2) else None))
    return list(dict.fromkeys(out))


def surroundings(store: Store, scope: ItemFilter, candidates: Iterable[int], query: str) -> Surroundings:
    """Read the candidates and the units up to ``REACH + 1`` ids either side (inside ``scope``) in one query."""
    months = query_months(query)
    wanted = sorted({c + d for c in candidates for d in range(-_SPAN, _SPAN + 1)})
    if not wanted:
        return NONE
    where, params = scope.where("i")
    # Only memories can be neighbours; the writer and the time (seconds) are compared as SQL gives them.
    # CROSS JOIN keeps the units of the id list as the outer loop (vault/search.py ``search`` says why).
    rows = store.query(
        f"""SELECT u.uid, i.kind = 'memory' AND length(u.text) <= {WINDOW_CHARS}, i.created_by || char(0) || i.source, unixepoch(i.created_at),
        {"coalesce(i.valid_from, i.created_at), u.text" if months else "NULL, NULL"} FROM units u CROSS JOIN items i ON i.id = u.item_id
        WHERE u.uid IN (SELECT value FROM json_each(?)) AND {where}""",
        [json.dumps(wanted), *params],
    )
    seen: dict[int, tuple[str, int]] = {}
    dated = set()
    gap = THREAD_GAP.total_seconds()
    for uid, memory, writer, at, when, text in rows:
        if memory and at is not None:
            seen[int(uid)] = (str(writer), int(at))
        if months and _in_months(str(when), str(text), months):
            dated.add(int(uid))

    def linked(a: int, b: int) -> bool:
        ra, rb = seen.get(a), seen.get(b)
        return ra is not None and rb is not None and ra[0] == rb[0] and abs(ra[1] - rb[1]) <= gap

    neighbours: dict[int, tuple[int | None, int | None, int | None, int | None]] = {}
    for u in seen:
        p1 = u - 1 if linked(u, u - 1) else None
        n1 = u + 1 if linked(u, u + 1) else None
        p2 = u - 2 if p1 is not None and linked(u - 1, u - 2) else None
        n2 = u + 2 if n1 is not None and linked(u + 1, u + 2) else None
        if p1 is not None or n1 is not None:
            neighbours[u] = (p2, p1, n1, n2)
    return Surroundings(neighbours, frozenset(dated))


def _in_months(when: str, text: str, months: list[tuple[int, int | None]]) -> bool:
    """The memory's time falls in a named month, or its text names that month."""
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        at = None
    for month, year in months:
        if at is not None and at.month == month and (year is None or at.year == year):
            return True
        if re.search(r"\b" + _MONTHS[month - 1] + r"\b" + (rf"\W+(?:\d+\W+)?{year}\b" if year else ""), text):
            return True
    return False
