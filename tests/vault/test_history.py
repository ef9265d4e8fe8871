"""Item history: edits, updates and restores keep the previous version; reads are scope-checked; purge erases it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.items import MemoryIn
from tests.security.conftest import make_app
from vault import OWNER, VaultService
from vault.errors import InvalidInput, NotFound, ScopeDenied, TooLarge

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 2, 1, tzinfo=UTC)
T2 = datetime(2026, 3, 1, tzinfo=UTC)


def test_an_edit_keeps_the_previous_text_tags_space_sensitivity_author_and_time(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="My daughter Alice is 7 years old", tags=["family"]), now=T0).item
    vault.edit(OWNER, item.id, text="My daughter Alice is 8 years old", space="family", tags=["kids"], sensitivity="medium", now=T1)
    found = vault.item_history(OWNER, item.id)
    assert found.item.text == "My daughter Alice is 8 years old" and found.current_version == 2
    (v1,) = found.versions
    assert (v1.version, v1.text, v1.space, v1.tags, v1.sensitivity) == (
        1,
        "My daughter Alice is 7 years old",
        "personal",
        ["family"],
        "low",
    )
    assert (v1.saved_by, v1.saved_at, v1.replaced_by, v1.replaced_at) == ("owner", T0, "owner", T1)


def test_an_edit_that_changes_nothing_writes_no_version(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="I keep bees", tags=["a"]), now=T0).item
    again = vault.edit(OWNER, item.id, tags=["a"], now=T1)
    assert again.provenance.updated_at == T0
    assert vault.item_history(OWNER, item.id).versions == []


def test_the_core_update_path_keeps_history_for_every_caller(vault: VaultService) -> None:
    # The path a near-duplicate update or an explicit merge takes (ServiceCore._update_text).
    item = vault.remember(OWNER, MemoryIn(text="order-1001 shipped"), now=T0).item
    with vault.store.transaction():
        vault._update_text(item.id, "memory", "order-1001 shipped on Monday", now=T1, by="app-x")
    (v1,) = vault.item_history(OWNER, item.id).versions
    assert (v1.text, v1.replaced_by, v1.replaced_at) == ("order-1001 shipped", "app-x", T1)


def test_restore_makes_a_version_current_and_keeps_the_replaced_state_as_a_new_version(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="Meeting with Bob on Monday"), now=T0).item
    vault.edit(OWNER, item.id, text="Meeting with Bob on Tuesday", now=T1)
    restored = vault.restore(OWNER, item.id, 1, now=T2)
    assert restored.text == "Meeting with Bob on Monday" and restored.provenance.updated_at == T2
    found = vault.item_history(OWNER, item.id)
    assert [v.text for v in found.versions] == ["Meeting with Bob on Monday", "Meeting with Bob on Tuesday"]
    assert found.current_version == 3
    # Search sees the restored text.
    assert vault.store.one("SELECT text FROM units WHERE item_id = ?", [item.id])[0].startswith("Meeting with Bob on Monday")  # type: ignore[index]
    assert [e.detail["action"] for e in vault.audit_entries(OWNER, event="write")][-1] == "restore"


def test_restore_of_a_missing_version_is_not_found_and_changes_nothing(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="I like tea"), now=T0).item
    with pytest.raises(NotFound):
        vault.restore(OWNER, item.id, 1)
    assert vault.get_item(OWNER, item.id).provenance.updated_at == T0


def test_get_item_returns_only_the_versions_the_app_may_read(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="My salary is 90k", sensitivity="high"), now=T0).item
    vault.edit(OWNER, item.id, text="I work in finance", sensitivity="low", now=T1)
    vault.edit(OWNER, item.id, text="I work in banking", now=T2)
    app = make_app(vault, "reader", "read:memories#sens=low", "write:memories")
    seen = vault.get_item(app, item.id, versions=True)
    assert [v.text for v in seen.versions or []] == ["I work in finance"]  # the high version stays hidden
    assert [v.text for v in vault.get_item(OWNER, item.id, versions=True).versions or []] == ["My salary is 90k", "I work in finance"]
    assert vault.get_item(app, item.id).versions is None
    with pytest.raises(NotFound):
        vault.restore(app, item.id, 2)  # a version it may not read does not exist for it


def test_an_app_without_write_scope_cannot_restore(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="I like green tea"), now=T0).item
    vault.edit(OWNER, item.id, text="I like black tea", now=T1)
    reader = make_app(vault, "reader", "read:memories")
    assert len(vault.item_history(reader, item.id).versions) == 1
    with pytest.raises(ScopeDenied):
        vault.restore(reader, item.id, 1)
    assert vault.get_item(OWNER, item.id).text == "I like black tea"


def test_purge_erases_the_history_and_leaves_a_tombstone_of_the_id_only(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="zqxhistorymarker91 first"), now=T0).item
    vault.edit(OWNER, item.id, text="zqxhistorymarker91 second", now=T1)
    current_hash = vault.get_item(OWNER, item.id).content_hash
    vault.forget(OWNER, item.id)
    vault.purge(OWNER)
    assert vault.store.query("SELECT * FROM item_versions") == []
    rows = [tuple(r) for r in vault.store.query("SELECT * FROM tombstones")]
    assert [r[0] for r in rows] == [item.id]
    # No content, and no hash that would let whoever holds a bundle confirm a guess at the erased text.
    assert not any("zqxhistorymarker91" in str(col) or current_hash in str(col) for r in rows for col in r)


@pytest.mark.parametrize(
    ("stored", "error"),
    [("text = ''", InvalidInput), ("text = printf('%.*c', 100001, 'x')", TooLarge), ("tags = '[\"a b\"]'", InvalidInput)],
)
def test_restore_refuses_a_version_that_breaks_the_item_limits(vault: VaultService, stored: str, error: type[Exception]) -> None:
    # A version that came in a bundle before its limits were checked, or was written by hand: restore obeys the limits of every write.
    item = vault.remember(OWNER, MemoryIn(text="I grow tomatoes"), now=T0).item
    vault.edit(OWNER, item.id, text="I grow tomatoes and basil", now=T1)
    with vault.store.transaction():
        vault.store.execute(f"UPDATE item_versions SET {stored} WHERE item_id = ?", [item.id])
    with pytest.raises(error):
        vault.restore(OWNER, item.id, 1, now=T2)
    assert vault.item_history(OWNER, item.id).item.text == "I grow tomatoes and basil"
    assert len(vault.item_history(OWNER, item.id).versions) == 1


def test_an_app_sees_its_readable_versions_numbered_from_one_and_restores_by_those_numbers(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="My salary is 90k", sensitivity="high"), now=T0).item
    vault.edit(OWNER, item.id, text="I work in finance", sensitivity="low", now=T1)
    vault.edit(OWNER, item.id, text="I work in banking", now=T2)
    app = make_app(vault, "reader", "read:memories#sens=low", "write:memories")
    # Neither a gap in the numbers nor the current number reveals that a hidden version exists.
    assert [(v.version, v.text) for v in vault.get_item(app, item.id, versions=True).versions or []] == [(1, "I work in finance")]
    seen = vault.item_history(app, item.id)
    assert ([v.version for v in seen.versions], seen.current_version) == ([1], 2)
    owner = vault.item_history(OWNER, item.id)
    assert ([v.version for v in owner.versions], owner.current_version) == ([1, 2], 3)  # the owner's numbers are the vault's
    assert vault.restore(app, item.id, 1, now=T2).text == "I work in finance"
    assert [v.text for v in vault.item_history(OWNER, item.id).versions] == ["My salary is 90k", "I work in finance", "I work in banking"]
    assert vault.restore(OWNER, item.id, 3).text == "I work in banking"


def test_a_re_added_document_keeps_its_previous_file_and_restore_brings_its_content_back(vault: VaultService, tmp_path: Path) -> None:
    path = tmp_path / "trip.md"
    path.write_text("# Trip\n\nWe took the train to Lisbon zqxlisbon and ate pastries.\n")
    first = path.read_bytes()
    item_id = vault.add_document(OWNER, path, now=T0).item_id
    path.write_text("# Trip\n\nWe drove to Porto zqxporto instead.\n")
    assert vault.add_document(OWNER, path, now=T1).action == "replaced"

    found = vault.item_history(OWNER, item_id)
    assert [(v.version, v.text, v.file.filename if v.file else None) for v in found.versions] == [(1, "Trip", "trip.md")]
    assert found.versions[0].file is not None and found.versions[0].file.size == len(first)
    assert "zqxporto" in " ".join(vault.show_document(OWNER, item_id).chunks)

    vault.restore(OWNER, item_id, 1, now=T2)
    chunks = " ".join(vault.show_document(OWNER, item_id).chunks)
    assert "zqxlisbon" in chunks and "zqxporto" not in chunks
    assert bytes(vault.store.one("SELECT data FROM doc_files WHERE item_id = ?", [item_id])[0]) == first  # type: ignore[index]
    # The content it replaced is a version in turn: restoring it brings Porto back.
    assert [v.file.size if v.file else None for v in vault.item_history(OWNER, item_id).versions] == [len(first), path.stat().st_size]
    vault.restore(OWNER, item_id, 2, now=T2)
    assert "zqxporto" in " ".join(vault.show_document(OWNER, item_id).chunks)


def cells_holding(vault: VaultService, needles: list[str]) -> list[str]:
    """Every table and column of the vault's database that holds one of ``needles`` (text or bytes)."""
    found: list[str] = []
    tables = [r[0] for r in vault.store.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for row in vault.store.query(f'SELECT * FROM "{table}"'):
            for name, cell in zip(row.keys(), tuple(row), strict=True):
                raw = bytes(cell) if isinstance(cell, bytes | memoryview) else str(cell).encode()
                if any(n.encode() in raw for n in needles):
                    found.append(f"{table}.{name}")
    return found


def test_a_purge_leaves_no_content_title_tags_key_or_hash_anywhere(vault: VaultService, tmp_path: Path) -> None:
    path = tmp_path / "zqxtitle.md"
    path.write_text("# zqxtitle\n\nzqxbody one\n")
    doc = vault.add_document(OWNER, path, tags=["zqxtag"], now=T0).item_id
    path.write_text("# zqxtitle\n\nzqxbody two\n")
    vault.add_document(OWNER, path, now=T1)
    memory = vault.remember(OWNER, MemoryIn(text="zqxmemory first", tags=["zqxtag"]), now=T0).item.id
    vault.edit(OWNER, memory, text="zqxmemory second", now=T1)
    vault.set_preference(OWNER, "zqxkey", "zqxvalue one", now=T0)
    vault.set_preference(OWNER, "zqxkey", "zqxvalue two", now=T1)
    hashes = [vault.get_item(OWNER, i).content_hash for i in (doc, memory)] + [
        v.content_hash for v in vault.item_history(OWNER, memory).versions
    ]
    for item_id in (doc, memory):
        vault.forget(OWNER, item_id)
    vault.unset_preference(OWNER, "zqxkey")
    vault.purge(OWNER)
    assert cells_holding(vault, ["zqx", *hashes]) == []
    assert sorted(r[0] for r in vault.store.query("SELECT id FROM tombstones")) != []
