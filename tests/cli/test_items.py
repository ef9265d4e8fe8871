from __future__ import annotations

import json
import re
from pathlib import Path

from schemas.items import MAX_TAGS, MAX_TEXT_CHARS
from tests.cli.conftest import Invoke


def test_add_then_show_and_list_as_json(ctxvault: Invoke, initialised: str) -> None:
    added = ctxvault("add", "I prefer window seats", "--space", "travel", "--tag", "flights", "--sensitivity", "medium", "--json")
    assert added.exit_code == 0, added.output
    item = json.loads(added.stdout)["item"]
    shown = json.loads(ctxvault("show", item["id"], "--json").stdout)
    assert (shown["text"], shown["space"], shown["tags"], shown["sensitivity"]) == (
        "I prefer window seats",
        "travel",
        ["flights"],
        "medium",
    )
    listed = json.loads(ctxvault("list", "--kind", "memory", "--json").stdout)
    assert listed["total"] == 1 and listed["items"][0]["id"] == item["id"]


def test_add_says_plainly_that_a_similar_memory_was_kept(ctxvault: Invoke, initialised: str) -> None:
    first = json.loads(ctxvault("add", "Meeting with Bob on Monday about the budget", "--json").stdout)["item"]["id"]
    second = ctxvault("add", "Meeting with Bob on Tuesday about the budget")
    assert second.exit_code == 0 and second.stdout.startswith("added ")
    assert re.search(rf"similar to {first} \(0\.9\d\) .*: kept both", second.stdout), second.stdout
    assert json.loads(ctxvault("list", "--json").stdout)["total"] == 2


def test_add_merge_updates_the_similar_memory_and_no_merge_always_adds(ctxvault: Invoke, initialised: str) -> None:
    first = json.loads(ctxvault("add", "Meeting with Bob on Monday about the budget", "--json").stdout)["item"]["id"]
    merged = ctxvault("add", "Meeting with Bob on Tuesday about the budget", "--merge")
    assert merged.exit_code == 0 and merged.stdout.startswith(f"updated {first} ")
    kept = ctxvault("add", "meeting with Bob on Tuesday, about the budget!", "--no-merge", "--json")
    assert json.loads(kept.stdout)["action"] == "added"
    assert json.loads(ctxvault("list", "--json").stdout)["total"] == 2


def test_add_with_a_bad_sensitivity_is_a_usage_error(ctxvault: Invoke, initialised: str) -> None:
    assert ctxvault("add", "x", "--sensitivity", "secret").exit_code == 2
    assert ctxvault("add", "x", "--tag", "has space").exit_code == 8
    too_many = [arg for n in range(MAX_TAGS + 1) for arg in ("--tag", f"t{n}")]
    assert ctxvault("add", "x", *too_many).exit_code == 8
    assert ctxvault("add", "x" * (MAX_TEXT_CHARS + 1)).exit_code == 14
    assert json.loads(ctxvault("list", "--json").stdout)["total"] == 0


def test_show_of_a_missing_item_exits_with_not_found(ctxvault: Invoke, initialised: str) -> None:
    result = ctxvault("show", "01NOTANITEM")
    assert result.exit_code == 3
    assert "no item" in result.stderr


def test_search_finds_and_json_lists_hits(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("add", "Our wifi password hint is the dog's name")
    hits = json.loads(ctxvault("search", "wifi", "--mode", "lexical", "--json").stdout)["hits"]
    assert hits[0]["text"] == "Our wifi password hint is the dog's name"
    assert "[wifi]" in ctxvault("search", "wifi", "--mode", "lexical").stdout
    assert ctxvault("search", "wifi", "--mode", "psychic").exit_code == 2


def test_edit_forget_and_purge(ctxvault: Invoke, initialised: str) -> None:
    item_id = json.loads(ctxvault("add", "old text", "--json").stdout)["item"]["id"]
    assert ctxvault("edit", item_id, "--text", "new text").exit_code == 0
    assert json.loads(ctxvault("show", item_id, "--json").stdout)["text"] == "new text"
    assert ctxvault("edit", item_id).exit_code == 2
    assert ctxvault("forget", item_id).exit_code == 0
    assert ctxvault("show", item_id).exit_code == 3
    assert ctxvault("forget", item_id).exit_code == 3
    purged = ctxvault("purge", "--yes", "--json")
    assert json.loads(purged.stdout) == {"purged": 1}
    assert ctxvault("purge", input="n\n").exit_code == 1


def test_spaces_counts_items(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("add", "a work fact", "--space", "work")
    rows = json.loads(ctxvault("spaces", "--json").stdout)
    assert rows == [{"space": "work", "memories": 1, "preferences": 0, "documents": 0}]
    assert ctxvault("add", "x", "--space", "Bad Space").exit_code == 8


def test_history_lists_the_previous_version_and_restore_brings_it_back(ctxvault: Invoke, initialised: str) -> None:
    item = json.loads(ctxvault("add", "Meeting with Bob on Monday", "--json").stdout)["item"]
    assert ctxvault("edit", item["id"], "--text", "Meeting with Bob on Tuesday").exit_code == 0
    shown = ctxvault("history", item["id"])
    assert shown.exit_code == 0 and "v1" in shown.stdout and "Monday" in shown.stdout and "current" in shown.stdout
    assert shown.stdout.count("[personal]") == 2  # each version's space, printed as text, not eaten as rich markup
    found = json.loads(ctxvault("history", item["id"], "--json").stdout)
    assert [v["text"] for v in found["versions"]] == ["Meeting with Bob on Monday"] and found["current_version"] == 2
    restored = ctxvault("restore", item["id"], "--version", "1", "--json")
    assert restored.exit_code == 0 and json.loads(restored.stdout)["text"] == "Meeting with Bob on Monday"
    assert len(json.loads(ctxvault("history", item["id"], "--json").stdout)["versions"]) == 2
    assert ctxvault("restore", item["id"], "--version", "9").exit_code == 3


def test_history_names_a_documents_earlier_file_and_restore_brings_its_content_back(
    ctxvault: Invoke, initialised: str, tmp_path: Path
) -> None:
    path = tmp_path / "plan.md"
    path.write_text("# Plan\n\nFly to Oslo on Friday\n")
    item_id = json.loads(ctxvault("doc", "add", str(path), "--json").stdout)["item_id"]
    path.write_text("# Plan\n\nTake the night train to Oslo instead\n")
    assert ctxvault("doc", "add", str(path)).exit_code == 0
    shown = ctxvault("history", item_id)
    assert shown.exit_code == 0 and "file plan.md (" in shown.stdout
    assert ctxvault("restore", item_id, "--version", "1").exit_code == 0
    assert "Fly to Oslo" in ctxvault("doc", "show", item_id).stdout
