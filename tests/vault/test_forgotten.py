"""Forgotten items (vault/service/forgotten.py): listed and read by the owner only, unforgotten back into search."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.items import MemoryIn, SearchQuery
from vault import OWNER, VaultService
from vault.errors import InvalidInput, NotFound, ScopeDenied
from vault.principal import Principal


def lexical(vault: VaultService, text: str) -> list[str]:
    return [h.item_id for h in vault.search(OWNER, SearchQuery(text=text, mode="lexical")).hits]


def test_a_forgotten_memory_is_listed_read_and_unforgotten_back_into_search(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="The spare key is under the blue pot")).item.id
    vault.forget(OWNER, item)
    assert lexical(vault, "spare key") == []
    page = vault.forgotten_items(OWNER)
    assert page.total == 1 and [i.id for i in page.items] == [item] and page.items[0].deleted_at is not None
    assert vault.forgotten_item(OWNER, item).text == "The spare key is under the blue pot"
    back = vault.unforget(OWNER, item)
    assert back.deleted_at is None and lexical(vault, "spare key") == [item]
    assert vault.forgotten_items(OWNER).total == 0
    with pytest.raises(NotFound):
        vault.forgotten_item(OWNER, item)  # live again: not a forgotten item
    with pytest.raises(NotFound):
        vault.unforget(OWNER, item)


def test_a_forgotten_document_gets_its_chunks_back(vault: VaultService, tmp_path: Path) -> None:
    note = tmp_path / "garden.md"
    note.write_text("# Garden\nTomatoes need six hours of sun.\n")
    doc = vault.add_document(OWNER, note).item_id
    vault.forget(OWNER, doc)
    assert lexical(vault, "tomatoes") == []
    vault.unforget(OWNER, doc)
    assert lexical(vault, "tomatoes") == [doc]
    assert vault.show_document(OWNER, doc).chunks


def test_a_preference_is_not_unforgotten_over_a_newer_value(vault: VaultService) -> None:
    old = vault.set_preference(OWNER, "diet", "vegan").item.id
    vault.forget(OWNER, old)
    vault.set_preference(OWNER, "diet", "vegetarian")
    with pytest.raises(InvalidInput, match="has a value again"):
        vault.unforget(OWNER, old)
    assert vault.get_preference(OWNER, "diet").value == "vegetarian"


def test_only_the_owner_sees_or_unforgets_forgotten_items(vault: VaultService) -> None:
    item = vault.remember(OWNER, MemoryIn(text="private")).item.id
    vault.forget(OWNER, item)
    app = Principal.app("someapp")
    for call in (lambda: vault.forgotten_items(app), lambda: vault.forgotten_item(app, item), lambda: vault.unforget(app, item)):
        with pytest.raises(ScopeDenied):
            call()
    assert vault.forgotten_items(OWNER).total == 1


def test_an_upload_origin_is_the_documents_path(vault: VaultService, tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "notes.md", tmp_path / "b" / "notes.md"
    for path, words in ((first, "one"), (second, "two")):
        path.parent.mkdir()
        path.write_text(f"# Notes\n{words}\n")
    added = vault.add_document(OWNER, first, origin="upload:notes.md")
    again = vault.add_document(OWNER, second, origin="upload:notes.md")
    assert (added.action, again.action, again.item_id, again.path) == ("added", "replaced", added.item_id, "upload:notes.md")
