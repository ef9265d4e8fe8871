from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import InvalidInput
from vault.filters import Clause
from vault.scopes import ACTIONS, KINDS, Scope, format_scope, parse_scope, parse_scopes

SPACES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)
TAGS = st.from_regex(r"[^\s,;#=]{1,12}", fullmatch=True)


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    action = draw(st.sampled_from(ACTIONS))
    allowed = [k for k in KINDS if not (k == "profile" and action in ("write", "delete"))]
    star = draw(st.booleans())
    kinds = (
        frozenset(draw(st.lists(st.sampled_from(allowed), min_size=1, unique=True)))
        if star
        else frozenset({draw(st.sampled_from(allowed))})
    )
    return Scope(
        action=action,
        kinds=kinds,
        spaces=draw(st.none() | st.frozensets(SPACES, min_size=1, max_size=3)),
        tags=draw(st.none() | st.frozensets(TAGS, min_size=1, max_size=3)),
        max_sensitivity=draw(st.none() | st.sampled_from(["low", "medium", "high"])),
        all_kinds=star,
    )


@given(scopes())
def test_format_then_parse_is_identity(scope: Scope) -> None:
    assert parse_scope(format_scope(scope)) == scope


@given(scopes())
def test_formatting_is_canonical(scope: Scope) -> None:
    text = format_scope(scope)
    assert format_scope(parse_scope(text)) == text


def test_a_scope_with_filters_becomes_the_matching_clause() -> None:
    scope = parse_scope("read:memories#space=work;tag=travel")
    assert scope.clause() == Clause(kinds=frozenset({"memory"}), spaces=frozenset({"work"}), tags=frozenset({"travel"}))
    assert parse_scope("search:documents#sens=low").clause().max_sensitivity == "low"
    assert parse_scope("write:preferences").clause() == Clause(kinds=frozenset({"preference"}))


def test_a_star_kind_reaches_every_kind_and_can_be_narrowed_by_a_kind_filter() -> None:
    assert parse_scope("read:*").clause().kinds == frozenset({"memory", "preference", "document"})
    assert parse_scope("read:*#kind=memories,documents").clause().kinds == frozenset({"memory", "document"})
    assert "profile" not in parse_scope("write:*").kinds


def test_values_are_sorted_and_filters_ordered_when_formatted() -> None:
    assert str(parse_scope("read:memories#tag=b,a;space=work")) == "read:memories#space=work;tag=a,b"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "read",
        "peek:memories",
        "read:notes",
        "read:memories#",
        "read:memories#space",
        "read:memories#space=",
        "read:memories#space=Work",
        "read:memories#space=a,,b",
        "read:memories#colour=blue",
        "read:memories#sens=secret",
        "read:memories#space=a;space=b",
        "read:memories#kind=documents",
        "read:*#kind=notes",
        "write:profile",
        "delete:*#kind=profile",
    ],
)
def test_malformed_or_unknown_scopes_are_rejected(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_scope(text)


@pytest.mark.parametrize("text", ["export:*", "admin:*", "purge:memories", "grant:*"])
def test_owner_only_actions_can_never_be_granted(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_scope(text)


def test_at_least_one_scope_is_required() -> None:
    with pytest.raises(InvalidInput):
        parse_scopes([])


@pytest.mark.parametrize(
    ("wide", "narrow"),
    [
        ("read:*", "read:memories#space=work"),
        ("read:memories", "read:memories#sens=low"),
        ("read:memories#space=work,home", "read:memories#space=work"),
        ("read:memories#sens=medium", "read:memories#sens=low"),
        ("search:*#tag=a,b", "search:documents#tag=a"),
    ],
)
def test_a_scope_covers_its_narrowings_but_not_the_reverse(wide: str, narrow: str) -> None:
    assert parse_scope(wide).covers(parse_scope(narrow))
    assert not parse_scope(narrow).covers(parse_scope(wide))


def test_a_scope_never_covers_another_action() -> None:
    assert not parse_scope("read:*").covers(parse_scope("write:memories"))


def test_scopes_read_in_plain_words() -> None:
    from vault.scopes import describe_scope

    assert describe_scope(parse_scope("search:memories#space=work;sens=medium")) == (
        "Search your memories in the space work, up to medium sensitivity"
    )
    assert describe_scope(parse_scope("read:*")) == "Read everything in every space, high sensitivity included"


def test_narrowing_never_widens_a_scope() -> None:
    from vault.scopes import narrow_scope

    scope = parse_scope("read:memories#space=work,home;sens=medium")
    assert str(narrow_scope(scope, frozenset({"work", "travel"}), "high")) == "read:memories#space=work;sens=medium"
    assert str(narrow_scope(parse_scope("read:*"), None, "low")) == "read:*#sens=low"
    with pytest.raises(InvalidInput):
        narrow_scope(scope, frozenset({"travel"}), None)
