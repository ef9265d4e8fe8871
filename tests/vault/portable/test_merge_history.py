"""Merges that lose nothing: conflicts keep both sides, tombstones travel, preference chains stay one (issue 24)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from schemas.items import MemoryIn
from schemas.portable import Selection
from tests.vault.portable.conftest import REPO, fake_vectors
from vault import OWNER, VaultService
from vault.errors import BadBundle
from vault.portable.bundle import sha256

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 2, 1, tzinfo=UTC)
T2 = datetime(2026, 3, 1, tzinfo=UTC)
T3 = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def other(make_vault: Callable[..., VaultService], monkeypatch: pytest.MonkeyPatch) -> VaultService:
    """Vault B (another machine), embedding with fake vectors like ``source`` (vault A)."""
    vault = make_vault("b")
    monkeypatch.setattr(vault._retriever, "sync", lambda *a, **k: fake_vectors(vault))
    return vault


def export(vault: VaultService, path: Path) -> Path:
    vault.export_bundle(OWNER, Selection(), path, plaintext=True)
    return path


def texts(vault: VaultService, item_id: str) -> tuple[str, list[str]]:
    found = vault.item_history(OWNER, item_id)
    return found.item.text, [v.text for v in found.versions]


def shared_memory(a: VaultService, b: VaultService, tmp_path: Path, text: str) -> str:
    item = a.remember(OWNER, MemoryIn(text=text), now=T0).item.id
    b.import_source(OWNER, export(a, tmp_path / "first"))
    return item


def test_two_vaults_edit_the_same_memory_and_both_edits_survive_imports_both_ways(
    source: VaultService, other: VaultService, tmp_path: Path
) -> None:
    a, b = source, other
    item = shared_memory(a, b, tmp_path, "Meeting with Bob on Monday about the budget")
    a.edit(OWNER, item, text="Meeting with Bob on Tuesday about the budget", now=T1)
    b.edit(OWNER, item, text="Meeting with Bob on Wednesday about the budget", now=T2)
    bundle_a, bundle_b = export(a, tmp_path / "bundle-a"), export(b, tmp_path / "bundle-b")

    into_b = b.import_source(OWNER, bundle_a)
    into_a = a.import_source(OWNER, bundle_b)
    for summary, kept in ((into_b, "vault"), (into_a, "source")):
        assert [(c.item_id, c.kept) for c in summary.conflicts] == [(item, kept)]
        assert not [s for s in summary.skipped if s.ref == item]
    both = {"Meeting with Bob on Monday about the budget", "Meeting with Bob on Tuesday about the budget"}
    for vault in (a, b):
        current, earlier = texts(vault, item)
        assert current == "Meeting with Bob on Wednesday about the budget"  # the later edit is current
        assert set(earlier) == both  # the other edit and the common version are kept
        (conflict,) = vault.conflicts(OWNER)
        assert conflict.item_id == item and vault.item_history(OWNER, item).versions[conflict.version - 1].text.startswith(
            "Meeting with Bob on Tuesday"
        )
    # Once both vaults agree, exchanging bundles again changes nothing and reports no new conflict.
    again = b.import_source(OWNER, export(a, tmp_path / "a2"))
    assert again.conflicts == [] and again.updated == 0


def test_the_owner_resolves_a_conflict_by_choosing_a_version(source: VaultService, other: VaultService, tmp_path: Path) -> None:
    a, b = source, other
    item = shared_memory(a, b, tmp_path, "order-1001 shipped")
    a.edit(OWNER, item, text="order-1001 shipped to Lisbon", now=T1)
    b.edit(OWNER, item, text="order-1001 shipped to Porto", now=T2)
    (conflict,) = b.import_source(OWNER, export(a, tmp_path / "bundle-a")).conflicts
    assert conflict.id is not None and conflict.version is not None
    resolved = b.resolve_conflict(OWNER, conflict.id, conflict.version)
    assert resolved.text == "order-1001 shipped to Lisbon"
    assert b.conflicts(OWNER) == []
    assert "order-1001 shipped to Porto" in texts(b, item)[1]  # the side not chosen stays in the history


def test_equal_timestamps_are_a_conflict_not_the_vaults_copy_is_newer_and_both_vaults_choose_alike(
    source: VaultService, other: VaultService, tmp_path: Path
) -> None:
    a, b = source, other
    item = shared_memory(a, b, tmp_path, "My daughter Alice is 7 years old")
    a.edit(OWNER, item, text="My daughter Alice is 8 years old", now=T1)
    b.edit(OWNER, item, text="My daughter Alice is 9 years old", now=T1)
    bundle_a, bundle_b = export(a, tmp_path / "bundle-a"), export(b, tmp_path / "bundle-b")
    into_b = b.import_source(OWNER, bundle_a)
    into_a = a.import_source(OWNER, bundle_b)
    assert [s.reason for s in [*into_a.skipped, *into_b.skipped]] == []
    assert len(into_a.conflicts) == len(into_b.conflicts) == 1
    assert texts(a, item)[0] == texts(b, item)[0]
    assert {texts(a, item)[0], *texts(a, item)[1]} == {f"My daughter Alice is {n} years old" for n in (7, 8, 9)}


def test_an_edit_on_one_side_only_fast_forwards_without_a_conflict(source: VaultService, other: VaultService, tmp_path: Path) -> None:
    a, b = source, other
    item = shared_memory(a, b, tmp_path, "I live in Porto")
    a.edit(OWNER, item, text="I live in Lisbon", now=T1)
    summary = b.import_source(OWNER, export(a, tmp_path / "bundle-a"))
    assert summary.updated == 1 and summary.conflicts == []
    assert texts(b, item) == ("I live in Lisbon", ["I live in Porto"])
    # The older bundle (before the edit) does not undo it.
    older = b.import_source(OWNER, tmp_path / "first")
    assert [s.reason for s in older.skipped] == ["an earlier version of this vault's copy"]
    assert texts(b, item)[0] == "I live in Lisbon"


def test_an_item_forgotten_in_a_travels_to_b(source: VaultService, other: VaultService, tmp_path: Path) -> None:
    a, b = source, other
    item = shared_memory(a, b, tmp_path, "I drive a blue Toyota")
    a.forget(OWNER, item)
    summary = b.import_source(OWNER, export(a, tmp_path / "bundle-a"))
    assert summary.forgotten == 1
    assert [i.id for i in b.list_items(OWNER).items] == []
    assert b.store.one("SELECT count(*) FROM units WHERE item_id = ?", [item])[0] == 0  # type: ignore[index]


def test_a_purge_in_a_then_an_older_bundle_of_a_resurrects_nothing(source: VaultService, other: VaultService, tmp_path: Path) -> None:
    a, b = source, other
    item = shared_memory(a, b, tmp_path, "zqxtombstone55 my old address")
    older = export(a, tmp_path / "older")
    a.forget(OWNER, item)
    a.purge(OWNER)
    summary = a.import_source(OWNER, older)
    assert summary.new == 0 and [s.reason for s in summary.skipped] == ["purged in this vault"]
    assert a.store.one("SELECT count(*) FROM items")[0] == 0  # type: ignore[index]
    # The purge travels as a tombstone of the id only (no text, no hash to confirm a guess), and forgets the item in B.
    bundle = export(a, tmp_path / "after")
    written = json.loads((bundle / "x-ctxvault" / "tombstones.json").read_text())
    assert [sorted(t) for t in written["tombstones"]] == [["at", "id", "state"]] and written["tombstones"][0]["id"] == item
    jsonschema.validate(written, json.loads((REPO / "schemas" / "json" / "ctxvault-tombstones.schema.json").read_text()))
    assert b.import_source(OWNER, bundle).forgotten == 1
    assert b.list_items(OWNER).items == []
    # A vault that never held the item keeps the tombstone: the older bundle cannot bring it there either.
    fresh_summary = (c := _fresh(b, tmp_path)).import_source(OWNER, bundle)
    assert fresh_summary.new == 0
    assert c.import_source(OWNER, older).new == 0


def _fresh(b: VaultService, tmp_path: Path) -> VaultService:
    from dataclasses import replace

    from tests.conftest import PASSPHRASE
    from vault import Settings, init_vault, open_vault

    settings = replace(Settings.from_env(home=tmp_path / "c"))
    init_vault(settings, PASSPHRASE)
    vault = open_vault(settings, PASSPHRASE)
    vault._retriever.sync = lambda *a, **k: fake_vectors(vault)  # type: ignore[method-assign]
    return vault


def test_a_preference_edited_on_both_sides_imports_into_one_chain(source: VaultService, other: VaultService, tmp_path: Path) -> None:
    a, b = source, other
    a.set_preference(OWNER, "diet", "omnivore", now=T0)
    b.import_source(OWNER, export(a, tmp_path / "first"))
    a.set_preference(OWNER, "diet", "vegetarian", now=T1)
    b.set_preference(OWNER, "diet", "vegan", now=T2)
    b.import_source(OWNER, export(a, tmp_path / "bundle-a"))
    a.import_source(OWNER, export(b, tmp_path / "bundle-b"))
    for vault in (a, b):
        assert vault.get_preference(OWNER, "diet").value == "vegan"
        values = vault.preference_history(OWNER, "diet")
        assert [i.text for i in values] == ["vegan", "vegetarian", "omnivore"]
        links = [i.supersedes for i in values]
        assert links == [values[1].id, values[2].id, None]  # each names the one before it: no fork
        assert len({x for x in links if x}) == len([x for x in links if x])


def test_a_dry_run_reports_exactly_what_the_import_does(source: VaultService, other: VaultService, tmp_path: Path) -> None:
    a, b = source, other
    ids = [a.remember(OWNER, MemoryIn(text=f"memory number {n} about gardening"), now=T0).item.id for n in range(6)]
    b.import_source(OWNER, export(a, tmp_path / "first"))
    a.edit(OWNER, ids[0], text="memory number 0 about gardening, edited in A", now=T1)
    b.edit(OWNER, ids[0], text="memory number 0 about gardening, edited in B", now=T2)
    a.edit(OWNER, ids[1], text="memory number 1 about gardening, edited in A", now=T1)
    a.forget(OWNER, ids[2])
    for n in range(3):
        a.remember(OWNER, MemoryIn(text=f"a new memory {n} about bees"), now=T3)
    bundle = export(a, tmp_path / "bundle-a")
    dry = b.import_source(OWNER, bundle, dry_run=True)
    real = b.import_source(OWNER, bundle)
    assert dry.dry_run and not real.dry_run
    keys = ("new", "updated", "unchanged", "skipped", "vectors_reused", "by_kind", "forgotten")
    assert {k: getattr(dry, k) for k in keys} == {k: getattr(real, k) for k in keys}
    assert dry.vectors_reused == 3  # the new memories' vectors; the updated ones are embedded again
    assert [(c.item_id, c.kept) for c in dry.conflicts] == [(c.item_id, c.kept) for c in real.conflicts] == [(ids[0], "vault")]


def test_a_tombstone_does_not_forget_an_item_the_target_changed_after_it(source: VaultService, other: VaultService, tmp_path: Path) -> None:
    a, b = source, other
    item = shared_memory(a, b, tmp_path, "The spare key is under the blue pot")
    a.forget(OWNER, item, now=T1)
    b.edit(OWNER, item, text="The spare key is under the red pot", now=T2)
    bundle = export(a, tmp_path / "bundle-a")
    dry = b.import_source(OWNER, bundle, dry_run=True)
    real = b.import_source(OWNER, bundle)
    for summary in (dry, real):
        assert summary.forgotten == 0
        assert [(s.ref, s.reason) for s in summary.skipped] == [(item, "forgotten in the source, changed here since: kept")]
    assert b.get_item(OWNER, item).text == "The spare key is under the red pot"
    # Unchanged here, the same tombstone forgets the item.
    other_item = shared_memory(a, b, tmp_path / "again", "The wifi password is on the fridge")
    a.forget(OWNER, other_item, now=T3)
    assert b.import_source(OWNER, export(a, tmp_path / "bundle-a2")).forgotten == 1
    assert [i.id for i in b.list_items(OWNER).items] == [item]


def test_a_preference_unset_in_the_target_still_imports_into_one_chain(source: VaultService, other: VaultService, tmp_path: Path) -> None:
    a, b = source, other
    a.set_preference(OWNER, "diet", "vegan", now=T0)
    b.import_source(OWNER, export(a, tmp_path / "first"))
    a.set_preference(OWNER, "diet", "vegetarian", now=T1)
    b.set_preference(OWNER, "diet", "pescatarian", now=T2)
    a.unset_preference(OWNER, "diet", now=T3)
    a.import_source(OWNER, export(b, tmp_path / "bundle-b"))
    # Every value a holds, the forgotten one too, is one link of one chain by time.
    rows = a.store.query("SELECT id, text, supersedes FROM items WHERE pref_key = 'diet' ORDER BY created_at")
    assert [r["text"] for r in rows] == ["vegan", "vegetarian", "pescatarian"]
    assert [r["supersedes"] for r in rows] == [None, rows[0]["id"], rows[1]["id"]]


def rewrite_memories(bundle: Path, change: Callable[[dict[str, object]], None]) -> None:
    """Edit the bundle's memories as a hostile author would, the manifest re-signed to match."""
    path = bundle / "memory-store.json"
    store = json.loads(path.read_text())
    for memory in store["memories"]:
        change(memory)
    path.write_text(json.dumps(store))
    manifest_path = bundle / "x-ctxvault" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name, entry in manifest["files"].items():
        data = (bundle / name).read_bytes()
        entry.update(sha256=sha256(data), size=len(data))
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ({"text": "x" * 100_001}, "memory: version 1: text is 100,001 characters; the limit is 100,000"),
        ({"text": "   "}, "memory: version 1: text is empty"),
        ({"tags": [f"t{n}" for n in range(40)]}, "memory: version 1: 40 tags; the limit is 32"),
    ],
)
def test_a_bundle_version_that_breaks_the_item_limits_skips_its_record(
    source: VaultService, other: VaultService, tmp_path: Path, version: dict[str, object], reason: str
) -> None:
    item = source.remember(OWNER, MemoryIn(text="I grow tomatoes"), now=T0).item.id
    source.edit(OWNER, item, text="I grow tomatoes and basil", now=T1)
    bundle = export(source, tmp_path / "bundle")
    rewrite_memories(bundle, lambda m: m["metadata"]["x-ctxvault"]["history"][0].update(version))  # type: ignore[index]
    summary = other.import_source(OWNER, bundle)
    assert summary.new == 0 and [(s.ref, s.reason) for s in summary.skipped] == [(item, reason)]


