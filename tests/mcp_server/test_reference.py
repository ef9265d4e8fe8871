"""docs/mcp.md is generated from the server and cannot drift."""

from __future__ import annotations

from mcp_server.reference import DOC, render


def test_mcp_reference_matches_the_server() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m mcp_server.reference"


def test_mcp_reference_documents_every_tool_and_both_transports() -> None:
    text = render()
    for name in ("search_context", "get_item", "get_preferences", "remember", "forget", "list_access", "request_access"):
        assert f"### `{name}`" in text
    assert "ctxvault connect claude-desktop" in text and "insufficient_scope" in text
