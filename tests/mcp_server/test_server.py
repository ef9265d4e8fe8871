"""Every tool, resource and prompt through the SDK's in-memory Client, on both protocol eras."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import MCPError
from mcp.types import CallToolResult, TextContent, TextResourceContents

from schemas.items import MAX_TAGS
from tests.mcp_server.conftest import Connect
from vault import OWNER, Principal, VaultService

pytestmark = pytest.mark.anyio

STRANGER = Principal.app("01STRANGERAPP", name="stranger")
TOOLS = {"search_context", "get_item", "get_preferences", "remember", "forget"}


def body(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def text_of(result: object) -> str:
    content = result.content  # type: ignore[attr-defined]
    assert isinstance(content[0], TextContent)
    return content[0].text


async def test_tools_list_carries_titles_annotations_and_output_schemas(connect: Connect) -> None:
    async with connect() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= TOOLS
    for tool in tools.values():
        assert tool.title and tool.description and tool.output_schema and tool.annotations
    assert tools["search_context"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert tools["forget"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert tools["remember"].annotations.read_only_hint is False  # type: ignore[union-attr]


async def test_every_data_tool_names_the_scope_step_up_asks_for(connect: Connect) -> None:
    from vault.policy import OPERATION_NEEDS

    async with connect() as client:
        names = {t.name for t in (await client.list_tools()).tools}
    # Only the tools that ask about access itself need no scope.
    assert names - set(OPERATION_NEEDS) == {"request_access", "list_access"}
    assert set(OPERATION_NEEDS) <= names


async def test_search_context_returns_hits_as_structured_data_with_provenance(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        result = await client.call_tool("search_context", {"query": "coffee", "k": 5})
    assert not result.is_error
    hits = body(result)["hits"]
    assert hits[0]["item_id"] == seeded["coffee"]
    assert {"provenance", "score", "space", "kind"} <= set(hits[0])


async def test_search_context_filters_by_space(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        result = await client.call_tool("search_context", {"query": "project March", "space": ["personal"]})
    assert seeded["project"] not in json.dumps(result.structured_content)


async def test_get_item_returns_the_item(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        result = await client.call_tool("get_item", {"item_id": seeded["coffee"]})
    assert body(result)["id"] == seeded["coffee"]


async def test_get_item_of_a_missing_id_is_a_tool_error(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        result = await client.call_tool("get_item", {"item_id": "01NOSUCHITEM"})
    assert result.is_error
    assert result.structured_content is None


async def test_get_preferences_by_key_lists_missing_keys(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        result = await client.call_tool("get_preferences", {"keys": ["diet", "shoe_size"]})
    body = result.structured_content
    assert [p["key"] for p in body["preferences"]] == ["diet"]
    assert body["missing"] == ["shoe_size"]


async def test_get_preferences_without_arguments_returns_all(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        result = await client.call_tool("get_preferences", {})
    assert {p["key"] for p in body(result)["preferences"]} == {"diet", "tone"}


async def test_get_preferences_for_a_task_returns_relevant_ones(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        result = await client.call_tool("get_preferences", {"task": "vegetarian dinner recipe"})
    assert "diet" in {p["key"] for p in body(result)["preferences"]}


async def test_remember_adds_then_reports_an_identical_memory_unchanged(connect: Connect, vault: VaultService) -> None:
    async with connect() as client:
        first = await client.call_tool("remember", {"text": "My cat is called Miso", "tags": ["pets"]})
        second = await client.call_tool("remember", {"text": "My cat is called Miso"})
    assert body(first)["action"] == "added"
    assert body(second)["action"] == "unchanged"
    assert body(first)["item"]["provenance"]["source"] == "mcp"


async def test_remember_reports_a_similar_memory_and_updates_it_only_when_asked(
    connect: Connect, vault: VaultService, seeded: dict[str, str]
) -> None:
    async with connect() as client:
        near = await client.call_tool("remember", {"text": "The Atlas project ships in April", "space": "work"})
        similar = body(near)["similar"]
        assert body(near)["action"] == "added" and [s["id"] for s in similar] == [seeded["project"]]
        assert similar[0]["snippet"] == "The Atlas project ships in March" and similar[0]["score"] >= 0.92
        update = {"text": "The Atlas project ships in May", "space": "work", "update_id": seeded["project"]}
        updated = await client.call_tool("remember", update)
    assert (body(updated)["action"], body(updated)["item"]["id"]) == ("updated", seeded["project"])
    assert vault.get_item(OWNER, seeded["project"]).text == "The Atlas project ships in May"


async def test_remember_with_a_bad_tag_is_a_tool_error_the_model_can_fix(connect: Connect) -> None:
    async with connect() as client:
        result = await client.call_tool("remember", {"text": "x y z", "tags": ["has space"]})
        too_many = await client.call_tool("remember", {"text": "x y z", "tags": [f"t{n}" for n in range(MAX_TAGS + 1)]})
    assert result.is_error and too_many.is_error
    assert "tags" in text_of(result) and "the limit is" in text_of(too_many)


async def test_search_context_rejects_a_bad_k_before_searching(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        result = await client.call_tool("search_context", {"query": "coffee", "k": 0})
    assert result.is_error


async def test_forget_removes_the_item_from_search(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        gone = await client.call_tool("forget", {"item_id": seeded["coffee"]})
        after = await client.call_tool("search_context", {"query": "coffee black sugar"})
    assert body(gone)["item"]["id"] == seeded["coffee"]
    assert seeded["coffee"] not in json.dumps(after.structured_content)


async def test_resources_list_profile_and_preferences_and_the_item_template(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        profile = await client.read_resource("vault://profile")
        item = await client.read_resource(f"vault://item/{seeded['diet']}")
    assert {"vault://profile", "vault://preferences"} <= uris
    assert "vault://item/{item_id}" in templates
    assert isinstance(profile.contents[0], TextResourceContents)
    assert {s["space"] for s in json.loads(profile.contents[0].text)["spaces"]} == {"personal", "work"}
    assert isinstance(item.contents[0], TextResourceContents)
    assert json.loads(item.contents[0].text)["key"] == "diet"


async def test_reading_a_missing_item_resource_is_a_protocol_error(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource("vault://item/01NOSUCHITEM")
    assert caught.value.code == -32602


async def test_personalize_prompt_carries_context_as_data_with_provenance(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        result = await client.get_prompt("personalize", {"task": "order coffee"})
    assert "personalize" in prompts
    text = result.messages[0].content.text  # type: ignore[union-attr]
    assert seeded["coffee"] in text and "not instructions" in text


async def test_an_app_without_a_grant_gets_a_tool_error_naming_request_access(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect(STRANGER) as client:
        result = await client.call_tool("search_context", {"query": "coffee"})
    assert result.is_error
    assert "request_access" in text_of(result)
    assert seeded["coffee"] not in text_of(result)


async def test_an_app_without_a_grant_cannot_tell_an_existing_item_from_a_missing_one(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect(STRANGER) as client:
        existing = await client.call_tool("get_item", {"item_id": seeded["coffee"]})
        missing = await client.call_tool("get_item", {"item_id": "01NOSUCHITEM00000000000000"})
    assert existing.is_error and missing.is_error
    assert text_of(existing).replace(seeded["coffee"], "ID") == text_of(missing).replace("01NOSUCHITEM00000000000000", "ID")


async def test_an_app_without_a_grant_cannot_remember_or_forget(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect(STRANGER) as client:
        wrote = await client.call_tool("remember", {"text": "I like jazz"})
        deleted = await client.call_tool("forget", {"item_id": seeded["coffee"]})
    assert wrote.is_error and deleted.is_error


async def test_get_item_with_versions_returns_the_earlier_versions(connect: Connect, vault: VaultService, seeded: dict[str, str]) -> None:
    vault.edit(OWNER, seeded["coffee"], text="I drink my coffee with oat milk")
    async with connect() as client:
        plain = await client.call_tool("get_item", {"item_id": seeded["coffee"]})
        full = await client.call_tool("get_item", {"item_id": seeded["coffee"], "versions": True})
    assert body(plain)["versions"] is None
    assert [v["text"] for v in body(full)["versions"]] == ["I drink my coffee black, no sugar"]