def rewrite_tombstones(bundle: Path, tombstones: list[dict[str, object]]) -> None:
    (bundle / "x-ctxvault" / "tombstones.json").write_text(json.dumps({"tombstones": tombstones}))
    rewrite_memories(bundle, lambda m: None)  # re-signs the manifest


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"id": "an id\x1b[31m with escapes", "state": "purged", "at": "2026-01-01T00:00:00Z"}, "is not an item id"),
        ({"id": "01J00000000000000000000000", "state": "forgotten", "at": "2026-01-01T00:00:00Z"}, "carries its content hash"),
    ],
)
def test_a_tombstone_with_a_bad_id_or_a_forgotten_one_without_its_hash_refuses_the_bundle(
    source: VaultService, other: VaultService, tmp_path: Path, entry: dict[str, object], error: str
) -> None:
    source.remember(OWNER, MemoryIn(text="I grow tomatoes"), now=T0)
    bundle = export(source, tmp_path / "bundle")
    rewrite_tombstones(bundle, [entry])
    with pytest.raises(BadBundle, match=error):
        other.import_source(OWNER, bundle)
    assert other.store.query("SELECT id FROM items") == [] and other.store.query("SELECT id FROM tombstones") == []


def test_a_purged_tombstone_keeps_no_hash_even_if_the_bundle_carries_one(source: VaultService, other: VaultService, tmp_path: Path) -> None:
    source.remember(OWNER, MemoryIn(text="I grow tomatoes"), now=T0)
    bundle = export(source, tmp_path / "bundle")
    gone = "01J00000000000000000000000"
    rewrite_tombstones(bundle, [{"id": gone, "content_hash": "ab" * 32, "state": "purged", "at": "2026-01-01T00:00:00Z"}])
    other.import_source(OWNER, bundle)
    assert [tuple(r) for r in other.store.query("SELECT id, content_hash FROM tombstones")] == [(gone, "")]


