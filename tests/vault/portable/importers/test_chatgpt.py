"""ChatGPT exports as users have them (issue 28): the live branch, code and tool output, reasoning apart,
memories and custom instructions, and a huge conversation that no longer refuses the import."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from schemas.items import Item
from tests.vault.portable.conftest import FIXTURES
from vault import OWNER, VaultService
from vault.portable.importers import chatgpt, claude, gemini, read_source
from vault.portable.records import MAX_TEXT_CHARS, ItemRecord

BRANCHES = FIXTURES / "chatgpt-branches"
KEYS = ["mapping", "current_node", "message", "parent", "children", "content", "content_type", "parts", "text", "author", "role",
        "recipient", "create_time", "id", "chat_messages", "uuid", "parent_message_uuid", "attachments", "extracted_content",
        "sender", "created_at", "time", "title", "safeHtmlItem", "html", "details", "name", "value", "x1"]  # fmt: skip


def _items(vault: VaultService) -> list[Item]:
    return vault.list_items(OWNER, limit=500).items


def _transcript(vault: VaultService, title: str) -> str:
    (doc,) = [i for i in _items(vault) if i.kind == "document" and i.text == title]
    return "\n".join(vault.show_document(OWNER, doc.id).chunks)


def test_only_the_branch_ending_at_current_node_forms_the_transcript(source: VaultService) -> None:
    report = source.import_source(OWNER, BRANCHES)
    assert report.detected == "chatgpt" and report.skipped == []
    text = _transcript(source, "Balcony tomatoes")
    assert "About 2 litres per plant" in text and "360 litres in total" in text
    assert "ABANDONED" not in text and "EDITED AWAY" not in text
    assert "3 message(s) on abandoned branches" in text  # counted, and said so in the transcript
    (doc,) = [i for i in _items(source) if i.text == "Balcony tomatoes"]
    assert doc.meta["abandoned_messages"] == 3 and doc.meta["reasoning_dropped"] == 2


def test_code_and_execution_output_are_kept_and_reasoning_is_not_shown_as_the_answer(source: VaultService) -> None:
    source.import_source(OWNER, BRANCHES)
    text = _transcript(source, "Balcony tomatoes")
    assert "print(12 * 15 * 2)" in text and "python output" in text and "360" in text
    assert "SECRET REASONING" not in text and "Thought for 12 seconds" not in text
    assert "Model set context updated" not in text  # the bio tool's acknowledgement is not a turn


def test_bio_writes_and_saved_memories_become_memories_and_custom_instructions_preferences(source: VaultService) -> None:
    report = source.import_source(OWNER, BRANCHES)
    assert report.by_kind == {"document": 2, "memory": 3, "preference": 2}
    memory = source.get_item(OWNER, "chatgpt-bio-bio")
    assert memory.text == "Grows tomatoes on a balcony in Porto." and set(memory.tags) == {"chatgpt", "bio"}
    assert memory.provenance.source == "import:chatgpt" and str(memory.meta["conversation_id"]).endswith("0001")
    prefs = {i.key: i for i in _items(source) if i.kind == "preference"}
    assert prefs["chatgpt.about_me"].text == "I am a hobby gardener in Porto and I cook vegetarian."
    assert prefs["chatgpt.instructions"].text == "Answer briefly, metric units, no emoji."  # not the OLD ones
    saved = sorted((i.text, i.provenance.created_at.date().isoformat()) for i in _items(source) if "saved-memory" in i.tags)
    assert saved == [("Has a balcony garden in Porto.", "2024-05-28"), ("Is vegetarian.", "2024-05-20")]  # model_editable_context
    again = source.import_source(OWNER, BRANCHES)
    assert (again.new, again.updated) == (0, 0)


def test_one_huge_conversation_is_split_into_parts_and_the_others_still_import(source: VaultService, tmp_path: Path) -> None:
    conversations = json.loads((BRANCHES / "conversations.json").read_text())
    answer = "The river bends past the old mill and the orchard. " * 31_200  # 1.59M characters in one answer
    assert len(answer) > 1_590_000
    conversations[1]["mapping"]["o-a"]["message"]["content"]["parts"] = [answer]
    (tmp_path / "conversations.json").write_text(json.dumps(conversations))
    batch = read_source(tmp_path)
    parts = [r for r in batch.records if r.document and r.document.path.startswith("chatgpt:66f1e2d3-0000-4aaa-8bbb-000000000002")]
    assert len(parts) == 3 and all(len(r.document.text or "") <= MAX_TEXT_CHARS for r in parts if r.document)
    assert [r.text for r in parts] == [f"Old chat (part {n} of 3)" for n in (1, 2, 3)]  # the question, then the answer in two
    assert "".join((r.document.text or "") for r in parts if r.document).count("old mill") == 31_200
    report = source.import_items(OWNER, batch)
    assert report.new == len(batch.records) and report.skipped == []


def test_a_malformed_conversation_is_skipped_with_its_reason(source: VaultService, tmp_path: Path) -> None:
    conversations = json.loads((BRANCHES / "conversations.json").read_text())
    conversations.append({"id": "broken", "mapping": {"x": {"message": {"create_time": "yesterday", "author": {"role": "user"},
                          "content": {"content_type": "text", "parts": ["hi"]}}, "parent": None, "children": []}},
                          "current_node": "x"})  # fmt: skip
    (tmp_path / "conversations.json").write_text(json.dumps(conversations))
    report = source.import_source(OWNER, tmp_path)
    assert report.new == 7
    assert [(s.ref, s.reason) for s in report.skipped] == [
        ("broken", "unreadable conversation: TypeError: time 'yesterday' is not a number")
    ]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=40,
)


@given(st.lists(_JSON, max_size=4))
def test_the_readers_skip_what_they_cannot_read_and_never_raise(data: list[object]) -> None:
    """Any JSON in the provider's shape: each reader returns records and skips, it never raises."""
    for records, skipped in (chatgpt.read(data, None), claude.read(data, Path("/nonexistent"), None), gemini.read(data, None)):
        assert all(isinstance(r, ItemRecord) for r in records) and all(s.reason for s in skipped)


_FIXTURES = {
    "chatgpt": json.loads((BRANCHES / "conversations.json").read_text()),
    "claude": json.loads((FIXTURES / "claude-branches" / "conversations.json").read_text()),
    "gemini": json.loads((FIXTURES / "gemini-takeout" / "MyActivity.json").read_text()),
}


def _dicts(value: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            found.append(v)
            stack += list(v.values())
        elif isinstance(v, list):
            stack += v
    return found


@given(st.sampled_from(sorted(_FIXTURES)), st.data())
def test_a_fixture_with_one_field_replaced_by_anything_never_raises(provider: str, data: st.DataObject) -> None:
    """A real layout with one object's field swapped for arbitrary JSON: skipped or read, never an exception."""
    export = json.loads(json.dumps(_FIXTURES[provider]))
    target = data.draw(st.sampled_from(_dicts(export)))
    target[data.draw(st.sampled_from(KEYS))] = data.draw(_JSON)
    reader = {"chatgpt": chatgpt.read, "gemini": gemini.read}.get(provider)
    records, skipped = reader(export, None) if reader else claude.read(export, Path("/nonexistent"), None)
    assert all(isinstance(r, ItemRecord) for r in records) and all(s.reason for s in skipped)
