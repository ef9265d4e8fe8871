"""Claude and Gemini exports in their published layouts (issue 28)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.items import Item
from schemas.portable import Selection
from tests.vault.portable.conftest import FIXTURES
from vault import OWNER, VaultService
from vault.errors import NothingToImport
from vault.portable.importers import detect


def _items(vault: VaultService) -> list[Item]:
    return vault.list_items(OWNER, limit=500).items


def _text(vault: VaultService, item_id: str) -> str:
    return "\n".join(vault.show_document(OWNER, item_id).chunks)


CLAUDE_CONV = "claude-c0ffee00-0000-4000-8000-000000000001"


def test_claude_follows_the_live_branch_and_keeps_attachment_text(source: VaultService) -> None:
    report = source.import_source(OWNER, FIXTURES / "claude-branches")
    assert report.detected == "claude"
    text = _text(source, CLAUDE_CONV)
    assert "ABANDONED RETRY" not in text and "1 message(s) on abandoned branches" in text
    assert "rain jacket" in text and "wool socks" in text and "packing.txt" in text  # extracted_content kept
    assert "ticket.pdf" in text


def test_claude_empty_text_uses_the_text_block_never_the_thinking(source: VaultService) -> None:
    source.import_source(OWNER, FIXTURES / "claude-branches")
    text = _text(source, CLAUDE_CONV)
    assert "Add a warm hat and gloves" in text and "Bring snacks" in text
    assert "SECRET THINKING" not in text and "ONLY THINKING" not in text


def test_claude_project_docs_are_chunked_documents_and_instructions_a_memory(source: VaultService) -> None:
    report = source.import_source(OWNER, FIXTURES / "claude-branches")
    assert [(s.ref, s.reason) for s in report.skipped] == [("empty.md", "project doc without text")]
    doc = source.get_item(OWNER, "claude-projdoc-d0c00000-0000-4000-8000-000000000001")
    assert doc.kind == "document" and doc.text == "Alps 2025: trail-notes.md"
    assert len(source.show_document(OWNER, doc.id).chunks) > 10  # 125,801 characters: chunked, not one memory
    project = source.get_item(OWNER, "claude-project-a1b2c3d4-0000-4000-8000-00000000000a")
    assert project.kind == "memory" and "distances in km" in project.text
    assert source.get_item(OWNER, "claude-memory").text == "Ada is planning a hut-to-hut hike in the Alps."
    assert source.import_source(OWNER, FIXTURES / "claude-branches").new == 0


def test_gemini_takeout_prompted_titles_and_safe_html_become_conversations(source: VaultService) -> None:
    path = FIXTURES / "gemini-takeout"
    assert detect(path) == "gemini"
    report = source.import_source(OWNER, path)
    assert report.new == 2  # two sessions: 8:00-8:10 on 2 June, and 5 June
    assert sorted(s.reason for s in report.skipped) == ["not a prompt: 'Gave feedback: Good response'", "not a prompt: 'Used Gemini Apps'"]
    (first,) = [i for i in _items(source) if i.text == "What should I feed a sourdough starter?"]
    text = _text(source, first.id)
    assert "equal weights of flour & water daily" in text and "Rye speeds it up" in text and "5 to 7 days" in text
    assert "<p>" not in text and "alert(" not in text and "&amp;" not in text
    assert "How long until it is ready?" in text and "starter.jpg" in text


def test_a_gemini_file_with_nothing_readable_says_so_and_fails(source: VaultService, tmp_path: Path) -> None:
    events = [{"header": "Gemini Apps", "title": "Used Gemini Apps", "time": "2025-06-02T08:11:00.000Z"}]
    (tmp_path / "MyActivity.json").write_text(json.dumps(events))
    with pytest.raises(NothingToImport, match=r"nothing to import as gemini: every record was skipped \(1 × not a prompt"):
        source.import_source(OWNER, tmp_path)
    assert NothingToImport.exit_code == 24 and _items(source) == []


def test_pam_convert_output_of_gemini_html_imports_its_conversations(source: VaultService) -> None:
    """tests/fixtures/importers/pam-conversations is `pam convert gemini-html -o pam-conversations`."""
    path = FIXTURES / "pam-conversations"
    assert detect(path) == "pam"
    report = source.import_source(OWNER, path)
    assert (report.new, report.skipped) == (1, [])
    (doc,) = _items(source)
    assert doc.kind == "document" and "gemini" in doc.tags and "regrows from the roots" in _text(source, doc.id)
    assert source.import_source(OWNER, path).unchanged == 1


def test_a_pam_conversation_its_model_rejects_is_skipped_with_the_reason(source: VaultService, tmp_path: Path) -> None:
    folder = tmp_path / "pam"
    (folder / "conversations").mkdir(parents=True)
    store = (FIXTURES / "pam-conversations" / "memory-store.json").read_bytes()
    (folder / "memory-store.json").write_bytes(store)
    good = next((FIXTURES / "pam-conversations" / "conversations").glob("*.json")).read_bytes()
    (folder / "conversations" / "good.json").write_bytes(good)
    (folder / "conversations" / "bad.json").write_text(json.dumps({"schema": "portable-ai-memory-conversation", "id": 5}))
    report = source.import_source(OWNER, folder)
    assert report.new == 1 and [s.ref for s in report.skipped] == ["conversations/bad.json"]
    assert report.skipped[0].reason.startswith("not a PAM conversation")


def test_imported_conversations_are_exported_as_pam_conversations_and_read_back(
    source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path
) -> None:
    source.import_source(OWNER, FIXTURES / "chatgpt-branches")
    out = tmp_path / "plain"
    source.export_bundle(OWNER, Selection(), out, plaintext=True)
    store = json.loads((out / "memory-store.json").read_text())
    index = {e["id"]: e for e in store["conversations_index"]}
    assert sorted(index) == ["66f1e2d3-0000-4aaa-8bbb-000000000001", "66f1e2d3-0000-4aaa-8bbb-000000000002"]
    conv = json.loads((out / index["66f1e2d3-0000-4aaa-8bbb-000000000001"]["storage"]["ref"]).read_text())
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant", "user", "assistant", "tool", "assistant"]
    assert conv["messages"][4]["content"]["text"] == "```\n360\n```"
    pam_cli = Path(sys.executable).with_name("pam")
    done = subprocess.run([str(pam_cli), "validate", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr  # PAM's own validator accepts the export
    other = make_vault()
    report = other.import_source(OWNER, out, "pam")  # a PAM reader sees the conversations: same ids
    docs = {i.id for i in other.list_items(OWNER, limit=50).items if i.kind == "document"}
    assert docs == {"chatgpt-66f1e2d3-0000-4aaa-8bbb-000000000001", "chatgpt-66f1e2d3-0000-4aaa-8bbb-000000000002"}
    assert report.by_kind["document"] == 2