def chunks_of(vault: VaultService, item_id: str) -> str:
    return " ".join(vault.show_document(OWNER, item_id).chunks)


def test_a_document_changed_on_both_sides_keeps_both_contents_and_its_history_travels_with_the_files(
    source: VaultService, other: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path
) -> None:
    a, b = source, other
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\nversion one zqxone\n")
    doc = a.add_document(OWNER, path, now=T0).item_id
    b.import_source(OWNER, export(a, tmp_path / "first"))
    path.write_text("# Notes\n\nversion two zqxtwo, written in A\n")
    a.add_document(OWNER, path, now=T1)
    path.write_text("# Notes\n\nversion three zqxthree, written in B\n")
    b.add_document(OWNER, path, now=T2)
    bundle_a, bundle_b = export(a, tmp_path / "bundle-a"), export(b, tmp_path / "bundle-b")

    dry_b = b.import_source(OWNER, bundle_a, dry_run=True)
    into_b = b.import_source(OWNER, bundle_a)  # B's edit is newer: it stays current, A's content becomes a version
    keys = ("new", "updated", "unchanged", "skipped", "vectors_reused", "by_kind", "forgotten")
    assert {k: getattr(dry_b, k) for k in keys} == {k: getattr(into_b, k) for k in keys}
    assert [(c.item_id, c.kept) for c in dry_b.conflicts] == [(c.item_id, c.kept) for c in into_b.conflicts]
    into_a = a.import_source(OWNER, bundle_b)
    assert [(c.item_id, c.kept) for c in into_b.conflicts] == [(doc, "vault")]
    assert [(c.item_id, c.kept) for c in into_a.conflicts] == [(doc, "source")]
    for vault in (a, b):
        assert "zqxthree" in chunks_of(vault, doc)
        assert all(v.file is not None for v in vault.item_history(OWNER, doc).versions)
    conflict = b.conflicts(OWNER)[0]
    b.resolve_conflict(OWNER, conflict.id, conflict.version)
    assert "zqxtwo" in chunks_of(b, doc)

    # A third vault that imports A's bundle gets every earlier content, restorable.
    c = make_vault("c")
    c.import_source(OWNER, export(a, tmp_path / "bundle-a2"))
    found = c.item_history(OWNER, doc)
    assert [v.file.sha256 if v.file else None for v in found.versions] == [
        v.file.sha256 if v.file else None for v in a.item_history(OWNER, doc).versions
    ]
    first = next(v.version for v in found.versions if v.file is not None and v.saved_at == T0)
    c.restore(OWNER, doc, first)
    assert "zqxone" in chunks_of(c, doc)


