"""Capped reads of request bodies for the routes that take a form or a small JSON document.

Every form route (``/token``, ``/login``, ``/login/link``, ``/o/<key>/logout``, the
decision posts) reads its body through ``read_form``: at most ``MAX_FORM_BYTES``, streamed,
``application/x-www-form-urlencoded`` only (a multipart body is refused, never spooled to
disk). ``/register`` reads through ``read_capped`` with its own cap. The routes that take a
file (the console's document upload and its import upload) read through ``read_upload``: multipart,
at most ``MAX_PARTS`` parts and one file, streamed to a new private file (0600, created exclusively)
with the cap checked on every chunk, its other fields capped like a form; on any refusal the partial
file is deleted.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO
from urllib.parse import parse_qsl

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

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


UPLOAD_TYPE = "multipart/form-data"
# What an uploaded file's name keeps: letters, digits, dot, dash, underscore, space; never a path.
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
NAME_CHARS = 100
MAX_PARTS = 32
# Suffixes kept on a staged import (importers detect some formats by them); any other becomes ".upload".
SUFFIXES = frozenset({".age", ".tar", ".json", ".jsonl", ".zip", ".csv", ".md", ".markdown", ".txt"})


@dataclass
class Upload:
    """A multipart form read by ``read_upload``: its text fields and its one file, written to ``path``."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str = ""
    path: Path | None = None
    size: int = 0
    refused: bool = False  # the gate refused the fields sent before the file: the file was never read

    def discard(self) -> None:
        """Delete the file (a refused or cancelled upload leaves none)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


class _Refused(Exception):
    """Stops the parser when the gate refuses (control flow inside ``read_upload``; never escapes it)."""


def safe_filename(raw: str) -> str:
    """The last segment of an uploaded file's name, reduced to harmless characters (``upload`` if nothing is left)."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = UNSAFE_NAME.sub("_", base).strip(" .")[-NAME_CHARS:].lstrip(" .")
    return name or "upload"


def staged_suffix(filename: str) -> str:
    """The suffix a staged import keeps of the browser's file name: a known one, else ``.upload``."""
    name = PureWindowsPath(PurePosixPath(filename).name).name
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if suffix in SUFFIXES else ".upload"


def staged_name(filename: str) -> str:
    """A random name for a file staged in a shared folder, keeping only a known suffix (``staged_suffix``)."""
    return secrets.token_urlsafe(16) + staged_suffix(filename)


class _UploadParts:
    """Callbacks of the streaming multipart parser: headers per part, text fields capped, the file to disk."""

    def __init__(
        self, file_field: str, limit: int, folder: Path, gate: Callable[[dict[str, str]], bool] | None, name: Callable[[str], str]
    ) -> None:
        self.file_field, self.limit, self.folder, self.gate, self.name = file_field, limit, folder, gate, name
        self.upload = Upload()
        self.field_bytes = 0
        self.parts = 0
        self._headers: dict[str, str] = {}
        self._header, self._value = bytearray(), bytearray()
        self._name: str | None = None
        self._text = bytearray()
        self._out: BinaryIO | None = None
        self._is_file = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin, "on_header_field": self._header_field, "on_header_value": self._header_value,
            "on_header_end": self._header_end, "on_headers_finished": self._headers_done, "on_part_data": self._data,
            "on_part_end": self._end,
        }  # fmt: skip

    def _begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidInput(f"the form holds more than {MAX_PARTS} parts")
        self._headers, self._name, self._text, self._is_file = {}, None, bytearray(), False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._header, self._value = bytearray(), bytearray()

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            return
        if self._name != self.file_field or self.upload.path is not None:
            raise InvalidInput(f"the form may carry one file, in the field {self.file_field!r}")
        if self.gate is not None and not self.gate(self.upload.fields):
            self.upload.refused = True
            raise _Refused
        self._is_file = True
        raw = options[b"filename"].decode("utf-8", "replace")
        self.upload.filename = safe_filename(raw)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.upload.path = self.folder / self.name(raw)
        fd = os.open(self.upload.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._out = os.fdopen(fd, "wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            assert self._out is not None
            self.upload.size += end - start
            if self.upload.size > self.limit:
                raise TooLarge(f"the file is larger than the limit of {self.limit:,} bytes")
            self._out.write(data[start:end])
            return
        self.field_bytes += end - start
        if self.field_bytes > MAX_FORM_BYTES:
            raise TooLarge(f"the form's fields are larger than {MAX_FORM_BYTES} bytes")
        self._text += data[start:end]

    def _end(self) -> None:
        if self._is_file:
            self.close()
        elif self._name is not None:
            try:
                self.upload.fields.setdefault(self._name, self._text.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise InvalidInput("the form is not valid UTF-8") from exc

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def read_upload(
    request: Request,
    file_field: str,
    limit: int,
    folder: Path,
    gate: Callable[[dict[str, str]], bool] | None = None,
    name: Callable[[str], str] = safe_filename,
) -> Upload:
    """A multipart form with at most one file (field ``file_field``), streamed: the file goes to a new file in
    ``folder`` (0600; its name ``name`` of the browser's, by default that name made safe: ``staged_name`` for a
    folder shared by several uploads) and is refused as soon as it passes ``limit`` bytes; the other fields are
    capped at ``MAX_FORM_BYTES`` in all, the parts at ``MAX_PARTS``. Nothing is buffered beyond one chunk of the
    body; on any refusal the partial file is deleted. The caller removes the file (``Upload.discard``).

    ``gate`` sees the fields sent before the file (a form token): when it says no, nothing more is read and
    the result is ``refused``.

    Raises:
        TooLarge: the declared body, the file or the fields past their caps. InvalidInput: not multipart, no boundary,
        a malformed body, a second file, too many parts.
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind.decode("latin-1").lower() != UPLOAD_TYPE or not boundary:
        raise InvalidInput(f"the upload must be sent as {UPLOAD_TYPE}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MAX_FORM_BYTES:
        raise TooLarge(f"the file is larger than the limit of {limit:,} bytes")
    parts = _UploadParts(file_field, limit, folder, gate, name)
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit + MAX_FORM_BYTES:
                raise TooLarge(f"the file is larger than the limit of {limit:,} bytes")
            parser.write(chunk)
        parser.finalize()
    except _Refused:
        parts.close()
    except (InvalidInput, TooLarge):
        parts.close()
        parts.upload.discard()
        raise
    except Exception as exc:  # the parser's own errors (MultipartParseError, a ValueError), a dropped connection
        parts.close()
        parts.upload.discard()
        raise InvalidInput("the upload is not a well-formed multipart form") from exc
    parts.close()
    return parts.upload
