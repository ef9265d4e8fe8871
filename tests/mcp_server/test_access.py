"""Grants, consent requests and revocation as an app sees them over MCP, on both protocol eras."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import MCPError
from mcp.client.context import ClientRequestContext
from mcp.types import (
    CallToolResult,
    ElicitRequestParams,
    ElicitRequestURLParams,
    ElicitResult,
    ErrorData,
    TextContent,
    TextResourceContents,
)

from tests.mcp_server.conftest import Connect
from vault import OWNER, Principal, VaultService

pytestmark = pytest.mark.anyio


def body(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def text_of(result: CallToolResult) -> str:
    assert isinstance(result.content[0], TextContent)
    return result.content[0].text


async def test_a_new_app_holds_no_scopes(connect: Connect, app_principal: Principal) -> None:
    async with connect(app_principal) as client:
        summary = body(await client.call_tool("list_access", {}))
    assert summary["scopes"] == [] and summary["grants"] == []


async def test_a_granted_app_finds_only_items_inside_its_grant(
    connect: Connect, vault: VaultService, seeded: dict[str, str], app_principal: Principal
) -> None:
    vault.grant(OWNER, "tester", ["search:memories#space=work", "read:memories#space=work"])
    async with connect(app_principal) as client:
        hits = body(await client.call_tool("search_context", {"query": "coffee project March"}))["hits"]
        outside = await client.call_tool("get_item", {"item_id": seeded["coffee"]})
        inside = await client.call_tool("get_item", {"item_id": seeded["project"]})
    assert [h["item_id"] for h in hits] == [seeded["project"]]
    assert outside.is_error and not inside.is_error


async def test_request_access_creates_a_pending_request_with_a_consent_link(connect: Connect, app_principal: Principal) -> None:
    async with connect(app_principal) as client:
        asked = body(await client.call_tool("request_access", {"scopes": ["search:memories"], "purpose": "answer questions"}))
        summary = body(await client.call_tool("list_access", {}))
    assert asked["request"]["status"] == "pending"
    assert asked["consent_url"].startswith("http://127.0.0.1:8765/")
    assert asked["request"]["id"] in asked["approve_command"]
    assert summary["scopes"] == [] and [p["id"] for p in summary["pending"]] == [asked["request"]["id"]]


async def test_owner_approval_opens_access_and_revocation_closes_it_on_the_next_call(
    connect: Connect, vault: VaultService, seeded: dict[str, str], app_principal: Principal
) -> None:
    async with connect(app_principal) as client:
        denied = await client.call_tool("search_context", {"query": "coffee"})
        asked = body(await client.call_tool("request_access", {"scopes": ["search:memories"], "purpose": "recall habits"}))
        grant = vault.approve_consent(OWNER, asked["request"]["id"])
        allowed = await client.call_tool("search_context", {"query": "coffee"})
        vault.revoke(OWNER, grant.id)
        revoked = await client.call_tool("search_context", {"query": "coffee"})
    assert denied.is_error and "request_access" in text_of(denied)
    assert seeded["coffee"] in json.dumps(body(allowed))
    assert revoked.is_error and seeded["coffee"] not in text_of(revoked)


async def test_remember_and_forget_need_write_and_delete_scopes(
    connect: Connect, vault: VaultService, seeded: dict[str, str], app_principal: Principal
) -> None:
    vault.grant(OWNER, "tester", ["write:memories#space=personal", "read:memories", "delete:memories#space=work"])
    async with connect(app_principal) as client:
        wrote = await client.call_tool("remember", {"text": "I run on Sundays"})
        wrong_space = await client.call_tool("remember", {"text": "Standup at nine", "space": "work"})
        cannot_delete = await client.call_tool("forget", {"item_id": seeded["coffee"]})
        deleted = await client.call_tool("forget", {"item_id": seeded["project"]})
    assert body(wrote)["item"]["provenance"]["created_by"] == app_principal.label
    assert wrong_space.is_error and cannot_delete.is_error
    assert body(deleted)["item"]["id"] == seeded["project"]


async def test_request_access_offers_the_link_by_url_elicitation_and_the_answer_grants_nothing(
    connect: Connect, vault: VaultService, app_principal: Principal
) -> None:
    asked: list[ElicitRequestURLParams] = []

    async def accept(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        assert isinstance(params, ElicitRequestURLParams)
        asked.append(params)
        return ElicitResult(action="accept")

    async with connect(app_principal, elicitation_callback=accept) as client:
        result = body(await client.call_tool("request_access", {"scopes": ["read:preferences"], "purpose": "tailor answers"}))
        summary = body(await client.call_tool("list_access", {}))
    assert [p.url for p in asked] == [result["consent_url"]]
    assert result["request"]["status"] == "pending"
    assert summary["scopes"] == []
    assert len(vault.list_consent(OWNER)) == 1


async def test_request_access_rejects_an_owner_only_scope(connect: Connect, app_principal: Principal) -> None:
    async with connect(app_principal) as client:
        result = await client.call_tool("request_access", {"scopes": ["export:*"], "purpose": "take everything"})
    assert result.is_error


async def test_every_disclosure_over_mcp_is_audited_with_the_app_and_the_items(
    connect: Connect, vault: VaultService, seeded: dict[str, str], app_principal: Principal
) -> None:
    vault.grant(OWNER, "tester", ["search:memories"])
    async with connect(app_principal) as client:
        await client.call_tool("search_context", {"query": "coffee"})
        await client.call_tool("get_item", {"item_id": seeded["coffee"]})
    entries = vault.audit_entries(OWNER, app="tester")
    disclosed = [e for e in entries if e.event == "disclose"]
    assert disclosed and disclosed[0].principal == app_principal.label and seeded["coffee"] in disclosed[0].item_ids
    assert any(e.event == "deny" for e in entries)  # get_item needs read scope, which it lacks


async def test_list_access_offers_requestable_scope_forms_without_naming_spaces(
    connect: Connect, seeded: dict[str, str], app_principal: Principal
) -> None:
    async with connect(app_principal) as client:
        report = body(await client.call_tool("list_access", {}))
    assert "search:memories" in report["requestable"] and "write:profile" not in report["requestable"]
    assert "work" not in json.dumps(report)


async def test_resources_and_the_prompt_disclose_nothing_without_a_grant(
    connect: Connect, seeded: dict[str, str], app_principal: Principal
) -> None:
    async with connect(app_principal) as client:
        for uri in ("vault://profile", "vault://preferences", f"vault://item/{seeded['diet']}"):
            with pytest.raises(MCPError) as refused:
                await client.read_resource(uri)
            assert "vegetarian" not in str(refused.value)
        with pytest.raises(MCPError):
            await client.get_prompt("personalize", {"task": "dinner"})


async def test_resources_follow_the_grant(connect: Connect, vault: VaultService, seeded: dict[str, str], app_principal: Principal) -> None:
    vault.grant(OWNER, "tester", ["read:preferences#space=personal"])
    async with connect(app_principal) as client:
        prefs = await client.read_resource("vault://preferences")
        hidden = client.read_resource(f"vault://item/{seeded['tone']}")
        with pytest.raises(MCPError):
            await hidden
    assert isinstance(prefs.contents[0], TextResourceContents)
    keys = [p["key"] for p in json.loads(prefs.contents[0].text)["preferences"]]
    assert keys == ["diet"]
