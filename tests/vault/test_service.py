from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas.items import MAX_TAGS, MAX_TEXT_CHARS, MemoryIn, SearchQuery
from vault import Principal, VaultService
from vault.errors import EmbedderUnavailable, InvalidInput, NotFound, TooLarge


def _ids(vault: VaultService, owner: Principal, text: str) -> list[str]:
    return [h.item_id for h in vault.search(owner, SearchQuery(text=text, mode="lexical")).hits]


def test_remember_stamps_the_fields_of_an_item(vault: VaultService, owner: Principal) -> None:
    result = vault.remember(owner, MemoryIn(text="I prefer window seats", space="travel", tags=["flights", "seats"], sensitivity="medium"))
    item = result.item
    assert result.action == "added"
    assert (item.kind, item.space, item.tags, item.sensitivity) == ("memory", "travel", ["flights", "seats"], "medium")
    assert item.provenance.created_by == "owner" and item.provenance.source == "cli"
    assert item.content_hash.startswith("sha256:") and len(item.id) == 26


def test_remembering_the_same_text_twice_keeps_one_copy(vault: VaultService, owner: Principal) -> None:
    first = vault.remember(owner, MemoryIn(text="My sister lives in Porto"))
    again = vault.remember(owner, MemoryIn(text="  my sister   lives in PORTO "))
    assert again.action == "unchanged" and again.item.id == first.item.id
    assert vault.list_items(owner, kinds=["memory"]).total == 1


def test_empty_or_oversized_text_is_refused(vault: VaultService, owner: Principal) -> None:
    with pytest.raises(ValidationError):
        MemoryIn(text="   ")
    with pytest.raises(TooLarge):
        vault.remember(owner, MemoryIn(text="x" * (MAX_TEXT_CHARS + 1)))
    with pytest.raises(ValidationError):
        MemoryIn(text="ok", tags=["has space"])


