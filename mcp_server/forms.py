"""Capped reads of request bodies for the routes that take a form or a small JSON document.

Every form route (``/token``, ``/login``, ``/login/link``, ``/o/<key>/logout``, the
decision posts) reads its body through ``read_form``: at most ``MAX_FORM_BYTES``, streamed,
``application/x-www-form-urlencoded`` only (a multipart body is refused, never spooled to
disk). ``/register`` reads through ``read_capped`` with its own cap.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from vault.errors import InvalidInput, TooLarge

MAX_FORM_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


async def read_capped(request: Request, limit: int) -> bytes:
    """The whole body, streamed; refused as soon as its declared or actual size passes ``limit`` (the rest is never read).

    Raises:
        TooLarge
    """
    declared = request.headers.get("content-length", "")
    too_large = TooLarge(f"the request body is larger than {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """A urlencoded form of at most ``MAX_FORM_BYTES``: its first value per field, and every value per field.

    Raises:
        TooLarge: past the cap. InvalidInput: not urlencoded (multipart included) or not UTF-8.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise InvalidInput(f"the form must be sent as {FORM_TYPE}")
    raw = await read_capped(request, MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("the form is not valid UTF-8 urlencoded text") from exc
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single.setdefault(key, value)
        multi.setdefault(key, []).append(value)
    return single, multi
