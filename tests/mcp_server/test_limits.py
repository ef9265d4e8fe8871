"""Argument caps and error codes at the MCP surface (issue 29): oversized input is one short error, no work."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import MCPError
from mcp.types import INVALID_PARAMS, TextContent

from schemas.limits import ERROR_CHARS, FILTER_ITEMS, ID_CHARS, KINDS, QUERY_CHARS
from tests.mcp_server.conftest import Connect

pytestmark = pytest.mark.anyio


def capped(schema: dict[str, Any], where: str) -> list[str]:
    """The places in a JSON schema where a string or a list has no upper bound."""
    found: list[str] = []
    for alternative in schema.get("anyOf", []):
        found += capped(alternative, where)
    kind = schema.get("type")
    if kind == "string" and "maxLength" not in schema and "enum" not in schema and "pattern" not in schema:
        found.append(where)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(where)
        found += capped(schema.get("items", {}), where + "[]")
    for name, sub in schema.get("properties", {}).items():
        found += capped(sub, f"{where}.{name}")
    return found


async def test_every_string_and_list_argument_of_every_tool_is_capped(connect: Connect) -> None:
    async with connect() as client:
        tools = (await client.list_tools()).tools
    unbounded = [place for tool in tools for place in capped(tool.input_schema, tool.name)]
    assert unbounded == []


async def test_a_kind_list_of_100000_strings_is_one_short_error(connect: Connect) -> None:
    async with connect() as client:
        for kind in (["bogus"] * 100_000, ["memory"] * 100_000):
            result = await client.call_tool("search_context", {"query": "coffee", "kind": kind})
            assert result.is_error
            assert isinstance(result.content[0], TextContent)
            text = result.content[0].text
            assert len(text) <= ERROR_CHARS + len("search_context: ")
            assert f"at most {KINDS} items" in text and "bogus" not in text


async def test_long_tag_and_space_lists_are_refused_before_any_search(connect: Connect) -> None:
    async with connect() as client:
        tags = await client.call_tool("search_context", {"query": "coffee", "tags": ["food"] * (FILTER_ITEMS + 1)})
        one_long = await client.call_tool("get_preferences", {"keys": ["k" * 10_000]})
        fine = await client.call_tool("search_context", {"query": "coffee", "tags": ["food"] * FILTER_ITEMS})
    assert tags.is_error and one_long.is_error
    assert not fine.is_error


async def test_a_wrongly_typed_argument_names_the_field_without_echoing_it(connect: Connect) -> None:
    async with connect() as client:
        result = await client.call_tool("remember", {"text": {"x" * 50_000: 1}})
    assert result.is_error and isinstance(result.content[0], TextContent)
    assert result.content[0].text.startswith("remember: invalid text:")
    assert len(result.content[0].text) < ERROR_CHARS


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("personalize", {}),  # a missing argument
        ("personalize", {"task": "x" * (QUERY_CHARS + 1)}),  # an argument past its cap
        ("no-such-prompt", {"task": "x"}),
        ("n" * 100_000, {}),
    ],
    ids=["missing", "too-long", "unknown", "huge-name"],
)
async def test_prompts_get_errors_are_invalid_params_not_code_0(connect: Connect, name: str, arguments: dict[str, str]) -> None:
    async with connect() as client:
        with pytest.raises(MCPError) as caught:
            await client.get_prompt(name, arguments)
    assert caught.value.error.code == INVALID_PARAMS
    assert len(caught.value.error.message) <= ERROR_CHARS


async def test_a_resource_uri_past_the_longest_item_id_is_refused_without_an_echo(connect: Connect, seeded: dict[str, str]) -> None:
    async with connect() as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource("vault://item/" + "x" * 100_000)
        with pytest.raises(MCPError) as too_long_id:
            await client.read_resource("vault://item/" + "x" * (ID_CHARS + 1))
        ok = await client.read_resource(f"vault://item/{seeded['coffee']}")
    assert caught.value.error.code == INVALID_PARAMS
    assert len(str(caught.value.error.model_dump())) < ERROR_CHARS
    assert too_long_id.value.error.code == INVALID_PARAMS
    assert ok.contents
