"""stdio framing guard: every line a client sends gets an answer, and a bad one never stops the server.

The SDK's stdio transport (``mcp.server.stdio``) parses each line with its JSON-RPC
adapter and, when that fails, hands the exception to the session, which logs it and
answers nothing: a client that sent invalid JSON, JSON nested deeper than the parser's
limit, a lone surrogate or ``params`` as an array waits forever. This module reads the
lines first (``GuardedLines``, the SDK's own ``stdin`` parameter), passes on those the
SDK will accept, and answers the others itself with the JSON-RPC error they call for:
-32700 for text that is not JSON, -32600 for JSON that is not a valid message, -32602
for a request whose ``params`` are malformed, with the request's id when it can be
read. Notifications are never answered (JSON-RPC 2.0 §4.1). The SDK is not changed.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from io import TextIOWrapper
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError, jsonrpc_message_adapter
from pydantic import ValidationError

from schemas.limits import JSON_DEPTH, MESSAGE_CHARS

if TYPE_CHECKING:
    from mcp.shared._stream_protocols import ReadStream, WriteStream

log = logging.getLogger(__name__)

# Bytes that are not UTF-8 arrive as lone surrogates (the reader decodes with surrogateescape).
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A line the SDK must not see, and the reply it gets (None: a notification or a blank line)."""

    reply: JSONRPCError | None
    reason: str


def _error(code: int, message: str, rid: str | int | None) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=rid, error=ErrorData(code=code, message=message))


def _nodes(value: object) -> Iterator[tuple[object, int]]:
    """Every value inside ``value`` (keys too) with its depth, without recursion."""
    todo: list[tuple[object, int]] = [(value, 1)]
    while todo:
        node, depth = todo.pop()
        yield node, depth
        if isinstance(node, dict):
            todo.extend((k, depth + 1) for k in node)
            todo.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            todo.extend((v, depth + 1) for v in node)


def _problem(value: object) -> str | None:
    """Why a parsed value cannot be a message's part: too deep, or a string with a lone surrogate."""
    for node, depth in _nodes(value):
        if depth > JSON_DEPTH:
            return f"JSON nested deeper than {JSON_DEPTH} levels"
        if isinstance(node, str) and _SURROGATE.search(node):
            return "a string holds a lone surrogate (not Unicode text)"
    return None


def screen(line: str) -> Refusal | None:
    """None if the SDK may read ``line``; else what to answer instead."""
    if not line.strip():
        return Refusal(None, "blank line")
    if len(line) > MESSAGE_CHARS:
        return Refusal(_error(INVALID_REQUEST, f"message longer than {MESSAGE_CHARS} characters", None), "too long")
    if _SURROGATE.search(line):
        return Refusal(_error(PARSE_ERROR, "Parse error: the line is not UTF-8", None), "not UTF-8")
    try:
        message: Any = json.loads(line)
    except RecursionError:
        return Refusal(_error(INVALID_REQUEST, f"JSON nested deeper than {JSON_DEPTH} levels", None), "too deep")
    except ValueError:
        return Refusal(_error(PARSE_ERROR, "Parse error: the line is not JSON", None), "not JSON")
    if not isinstance(message, dict):
        return Refusal(_error(INVALID_REQUEST, "a message is one JSON object (batches are not supported)", None), "not an object")
    rid = message.get("id")
    known = rid if isinstance(rid, str | int) and not isinstance(rid, bool) else None
    # A notification (a method without an id) is never answered, whatever is wrong with it.
    answer = "method" not in message or "id" in message
    params = message.get("params")
    envelope = {k: v for k, v in message.items() if k != "params"}
    reason = _problem(envelope)
    if reason is not None:
        return Refusal(_error(INVALID_REQUEST, reason, known) if answer else None, reason)
    if "params" in message and not isinstance(params, dict):
        reason = "params must be an object"
        return Refusal(_error(INVALID_PARAMS, reason, known) if answer else None, reason)
    reason = _problem(params)
    if reason is not None:
        return Refusal(_error(INVALID_PARAMS, reason, known) if answer else None, reason)
    try:
        jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError:
        reason = "not a JSON-RPC 2.0 request, notification or response"
        return Refusal(_error(INVALID_REQUEST, reason, known) if answer else None, reason)
    return None


class GuardedLines(anyio.AsyncFile[str]):
    """The SDK's stdin: yields the lines it can read, and queues a reply for every other one."""

    def __init__(self, fp: TextIOWrapper, refusals: MemoryObjectSendStream[JSONRPCError]) -> None:
        super().__init__(fp)
        self._refusals = refusals

    async def readline(self) -> str:
        while True:
            line = await anyio.to_thread.run_sync(self._bounded_line)
            if not line:
                return line
            refusal = screen(line)
            if refusal is None:
                return line
            log.info("refused a stdio line: %s", refusal.reason)
            if refusal.reply is not None:
                await self._refusals.send(refusal.reply)

    def _bounded_line(self) -> str:
        """One line, never holding more than MESSAGE_CHARS + 1 characters of it: a longer line's
        rest is read and dropped in pieces, and what is returned is too long for ``screen``."""
        fp = self.wrapped
        line: str = fp.readline(MESSAGE_CHARS + 1)
        if len(line) <= MESSAGE_CHARS or line.endswith("\n"):
            return line
        while True:
            rest: str = fp.readline(65536)
            if not rest or rest.endswith("\n"):
                return line


@contextmanager
def _claim_stdin() -> Iterator[TextIOWrapper]:
    """Read the wire from a private copy of fd 0 while fd 0 itself reads the null device.

    The SDK does the same for the streams it opens itself (handlers and children then read
    EOF, never protocol bytes); passing our own stdin skips its claim, so it is made here.
    Like the SDK's, the copy is never closed: a reader thread may still block on it.
    """
    wire = os.dup(0)
    os.set_inheritable(wire, False)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        yield TextIOWrapper(os.fdopen(wire, "rb", closefd=False), encoding="utf-8", errors="surrogateescape")
    finally:
        os.dup2(wire, 0)


async def _forward(refusals: MemoryObjectReceiveStream[JSONRPCError], write: WriteStream[SessionMessage]) -> None:
    with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        async for reply in refusals:
            await write.send(SessionMessage(reply))


@asynccontextmanager
async def guarded_stdio() -> AsyncIterator[tuple[ReadStream[SessionMessage | Exception], WriteStream[SessionMessage]]]:
    """``stdio_server()`` whose refused lines are answered here; yields its (read, write) streams."""
    send, receive = anyio.create_memory_object_stream[JSONRPCError](16)
    with _claim_stdin() as text:
        async with stdio_server(stdin=GuardedLines(text, send)) as (read, write), anyio.create_task_group() as tg:
            tg.start_soon(_forward, receive, write)
            try:
                yield read, write
            finally:
                send.close()
