"""Every VaultError maps to exactly one MCP face."""

from __future__ import annotations

import pytest
from mcp import MCPError
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError

from mcp_server.errors import protocol_error, resource_errors, tool_errors
from vault.errors import NotFound, VaultError


def all_errors() -> list[type[VaultError]]:
    seen: list[type[VaultError]] = []
    todo = [VaultError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo += cls.__subclasses__()
    return seen


def make(cls: type[VaultError]) -> VaultError:
    try:
        return cls("boom")
    except TypeError:
        return cls("boom", 1)


@pytest.mark.parametrize("cls", all_errors(), ids=lambda c: c.__name__)
def test_every_vault_error_becomes_a_tool_error_or_a_protocol_error(cls: type[VaultError]) -> None:
    with pytest.raises((ToolError, MCPError)) as caught, tool_errors():
        raise make(cls)
    assert isinstance(caught.value, ToolError) == (cls.mcp == "tool_error")
    assert isinstance(protocol_error(make(cls)), MCPError)


def test_a_missing_item_resource_is_the_specs_not_found() -> None:
    with pytest.raises(ResourceNotFoundError), resource_errors():
        raise NotFound("no item")
