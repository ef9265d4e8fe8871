"""The one error mapper of the MCP surface: VaultError.mcp kinds to tool errors or protocol errors.

The SDK's test decides the kind: could a smarter model have avoided this? Then the
model reads it as an ``is_error`` tool result (``ToolError``). Otherwise the host
gets a JSON-RPC error (``MCPError``). Resources have only the protocol path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import assert_never

from mcp import MCPError
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST
from pydantic import ValidationError

from schemas.limits import ERROR_CHARS
from vault.errors import NotFound, VaultError


def protocol_error(exc: VaultError) -> MCPError:
    """The JSON-RPC error a host receives for a failure no model can fix."""
    match exc.mcp:
        case "invalid_request":
            return MCPError(INVALID_REQUEST, exc.message, {"type": type(exc).__name__})
        case "invalid_params" | "tool_error":
            return MCPError(INVALID_PARAMS, exc.message, {"type": type(exc).__name__})
        case "internal":
            return MCPError(INTERNAL_ERROR, exc.message, {"type": type(exc).__name__})
        case _:
            assert_never(exc.mcp)


@contextmanager
def tool_errors() -> Iterator[None]:
    """Report a VaultError from a tool: a tool error the model reads, or a protocol error."""
    try:
        yield
    except VaultError as exc:
        if exc.mcp == "tool_error":
            raise ToolError(exc.message) from exc
        raise protocol_error(exc) from exc
    except ValidationError as exc:
        # An argument the input schema could not express (a tag's grammar): the model can fix it.
        raise ToolError(_first_problem(exc)) from exc


@contextmanager
def prompt_errors() -> Iterator[None]:
    """Report a VaultError from a prompt: prompts have only the protocol path."""
    try:
        yield
    except VaultError as exc:
        raise protocol_error(exc) from exc


def short(text: str) -> str:
    """An error message cut to ERROR_CHARS: messages may quote the caller's input, never all of it."""
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _first_problem(exc: ValidationError) -> str:
    """The first of a validation's problems, by field and without the rejected value."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "invalid argument"
    where = ".".join(str(p) for p in errors[0]["loc"]) or "argument"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return short(f"invalid {where}: {errors[0]['msg']}{more}")


def argument_error(tool: str, exc: ValidationError) -> ToolError:
    """A tool's arguments did not validate: one short line the model can act on."""
    return ToolError(f"{tool}: {_first_problem(exc)}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__


def prompt_failure(exc: Exception) -> MCPError:
    """The JSON-RPC error for a failed ``prompts/get`` (the SDK sends them all as code 0).

    The SDK reports every failure as a ValueError: an unknown prompt or a missing
    argument is one with no other cause; arguments that failed validation carry a
    pydantic ValidationError. Both are the caller's -32602; anything else is internal,
    and its text stays in the server's log.
    """
    causes = list(_chain(exc))
    invalid = next((c for c in causes if isinstance(c, ValidationError)), None)
    if invalid is not None:
        return MCPError(INVALID_PARAMS, _first_problem(invalid))
    if all(type(c) is ValueError for c in causes):
        return MCPError(INVALID_PARAMS, short(str(causes[-1])))
    return MCPError(INTERNAL_ERROR, "the prompt failed")


@contextmanager
def resource_errors() -> Iterator[None]:
    """Report a VaultError from a resource read: NotFound is the spec's -32602, the rest protocol errors."""
    try:
        yield
    except NotFound as exc:
        raise ResourceNotFoundError(exc.message) from exc
    except VaultError as exc:
        if exc.mcp == "tool_error":
            raise ResourceError(exc.message) from exc
        raise protocol_error(exc) from exc
