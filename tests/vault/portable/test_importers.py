"""One hand-written, realistic fixture per importer: detected, counted, mapped, idempotent."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.items import MAX_TAGS, MAX_TEXT_CHARS, Item, SearchQuery
from tests.vault.portable.conftest import FIXTURES
from vault import OWNER, VaultService
from vault.items import content_hash
from vault.portable.importers import detect
from vault.portable.records import ImportBatch, ItemRecord


def items(vault: VaultService) -> list[Item]:
    return vault.list_items(OWNER, limit=500).items


def imported_twice(vault: VaultService, path: Path, expected_format: str, new: int) -> None:
    """Detects the format, imports ``new`` items, and a second import changes nothing."""
    assert detect(path) == expected_format
    first = vault.import_source(OWNER, path)
    assert (first.detected, first.new) == (expected_format, new)
    second = vault.import_source(OWNER, path)
    assert (second.new, second.updated, second.unchanged) == (0, 0, new)


def test_mcp_memory_entities_and_relations_become_tagged_memories(source: VaultService) -> None:
    imported_twice(source, FIXTURES / "mcp-memory" / "memory.jsonl", "mcp-memory", 7)
    by_text = {i.text: i for i in items(source)}
    assert set(by_text["Ada Example: Prefers tea over coffee"].tags) == {"Ada_Example", "person"}
    relation = by_text["Ada Example works on Context Vault"]
    assert "relation" in relation.tags and relation.meta["relation"] == "works_on"
    assert all(i.provenance.source == "import:mcp-memory" for i in by_text.values())


def test_mem0_export_keeps_ids_categories_and_timestamps(source: VaultService) -> None:
    report = source.import_source(OWNER, FIXTURES / "mem0" / "export.json")
    assert (report.detected, report.new, [s.reason for s in report.skipped]) == ("mem0", 2, ["empty memory"])
    item = source.get_item(OWNER, "mem0-892db2ae-06d9-49e5-8b3e-585ef9b85b8e")
    assert item.text == "Is a vegetarian and allergic to nuts" and item.tags == ["food", "health"]
    assert item.provenance.created_at.isoformat() == "2025-02-10T14:03:21.412345-08:00"
    assert item.meta["user_id"] == "ada"
    assert source.import_source(OWNER, FIXTURES / "mem0" / "export.json").unchanged == 2


def test_markdown_folder_with_basic_memory_front_matter_becomes_documents(source: VaultService) -> None:
    folder = FIXTURES / "markdown"
    report = source.import_source(OWNER, folder, space="notes")
    assert (report.detected, report.new) == ("markdown", 3)
    assert [s.ref for s in report.skipped] == ["photo.png"]  # and the hidden .obsidian folder is ignored
    docs = {i.text: i for i in items(source)}
    coffee = docs["Coffee habits"]
    assert coffee.kind == "document" and coffee.space == "notes" and set(coffee.tags) == {"coffee", "morning-routine"}
    assert coffee.meta["front_matter"]["permalink"] == "notes/coffee-habits"  # type: ignore[index]
    assert set(docs["Context Vault"].tags) == {"project", "python"} and "reading-list" in docs
    hits = source.search(OWNER, SearchQuery(text="oat milk", mode="lexical")).hits
    assert hits and hits[0].item_id == coffee.id
    assert source.import_source(OWNER, folder, space="notes").unchanged == 3


def test_foreign_pam_file_keeps_ids_and_skips_superseded_memories(source: VaultService) -> None:
    path = FIXTURES / "pam" / "memory-store.json"
    report = source.import_source(OWNER, path)
    assert (report.detected, report.new, [s.ref for s in report.skipped]) == ("pam", 3, ["mem-003"])
    pref = source.get_item(OWNER, "mem-001")
    assert pref.kind == "memory" and pref.space == "work" and "preference" in pref.tags
    assert source.get_item(OWNER, "mem-004").valid_from is not None
    assert source.import_source(OWNER, path).unchanged == 3


@pytest.mark.parametrize(
    ("folder", "provider", "documents", "memories", "phrase"),
    [
        ("chatgpt", "chatgpt", 2, 0, "Príncipe Real"),
        ("claude", "claude", 1, 3, "long run on Sundays"),
        ("grok", "grok", 1, 0, "borrow checker"),
        ("gemini", "gemini", 1, 0, "Smokey"),
        ("copilot", "copilot", 1, 0, "Sweet Million"),
    ],
)
def test_provider_export_converts_conversations_to_documents_and_memories_to_memories(
    source: VaultService, folder: str, provider: str, documents: int, memories: int, phrase: str
) -> None:
    imported_twice(source, FIXTURES / folder, provider, documents + memories)
    kinds = [i.kind for i in items(source)]
    assert kinds.count("document") == documents and kinds.count("memory") == memories
    hits = source.search(OWNER, SearchQuery(text=phrase, mode="lexical")).hits
    assert hits and hits[0].kind == "document" and provider in hits[0].tags


def test_copilot_row_with_more_cells_than_the_header_keeps_its_message(source: VaultService, tmp_path: Path) -> None:
    """csv.DictReader files extra cells under the key None, which the converter lowercased (AttributeError)."""
    path = tmp_path / "copilot.csv"
    path.write_text(
        "Conversation,Time,Author,Message\n"
        "Garden plans,2025-06-01T09:00:00Z,user,Which tomatoes grow on a balcony?,extra,cells\n"
        "Garden plans,2025-06-01T09:00:05Z,AI\n"  # a short row: its message is missing, so it is left out
    )
    report = source.import_source(OWNER, path)
    assert (report.detected, report.new) == ("copilot", 1)
    hits = source.search(OWNER, SearchQuery(text="balcony", mode="lexical")).hits
    assert hits and hits[0].kind == "document"


def test_mem0_categories_that_are_not_a_list_give_no_tags(source: VaultService, tmp_path: Path) -> None:
    path = tmp_path / "mem0.json"
    path.write_text(
        json.dumps([{"id": "a", "memory": "likes tea", "categories": 5}, {"id": "b", "memory": "owns a cat", "categories": "pets"}])
    )
    report = source.import_source(OWNER, path)
    assert report.new == 2
    assert [i.tags for i in items(source)] == [[], []]


def test_gemini_entry_without_a_timezone_reimports_over_one_with_a_timezone(source: VaultService, tmp_path: Path) -> None:
    """A naive instant is read as UTC when the record is built, so the merge never compares naive with aware."""
    entries = json.loads((FIXTURES / "gemini" / "MyActivity.json").read_text())
    source.import_source(OWNER, FIXTURES / "gemini")
    entries[0]["time"] = "2025-05-02T12:00:00"  # a day later, without an offset
    folder = tmp_path / "gemini"
    folder.mkdir()
    (folder / "MyActivity.json").write_text(json.dumps(entries))
    report = source.import_source(OWNER, folder)
    assert (report.new, report.updated) == (0, 1)
    assert items(source)[0].provenance.updated_at == datetime(2025, 5, 2, 12, tzinfo=UTC)


def test_reimport_over_a_row_stored_without_a_timezone_reads_it_as_utc(source: VaultService, tmp_path: Path) -> None:
    """Vaults written before every record was aware may hold naive instants; the merge reads them as UTC."""
    source.import_source(OWNER, FIXTURES / "gemini")
    with source.store.transaction():
        source.store.execute("UPDATE items SET created_at = '2025-05-01T12:00:00', updated_at = '2025-05-01T12:00:00'")
    entries = json.loads((FIXTURES / "gemini" / "MyActivity.json").read_text())
    entries[0]["time"] = "2025-05-02T12:00:00Z"
    folder = tmp_path / "gemini"
    folder.mkdir()
    (folder / "MyActivity.json").write_text(json.dumps(entries))
    report = source.import_source(OWNER, folder)
    assert (report.new, report.updated) == (0, 1)


def test_notes_whose_file_names_are_not_utf8_import_under_readable_names(source: VaultService, tmp_path: Path) -> None:
    """os.fsdecode keeps such bytes as lone surrogates, which SQLite (and JSON) cannot store."""
    root = os.fsencode(tmp_path) + b"/notes\xfe"
    os.makedirs(root + b"/sub\xff")
    Path(os.fsdecode(root + b"/caf\xe9.md")).write_text("# Coffee\n\nOat milk, no sugar.")
    Path(os.fsdecode(root + b"/sub\xff/tea.md")).write_text("# Tea\n\nGreen, in the afternoon.")
    report = source.import_source(OWNER, Path(os.fsdecode(root)))
    assert (report.detected, report.new) == ("markdown", 2)
    assert json.loads(report.model_dump_json())["source"].endswith("notes\ufffd")
    docs = {i.text: i for i in items(source)}
    assert set(docs) == {"Coffee", "Tea"}
    assert docs["Coffee"].provenance.source == "import:markdown:caf\ufffd.md"


# -- one set of limits (issue 24): what `add` refuses, an import skips with the reason -----------

LONG = "x" * (MAX_TEXT_CHARS + 1)


def _pam_memory(memory_id: str, content: str) -> dict[str, object]:
    return {
        "id": memory_id, "type": "fact", "content": content, "content_hash": content_hash(content),
        "temporal": {"created_at": "2025-01-15T10:30:00Z"}, "provenance": {"platform": "chatgpt"},
    }  # fmt: skip


def _write_source(fmt: str, folder: Path) -> Path:
    """A source of ``fmt`` with one memory within the limits and one past the text limit."""
    match fmt:
        case "mem0":
            path = folder / "mem0.json"
            path.write_text(json.dumps({"results": [{"id": "fine", "memory": "I like jazz"}, {"id": "long", "memory": LONG}]}))
        case "mcp-memory":
            path = folder / "memory.jsonl"
            path.write_text(json.dumps({"type": "entity", "name": "Ada", "entityType": "person", "observations": ["Likes jazz", LONG]}))
        case "pam":
            path = folder / "memory-store.json"
            memories = [_pam_memory("fine", "Likes jazz"), _pam_memory("long", LONG)]
            path.write_text(
                json.dumps({"schema": "portable-ai-memory", "schema_version": "1.0", "owner": {"id": "ada"}, "memories": memories})
            )
        case _:
            raise AssertionError(fmt)
    return path


@pytest.mark.parametrize("fmt", ["mem0", "mcp-memory", "pam"])
def test_an_import_skips_a_memory_longer_than_add_accepts_and_says_why(source: VaultService, tmp_path: Path, fmt: str) -> None:
    path = _write_source(fmt, tmp_path)
    dry = source.import_source(OWNER, path, dry_run=True)
    report = source.import_source(OWNER, path)
    assert (dry.new, report.new) == (1, 1)
    assert (
        [s.reason for s in report.skipped]
        == [s.reason for s in dry.skipped]
        == [
            f"memory: text is {len(LONG) + (len('Ada: ') if fmt == 'mcp-memory' else 0):,} characters; the limit is 100,000 "
            "(add it as a document to keep it whole)"
        ]
    )
    stored = items(source)
    assert len(stored) == 1 and len(stored[0].text) < 100


def test_an_import_skips_records_past_the_tag_and_text_limits_of_every_kind(source: VaultService) -> None:
    stamp = datetime(2025, 1, 1, tzinfo=UTC)
    records = (
        ItemRecord(id="ok", kind="memory", text="I like jazz", space="personal", created_at=stamp, updated_at=stamp),
        ItemRecord(id="tags", kind="memory", text="Many tags", space="personal", created_at=stamp, updated_at=stamp,
                   tags=tuple(f"t{n}" for n in range(MAX_TAGS + 1))),
        ItemRecord(id="pref", kind="preference", key="bio", text=LONG, space="personal", created_at=stamp, updated_at=stamp),
    )  # fmt: skip
    report = source.import_items(OWNER, ImportBatch("bundle", "test", records))
    assert report.new == 1 and [(s.ref, s.reason) for s in report.skipped] == [
        ("tags", f"memory: {MAX_TAGS + 1} tags; the limit is {MAX_TAGS}"),
        ("pref", "preference: text is 100,001 characters; the limit is 100,000 (add it as a document to keep it whole)"),
    ]
    assert [i.id for i in items(source)] == ["ok"]


def test_a_note_longer_than_the_text_limit_is_imported_as_a_chunked_document(source: VaultService, tmp_path: Path) -> None:
    note = tmp_path / "notes" / "long.md"
    note.parent.mkdir()
    note.write_text("# Long note\n\n" + "A sentence about the garden. " * 4000)
    report = source.import_source(OWNER, note.parent)
    assert (report.new, report.skipped) == (1, [])
    (doc,) = items(source)
    assert doc.kind == "document" and len(source.show_document(OWNER, doc.id).chunks) > 1