def test_a_tombstone_forgets_a_copy_that_is_merely_behind_and_says_exactly_why_it_keeps_one_that_is_not(
    source: VaultService, other: VaultService, tmp_path: Path
) -> None:
    a, b = source, other
    behind = shared_memory(a, b, tmp_path, "The spare key is under the blue pot")
    diverged = shared_memory(a, b, tmp_path / "two", "The bike lock code is 1234")
    a.edit(OWNER, behind, text="The spare key is under the green pot", now=T1)  # B never saw this edit: it is behind
    a.edit(OWNER, diverged, text="The bike lock code is 4321", now=T1)
    b.edit(OWNER, diverged, text="The bike lock code is 9999", now=datetime(2026, 2, 15, tzinfo=UTC))  # before A forgets it
    a.forget(OWNER, behind, now=T2)
    a.forget(OWNER, diverged, now=T2)
    bundle = export(a, tmp_path / "bundle-a")
    dry = b.import_source(OWNER, bundle, dry_run=True)
    real = b.import_source(OWNER, bundle)
    for summary in (dry, real):
        assert summary.forgotten == 1
        assert [(s.ref, s.reason) for s in summary.skipped] == [
            (diverged, "forgotten in the source at another version than this vault's: kept")
        ]
    assert [i.id for i in b.list_items(OWNER).items] == [diverged]


