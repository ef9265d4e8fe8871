"""The stdio guard reads a line in bounded pieces: a 20 MB line is refused without ever being held whole."""

from __future__ import annotations

import io
import json
import tracemalloc

import anyio

from mcp_server.stdio import GuardedLines
from schemas.limits import MESSAGE_CHARS

PING = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"}) + "\n"


def test_a_huge_line_is_refused_in_bounded_memory_and_the_next_line_is_read() -> None:
    huge = b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"t": "' + b"a" * 20_000_000 + b'"}}\n'
    wire = io.TextIOWrapper(io.BytesIO(huge + PING.encode()), encoding="utf-8")
    send, receive = anyio.create_memory_object_stream[object](16)
    lines = GuardedLines(wire, send)  # type: ignore[arg-type]

    async def read() -> str:
        return await lines.readline()

    tracemalloc.start()
    try:
        got = anyio.run(read)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == PING  # the huge line was refused, the next one passes
    refusal = receive.receive_nowait()
    assert "longer than" in json.dumps(refusal.model_dump(mode="json"))  # type: ignore[attr-defined]
    send.close()
    receive.close()
    assert peak < 12 * MESSAGE_CHARS, peak  # a few copies of one bounded piece, never the 20 MB line
