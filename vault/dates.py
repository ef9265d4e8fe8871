"""Relative dates in a memory, resolved against the memory's own timestamp.

"We went camping last week", said on 2 July 2023, is about late June; a question
asks "when did they go camping in June?". At ingest the indexed text of a memory
gets the absolute dates its relative expressions mean, e.g.
``We went camping last week ⟨last week = the week of 19 June 2023⟩``. The item's own
text is never changed; only the unit text that FTS indexes (the embedder sees the text
without it).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "a couple": 2,
}  # fmt: skip
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")

_COUNT = r"(?P<n>\d{1,3}|a couple of|a couple|an|a|one|two|three|four|five|six|seven|eight|nine|ten)"
_PATTERN = re.compile(
    r"\b(?:"
    r"(?P<day>today|tonight|this (?:morning|afternoon|evening)|yesterday|last night|tomorrow)"
    rf"|(?P<ago>{_COUNT} (?P<unit>day|week|month|year)s? ago)"
    r"|(?P<rel>(?P<which>last|next|this) (?P<span>week|weekend|month|year|" + "|".join(_WEEKDAYS) + r"))"
    r")\b",
    re.IGNORECASE,
)
# The same expressions for ASCII text once lowercased: a case-sensitive pattern runs ~2.5x faster,
# and lowercasing ASCII keeps every position, word boundary and digit where it was.
_LOWER_PATTERN = re.compile(_PATTERN.pattern)
# Every expression holds one of these: a text without any cannot match.
_CUES = ("yesterday", "today", "tonight", "tomorrow", "last", "ago", "next", "this")
# At most this many expressions are resolved per memory: the context stays short.
MAX_RESOLVED = 4


def _day(d: date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def _month(year: int, month: int) -> str:
    return f"{_MONTHS[month - 1]} {year}"


def _shift_month(d: date, months: int) -> tuple[int, int]:
    index = d.year * 12 + (d.month - 1) + months
    return index // 12, index % 12 + 1


def _week_of(d: date) -> str:
    return f"the week of {_day(d - timedelta(days=d.weekday()))}"


def _weekend_of(d: date) -> str:
    saturday = d + timedelta(days=5 - d.weekday())
    return f"the weekend of {_day(saturday)}"


def resolve(match: re.Match[str], at: date) -> str | None:
    """The absolute date (or span) one matched expression means, said on ``at``; None past the calendar."""
    try:
        return _resolve(match, at)
    except OverflowError:  # "tomorrow" said on 31 December 9999 (an imported timestamp): no such date
        return None


def _resolve(match: re.Match[str], at: date) -> str | None:
    if word := match.group("day"):
        word = word.lower()
        if word == "yesterday" or word == "last night":
            return _day(at - timedelta(days=1))
        if word == "tomorrow":
            return _day(at + timedelta(days=1))
        return _day(at)
    if match.group("ago"):
        n = _NUMBERS.get(match.group("n").lower()) or int(match.group("n"))
        unit = match.group("unit").lower()
        if unit == "day":
            return _day(at - timedelta(days=n))
        if unit == "week":
            return _week_of(at - timedelta(weeks=n))
        if unit == "month":
            return _month(*_shift_month(at, -n))
        return str(at.year - n)
    which, span = match.group("which").lower(), match.group("span").lower()
    step = {"last": -1, "next": 1, "this": 0}[which]
    if span == "week":
        return _week_of(at + timedelta(weeks=step))
    if span == "weekend":
        return _weekend_of(at + timedelta(weeks=step)) if step else _weekend_of(at)
    if span == "month":
        return _month(*_shift_month(at, step))
    if span == "year":
        return str(at.year + step)
    target = _WEEKDAYS.index(span)
    if step < 0:  # the most recent such day before today
        back = (at.weekday() - target) % 7 or 7
        return _day(at - timedelta(days=back))
    if step > 0:  # the next such day after today
        ahead = (target - at.weekday()) % 7 or 7
        return _day(at + timedelta(days=ahead))
    return _day(at + timedelta(days=target - at.weekday()))  # this <weekday>: in the current week


# The context is set off with angle brackets that the FTS tokenizer treats as separators
# and that plain text practically never ends with, so the embedder can be given the text
# without it (``without_context``): on LoCoMo the dates helped BM25 but pulled the
# sentence vectors away from date-less questions (dense R@10 0.513 → 0.488).
OPEN, CLOSE = " \u27e8", "\u27e9"
_CONTEXT = re.compile(" \u27e8[^\u27e8\u27e9]* = [^\u27e8\u27e9]*\u27e9$")


def without_context(text: str) -> str:
    """``text`` without the date context ``date_context`` appended to it."""
    return _CONTEXT.sub("", text)


def date_context(text: str, at: datetime | date) -> str:
    """`` ⟨yesterday = 7 May 2023; …⟩`` for the relative dates in ``text``, or ``""`` when it has none."""
    low = text.lower()
    # Most memories hold none of the cues (_CUES): a few substring tests instead of the full pattern
    # (~15 µs a text), written out because a generator over the cues costs twice the tests.
    if not (
        "this" in low or "last" in low or "ago" in low or "next" in low
        or "today" in low or "tonight" in low or "tomorrow" in low or "yesterday" in low
    ):  # fmt: skip
        return ""
    day = at.date() if isinstance(at, datetime) else at
    found: list[str] = []
    for match in _LOWER_PATTERN.finditer(low) if text.isascii() else _PATTERN.finditer(text):
        resolved = resolve(match, day)
        entry = f"{match.group(0).lower()} = {resolved}"
        if resolved and entry not in found:
            found.append(entry)
        if len(found) == MAX_RESOLVED:
            break
    return f"{OPEN}{'; '.join(found)}{CLOSE}" if found else ""


__all__ = ["MAX_RESOLVED", "date_context", "resolve", "without_context"]


def aware(dt: datetime) -> datetime:
    """``dt`` with an offset: a naive instant is read as UTC; an offset it states is kept."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def instant(text: str) -> datetime:
    """An ISO 8601 instant as the vault stores it, aware (rows written before every record was aware may be naive)."""
    return aware(datetime.fromisoformat(text))