def slice_of(vault: VaultService, path: Path, space: str) -> Path:
    vault.export_bundle(OWNER, Selection(spaces=[space]), path, plaintext=True)
    return path


def test_a_slice_forgets_nothing_that_moved_outside_it_and_still_forgets_what_was_forgotten_inside_it(
    source: VaultService, other: VaultService, tmp_path: Path
) -> None:
    a, b = source, other
    a.set_preference(OWNER, "diet", "vegan", space="work", now=T0)
    a.set_preference(OWNER, "editor", "vim", space="work", now=T0)
    moved = a.remember(OWNER, MemoryIn(text="The stand-up is at nine", space="work"), now=T0).item.id
    b.import_source(OWNER, export(a, tmp_path / "first"))
    a.set_preference(OWNER, "diet", "vegetarian", space="personal", now=T1)  # the new value lives outside the slice
    a.edit(OWNER, moved, space="personal", now=T1)
    a.set_preference(OWNER, "editor", "emacs", space="work", now=T1)
    a.unset_preference(OWNER, "editor", now=T2)  # replaced and then forgotten inside the slice
    bundle = slice_of(a, tmp_path / "work", "work")
    dry = b.import_source(OWNER, bundle, dry_run=True)
    real = b.import_source(OWNER, bundle)
    keys = ("new", "updated", "unchanged", "skipped", "forgotten")
    assert {k: getattr(dry, k) for k in keys} == {k: getattr(real, k) for k in keys}
    assert {p.key: p.value for p in b.list_preferences(OWNER)} == {"diet": "vegan"}  # diet stays; editor was unset in A
    assert b.get_item(OWNER, moved).space == "work"


def test_a_slice_that_left_the_common_version_out_fast_forwards_a_target_that_is_merely_behind(
    source: VaultService, other: VaultService, tmp_path: Path
) -> None:
    a, b = source, other
    item = shared_memory(a, b, tmp_path, "Lunch with Carol on Friday")  # in personal
    a.edit(OWNER, item, space="work", now=T1)
    a.edit(OWNER, item, text="Lunch with Carol on Friday at the canteen", now=T2)
    bundle = slice_of(a, tmp_path / "work", "work")
    entry = json.loads((bundle / "memory-store.json").read_text())["memories"][0]["metadata"]["x-ctxvault"]
    assert "Lunch with Carol on Friday" not in json.dumps(entry["left_out"]) and len(entry["left_out"]) == 1  # an instant only
    dry = b.import_source(OWNER, bundle, dry_run=True)
    real = b.import_source(OWNER, bundle)
    for summary in (dry, real):
        assert summary.updated == 1 and summary.conflicts == [] and summary.skipped == []
    assert texts(b, item) == ("Lunch with Carol on Friday at the canteen", ["Lunch with Carol on Friday", "Lunch with Carol on Friday"])
    assert b.conflicts(OWNER) == []
