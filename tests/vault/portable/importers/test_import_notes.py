"""Notes folders (Obsidian, basic-memory) as users keep them (issue 28)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vault.portable.conftest import FIXTURES
from vault import OWNER, VaultService
from vault.errors import BadBundle
from vault.portable.importers import detect, read_source
from vault.portable.importers.markdown import front_matter

NOTE = "---\ntitle: Garden log\npermalink: garden/log\ndescription: >\n  Weekly notes on\n  the balcony garden.\ntags:\n  - garden\n---\n\n# Garden log\n\nBasil is flowering.\n"


def test_front_matter_with_a_bom_and_crlf_and_a_folded_description_is_parsed() -> None:
    meta, body = front_matter("\ufeff" + NOTE.replace("\n", "\r\n"))
    assert meta == {
        "title": "Garden log",
        "permalink": "garden/log",
        "description": "Weekly notes on the balcony garden.",
        "tags": ["garden"],
    }
    assert body.startswith("# Garden log") and "\r" not in body and "---" not in body


def test_front_matter_that_is_not_a_mapping_or_not_yaml_stays_in_the_body() -> None:
    for text in ("---\n- a list\n---\nbody", "---\nkey: [unclosed\n---\nbody", "---\n!!python/object:os.system x\n---\nbody"):
        meta, body = front_matter(text)
        assert meta == {} and body == text


@given(st.text(max_size=300))
def test_front_matter_never_raises(text: str) -> None:
    meta, body = front_matter("---\n" + text + "\n---\nbody")
    assert isinstance(meta, dict) and isinstance(body, str)


def test_a_note_edited_and_reimported_updates_its_item_and_keeps_the_previous_version(source: VaultService, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "log.md").write_text(NOTE)
    first = source.import_source(OWNER, notes)
    assert first.new == 1
    (notes / "log.md").write_text(NOTE.replace("Basil is flowering.", "Basil is flowering; the tomatoes are red."))
    second = source.import_source(OWNER, notes)
    assert (second.new, second.updated) == (0, 1)
    (doc,) = source.list_items(OWNER, limit=10).items
    assert doc.meta["front_matter"]["description"] == "Weekly notes on the balcony garden."  # type: ignore[index]
    assert any("tomatoes are red" in c for c in source.show_document(OWNER, doc.id).chunks)
    assert len(source.item_history(OWNER, doc.id).versions) == 1  # the version before the edit is kept


def test_a_note_moved_but_keeping_its_permalink_is_the_same_item(source: VaultService, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    (notes / "old").mkdir(parents=True)
    (notes / "old" / "log.md").write_text(NOTE)
    source.import_source(OWNER, notes)
    (notes / "new").mkdir()
    shutil.move(notes / "old" / "log.md", notes / "new" / "log.md")
    (notes / "new" / "log.md").write_text(NOTE + "\nMoved.\n")
    report = source.import_source(OWNER, notes)
    assert (report.new, report.updated) == (0, 1)


def test_a_folder_that_holds_no_notes_is_refused_unless_named_with_from(tmp_path: Path) -> None:
    code = tmp_path / "site-packages"
    (code / "pkg").mkdir(parents=True)
    for n in range(20):
        (code / "pkg" / f"m{n}.py").write_text("x = 1\n")
    (code / "pkg" / "README.md").write_text("# pkg\n\nA package.\n")
    (code / "LICENSE.txt").write_text("MIT\n")
    with pytest.raises(BadBundle, match=r"does not look like a notes folder.*--from"):
        detect(code)
    batch = read_source(code, "markdown")  # named explicitly: its notes are read, the rest skipped with a reason
    assert len(batch.records) == 2


def test_an_obsidian_vault_and_a_folder_of_notes_are_detected(tmp_path: Path) -> None:
    assert detect(FIXTURES / "markdown") == "markdown"  # has .obsidian/
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.md").write_text("# A\n\ntext\n")
    (plain / "b.txt").write_text("text\n")
    (plain / "c.png").write_bytes(b"\x89PNG")
    assert detect(plain) == "markdown"
