"""Relative dates resolved against a memory's own time (vault/dates.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.dates import MAX_RESOLVED, date_context, without_context

SAID = datetime(2023, 5, 8, 13, 56)  # a Monday


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("I went to a support group yesterday", " ⟨yesterday = 7 May 2023⟩"),
        ("We went camping last week", " ⟨last week = the week of 1 May 2023⟩"),
        ("Three days ago I painted a lake", " ⟨three days ago = 5 May 2023⟩"),
        ("a couple of years ago I ran a marathon", " ⟨a couple of years ago = 2021⟩"),
        ("Last Friday was fun; next month we travel", " ⟨last friday = 5 May 2023; next month = June 2023⟩"),
        ("2 months ago, and last year too", " ⟨2 months ago = March 2023; last year = 2022⟩"),
        ("this weekend I rest, tomorrow I work", " ⟨this weekend = the weekend of 13 May 2023; tomorrow = 9 May 2023⟩"),
        ("last Monday", " ⟨last monday = 1 May 2023⟩"),  # said on a Monday: the one a week before
        ("the yesterdays of lastweek", ""),  # whole words only
        ("nothing relative here", ""),
    ],
)
def test_expressions_resolve_against_the_time_said(text: str, context: str) -> None:
    assert date_context(text, SAID) == context


def test_a_repeated_expression_is_resolved_once_and_the_context_stays_short() -> None:
    assert date_context("yesterday, yesterday", SAID) == " ⟨yesterday = 7 May 2023⟩"
    many = "today, yesterday, tomorrow, last week, last month, last year"
    assert date_context(many, SAID).count("=") == MAX_RESOLVED


DAYS = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))


@given(DAYS, st.integers(min_value=1, max_value=365))
def test_n_days_ago_is_n_days_before(said: date, n: int) -> None:
    expected = said - timedelta(days=n)
    assert date_context(f"{n} days ago", said) == f" ⟨{n} days ago = {expected.day} {expected.strftime('%B')} {expected.year}⟩"


@given(DAYS, st.sampled_from(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]))
def test_last_and_next_weekday_fall_within_the_week_around(said: date, weekday: str) -> None:
    for which, sign in (("last", -1), ("next", 1)):
        resolved = date_context(f"{which} {weekday}", said).split(" = ")[1].rstrip("⟩")
        day = datetime.strptime(resolved, "%d %B %Y").date()
        assert day.strftime("%A").lower() == weekday
        assert 1 <= sign * (day - said).days <= 7


@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="⟨⟩"), max_size=200), DAYS)
def test_the_embedder_gets_the_text_back_without_its_context(text: str, said: date) -> None:
    assert without_context(text + date_context(text, said)) == text


FRAGMENTS = st.sampled_from(
    ["Yesterday", "LAST night", "3 days ago", "A couple of Weeks ago", "next FRIDAY", "this Weekend", "tonight", "lastly",
     "this", "agony", "Today's", "tomorrow.", "two months ago", "last year", "next month", "we met", "2023", ","]
)  # fmt: skip


@given(st.lists(st.tuples(FRAGMENTS, st.sampled_from([" ", "", "; ", "\n"])), max_size=12), DAYS)
def test_ascii_text_resolves_as_the_case_insensitive_pattern_does(parts: list[tuple[str, str]], said: date) -> None:
    # ASCII text takes the lowercased, case-sensitive pattern; a non-ASCII tail sends the same
    # expressions through the case-insensitive one.
    text = "".join(word + sep for word, sep in parts)
    assert date_context(text, said) == date_context(text + " \u00e9", said)


@given(
    st.lists(
        st.sampled_from(["tomorrow", "yesterday", "next weekend", "last sunday", "10 weeks ago", "next week", "3 days ago"]), min_size=1
    ),
    st.sampled_from([date.min, date.min + timedelta(days=3), date.max - timedelta(days=3), date.max]),
)
def test_an_expression_past_the_calendar_is_left_unresolved(words: list[str], said: date) -> None:
    """An imported timestamp may sit at 1 January 1 or 31 December 9999: "tomorrow" then has no date."""
    context = date_context(" and ".join(words), said)
    assert context == "" or context.startswith(" ⟨")
    if said == date.max:
        assert "tomorrow =" not in context