def test_add_edit_and_pref_set_obey_one_set_of_limits(vault: VaultService, owner: Principal) -> None:
    """The limits import obeys too (tests/vault/portable/test_importers.py): nothing changes on a refusal."""
    many = [f"t{n}" for n in range(MAX_TAGS + 1)]
    with pytest.raises(ValidationError):
        MemoryIn(text="ok", tags=many)
    item = vault.remember(owner, MemoryIn(text="I drink oolong tea", tags=["drinks"])).item
    with pytest.raises(TooLarge):
        vault.edit(owner, item.id, text="x" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(InvalidInput):
        vault.edit(owner, item.id, tags=many)
    with pytest.raises(InvalidInput):
        vault.edit(owner, item.id, tags=["has space"])
    with pytest.raises(InvalidInput):
        vault.edit(owner, item.id, space="Not A Space")
    assert vault.get_item(owner, item.id) == item
    with pytest.raises(TooLarge):
        vault.set_preference(owner, "bio", "x" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(ValidationError):
        vault.set_preference(owner, "diet", "vegan", tags=many)
    assert vault.list_items(owner, kinds=["preference"]).total == 0
    assert vault.edit(owner, item.id, tags=many[:MAX_TAGS]).tags == sorted(many[:MAX_TAGS])


def test_edit_changes_text_and_search_follows(vault: VaultService, owner: Principal) -> None:
    item = vault.remember(owner, MemoryIn(text="I drink oolong tea")).item
    edited = vault.edit(owner, item.id, text="I drink espresso", tags=["drinks"], sensitivity="high")
    assert (edited.text, edited.tags, edited.sensitivity) == ("I drink espresso", ["drinks"], "high")
    assert _ids(vault, owner, "espresso") == [item.id]
    assert _ids(vault, owner, "oolong") == []


def test_edit_refuses_text_of_a_preference(vault: VaultService, owner: Principal) -> None:
    pref = vault.set_preference(owner, "diet", "vegetarian")
    with pytest.raises(InvalidInput):
        vault.edit(owner, pref.item.id, text="vegan")


def test_forget_removes_an_item_from_search_and_lists(vault: VaultService, owner: Principal) -> None:
    item = vault.remember(owner, MemoryIn(text="The spare key is under the blue flowerpot")).item
    assert _ids(vault, owner, "flowerpot") == [item.id]
    vault.forget(owner, item.id)
    assert _ids(vault, owner, "flowerpot") == []
    assert vault.list_items(owner).total == 0
    with pytest.raises(NotFound):
        vault.get_item(owner, item.id)
    assert vault.status(owner).forgotten == 1


def test_purge_erases_forgotten_items_only(vault: VaultService, owner: Principal) -> None:
    keep = vault.remember(owner, MemoryIn(text="keep this memory")).item
    gone = vault.remember(owner, MemoryIn(text="erase this memory")).item
    vault.forget(owner, gone.id)
    assert vault.purge(owner) == 1
    assert vault.store.one("SELECT 1 FROM items WHERE id = ?", [gone.id]) is None
    assert vault.get_item(owner, keep.id).text == "keep this memory"
    assert vault.status(owner).forgotten == 0


def test_purge_of_an_unknown_id_is_not_found(vault: VaultService, owner: Principal) -> None:
    with pytest.raises(NotFound):
        vault.purge(owner, "01NOPE")


def test_preferences_keep_history_and_one_live_value(vault: VaultService, owner: Principal) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    vault.set_preference(owner, "diet", "vegetarian", now=t0)
    vault.set_preference(owner, "diet", "vegan", now=t0 + timedelta(days=1))
    assert vault.get_preference(owner, "diet").value == "vegan"
    history = vault.preference_history(owner, "diet")
    assert [i.text for i in history] == ["vegan", "vegetarian"]
    assert history[0].supersedes == history[1].id and history[1].superseded_at is not None
    assert [p.key for p in vault.list_preferences(owner)] == ["diet"]


def test_setting_the_same_preference_value_is_a_no_op(vault: VaultService, owner: Principal) -> None:
    first = vault.set_preference(owner, "coffee", "flat white")
    again = vault.set_preference(owner, "coffee", "flat white")
    assert again.item.id == first.item.id
    assert len(vault.preference_history(owner, "coffee")) == 1


def test_unset_preference_then_get_is_not_found(vault: VaultService, owner: Principal) -> None:
    vault.set_preference(owner, "seat", "aisle")
    vault.unset_preference(owner, "seat")
    with pytest.raises(NotFound):
        vault.get_preference(owner, "seat")
    vault.set_preference(owner, "seat", "window")
    assert vault.get_preference(owner, "seat").value == "window"


def test_bad_preference_keys_are_refused(vault: VaultService, owner: Principal) -> None:
    for key in ("", "Has Caps", "sp ace", "x" * 200, "-lead"):
        with pytest.raises(InvalidInput):
            vault.set_preference(owner, key, "value")


def test_preferences_are_searchable_by_key_and_value(vault: VaultService, owner: Principal) -> None:
    pref = vault.set_preference(owner, "travel.seat", "aisle please")
    assert _ids(vault, owner, "seat") == [pref.item.id]


def test_filters_narrow_list_and_search(vault: VaultService, owner: Principal) -> None:
    work = vault.remember(owner, MemoryIn(text="standup meeting at nine", space="work", tags=["meetings"])).item
    vault.remember(owner, MemoryIn(text="meeting friends for dinner", space="personal", sensitivity="high"))
    assert [i.id for i in vault.list_items(owner, spaces=["work"]).items] == [work.id]
    assert [i.id for i in vault.list_items(owner, tags=["meetings"]).items] == [work.id]
    assert [i.id for i in vault.list_items(owner, max_sensitivity="medium").items] == [work.id]
    hits = vault.search(owner, SearchQuery(text="meeting", spaces=["work"], mode="lexical")).hits
    assert [h.item_id for h in hits] == [work.id]


def test_spaces_count_live_items(vault: VaultService, owner: Principal) -> None:
    vault.remember(owner, MemoryIn(text="a", space="work"))
    vault.remember(owner, MemoryIn(text="b", space="work"))
    vault.set_preference(owner, "diet", "vegan", space="health")
    counts = {s.space: (s.memories, s.preferences, s.documents) for s in vault.spaces(owner)}
    assert counts == {"work": (2, 0, 0), "health": (0, 1, 0)}


def test_a_near_duplicate_never_moves_text_to_a_lower_sensitivity(vault: VaultService, owner: Principal) -> None:
    low = vault.remember(owner, MemoryIn(text="I am allergic to peanuts and tree nuts", sensitivity="low")).item
    high = vault.remember(owner, MemoryIn(text="I am allergic to peanuts and to tree nuts", sensitivity="high"))
    assert high.action == "added" and high.item.sensitivity == "high"
    assert vault.get_item(owner, low.id).text == "I am allergic to peanuts and tree nuts"
    # A test of the test: at the same level the near-duplicate does merge.
    again = vault.remember(owner, MemoryIn(text="I'm allergic to peanuts and to tree nuts", sensitivity="high"))
    assert again.action == "updated" and again.item.id == high.item.id


def test_purge_keeps_a_preference_set_again_after_unset(vault: VaultService, owner: Principal) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    vault.set_preference(owner, "diet", "vegan", now=t0)
    vault.unset_preference(owner, "diet", now=t0 + timedelta(days=1))
    vault.set_preference(owner, "diet", "vegetarian", now=t0 + timedelta(days=2))
    vault.set_preference(owner, "seat", "aisle", now=t0)
    vault.set_preference(owner, "seat", "window", now=t0 + timedelta(days=1))
    assert vault.purge(owner) == 1
    assert vault.get_preference(owner, "diet").value == "vegetarian"
    assert [i.text for i in vault.preference_history(owner, "seat")] == ["window", "aisle"]


def test_purging_one_preference_value_takes_its_older_values_only(vault: VaultService, owner: Principal) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    old = vault.set_preference(owner, "coffee", "latte", now=t0).item
    mid = vault.set_preference(owner, "coffee", "cortado", now=t0 + timedelta(days=1)).item
    vault.set_preference(owner, "coffee", "flat white", now=t0 + timedelta(days=2))
    assert vault.purge(owner, mid.id) == 2
    assert [i.text for i in vault.preference_history(owner, "coffee")] == ["flat white"]
    assert vault.store.one("SELECT 1 FROM items WHERE id = ?", [old.id]) is None


def test_a_write_succeeds_when_the_embedder_cannot_load(vault: VaultService, owner: Principal, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from vault.search import Retriever

    broken = Retriever(vault.store, dataclasses.replace(vault.settings, model="no-such/model"), vault._retriever._key)
    monkeypatch.setattr(vault, "_retriever", broken)
    item = vault.remember(owner, MemoryIn(text="stored even without a model")).item
    assert vault.get_item(owner, item.id).text == "stored even without a model"
    with pytest.raises(EmbedderUnavailable):
        vault.search(owner, SearchQuery(text="stored", mode="dense"))


def test_a_unique_id_prefix_names_its_item_and_an_ambiguous_one_lists_the_candidates(vault: VaultService, owner: Principal) -> None:
    first = vault.remember(owner, MemoryIn(text="I keep bees")).item.id
    second = vault.remember(owner, MemoryIn(text="My bike is blue")).item.id
    common = first[: next(n for n, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)]
    assert len(common) >= 4  # ULIDs made in the same minute share their time prefix
    assert vault.resolve_id(owner, "item", first[: len(common) + 1]) == first
    assert vault.resolve_id(owner, "item", second[: len(common) + 3].lower()) == second  # any case
    with pytest.raises(InvalidInput) as raised:
        vault.resolve_id(owner, "item", common[:4])
    assert first in raised.value.message and second in raised.value.message
    # Too short, not an id, or matching nothing: given back as it was, for the next call to report.
    assert vault.resolve_id(owner, "item", first[:3]) == first[:3]
    assert vault.resolve_id(owner, "item", "ZZZZZZZZ") == "ZZZZZZZZ"
    assert vault.resolve_id(owner, "item", "not an id") == "not an id"
    with pytest.raises(NotFound):
        vault.get_item(owner, vault.resolve_id(owner, "item", "ZZZZZZZZ"))


def test_consent_and_grant_ids_resolve_by_prefix_in_their_own_table(vault: VaultService, owner: Principal) -> None:
    vault.add_app(owner, "asker")
    asker = vault.principal_for_app("asker")
    request = vault.request_access(asker, ["read:memories"], purpose="plan trips")
    grant = vault.grant(owner, "asker", ["read:preferences"])
    assert vault.resolve_id(owner, "consent request", request.id[:12]) == request.id
    assert vault.resolve_id(owner, "grant", grant.id[:12]) == grant.id
    assert vault.resolve_id(owner, "grant", request.id[:25]) == request.id[:25]  # not a grant: unchanged
