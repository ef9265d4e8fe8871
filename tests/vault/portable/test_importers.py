"""One hand-written, realistic fixture per importer: detected, counted, mapped, idempotent."""

from __future__ import annotations

import json
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
