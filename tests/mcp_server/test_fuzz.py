"""A bounded, seeded fuzz of MCP tool arguments (issue 29): random, huge and wrongly typed values.

Every call must end in a result or a tool error the model can read, or a JSON-RPC
"invalid params": never an internal error, a traceback in the log, or a reply larger
than ``REPLY_CHARS``. ``CTXVAULT_FUZZ_CALLS`` raises the count for a longer run
(docs/reliability.md, "MCP argument fuzzing").
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter
from typing import Any

import pytest
from mcp import MCPError
from mcp.types import INVALID_PARAMS

from tests.mcp_server.conftest import Connect

pytestmark = pytest.mark.anyio

SEED = 29
CALLS = int(os.environ.get("CTXVAULT_FUZZ_CALLS", "150"))
# The largest honest reply: 50 hits of long memories would be more, but fuzzed calls find at most a few.
REPLY_CHARS = 200_000
TOOLS = ["search_context", "get_item", "get_preferences", "remember", "forget", "list_access", "request_access"]
NAMES = {
    "search_context": ["query", "k", "kind", "space", "tags"],
    "get_item": ["item_id"],
    "get_preferences": ["keys", "task"],
    "remember": ["text", "space", "tags", "sensitivity"],
    "forget": ["item_id"],
    "list_access": [],
    "request_access": ["scopes", "purpose"],
}
WORDS = ["coffee", "memory", "preference", "document", "work", "personal", "low", "high", "search:memories", "read:preferences"]


def value(rng: random.Random, depth: int = 0) -> Any:
    """One random JSON value: plausible, huge, wrongly typed or oddly encoded."""
    pick = rng.randrange(14)
    if depth > 3:
        pick = pick % 6
    match pick:
        case 0:
            return rng.choice(WORDS)
        case 1:
            return rng.choice([0, -1, 1, 10, 51, 2**63, -(2**70), 1e308, -0.0])
        case 2:
            return rng.choice([True, False, None])
        case 3:
            return "".join(
                chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0xD7FF), rng.randrange(0xE000, 0x10FFFF)]))
                for _ in range(rng.randrange(1, 40))
            )
        case 4:
            return rng.choice(WORDS) * rng.choice([1000, 30_000, 120_000])  # past every string cap
        case 5:
            return "\x00\x1b[31m\u202e" + rng.choice(WORDS)  # control and bidi characters
        case 6 | 7:
            return [value(rng, depth + 1) for _ in range(rng.randrange(0, 6))]
        case 8:
            return [rng.choice(WORDS)] * rng.choice([51, 1000, 100_000])  # past every list cap
        case 9:
            return {rng.choice(WORDS): value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}
        case 10:
            return ["memory", "preference", "document"][: rng.randrange(0, 4)]
        case 11:
            return "01" + "".join(rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(24))
        case _:
            return rng.choice(WORDS) + " " + rng.choice(WORDS)


def arguments(rng: random.Random, tool: str) -> dict[str, Any]:
    names = NAMES[tool]
    args = {n: value(rng) for n in names if rng.random() < 0.8}
    if rng.random() < 0.2:
        args[rng.choice(["junk", "", "k" * 1000])] = value(rng)
    return args


async def test_fuzzed_tool_arguments_never_cause_an_internal_error_or_a_huge_reply(
    connect: Connect, seeded: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    caplog.set_level(logging.INFO)
    async with connect() as client:
        for _ in range(CALLS):
            tool = rng.choice(TOOLS)
            args = arguments(rng, tool)
            try:
                result = await client.call_tool(tool, args)
            except MCPError as exc:
                # Only a request the caller could have got right; never -32603 or the SDK's code 0.
                assert exc.error.code == INVALID_PARAMS, (tool, exc.error)
                assert len(exc.error.message) < 1000
                outcomes["invalid_params"] += 1
                continue
            size = len(json.dumps(result.model_dump(mode="json")))
            assert size < REPLY_CHARS, (tool, size)
            outcomes["tool_error" if result.is_error else "ok"] += 1
            if result.is_error:
                assert len(result.content[0].text) < 1000  # type: ignore[union-attr]
    assert sum(outcomes.values()) == CALLS
    assert outcomes["ok"] and outcomes["tool_error"]  # the fuzz reaches both sides
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert crashes == [], [r.getMessage() for r in crashes]
    print("fuzz outcomes:", dict(outcomes))
