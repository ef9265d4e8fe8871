"""Capped multipart uploads: one file streamed to a private file, a few small text fields, nothing spooled elsewhere.

``read_upload`` refuses anything but ``multipart/form-data``, a declared or actual file size past its
cap (the rest of the body is never read), more than ``MAX_PARTS`` parts, more than one file, and
text fields past ``MAX_FIELD_BYTES`` in all. The file goes to ``directory`` under a random name
(mode 0600, created exclusively) keeping only a known suffix of the browser's name, so that format
detection by extension still works; on any refusal the partial file is deleted.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from vault.errors import InvalidInput, TooLarge

MAX_PARTS = 32
MAX_FIELD_BYTES = 16 * 1024
# Suffixes kept on the staged file (importers detect some formats by them); any other becomes ".upload".
SUFFIXES = frozenset({".age", ".tar", ".json", ".jsonl", ".zip", ".csv", ".md", ".markdown", ".txt"})


@dataclass(slots=True)
class Upload:
    """What a multipart form held: its text fields (first value each), and the file, if one was sent."""

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str = ""
    size: int = 0

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


def staged_suffix(filename: str) -> str:
    name = PureWindowsPath(PurePosixPath(filename).name).name
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if suffix in SUFFIXES else ".upload"


class _Reader:
    def __init__(self, directory: Path, limit: int, file_field: str) -> None:
        self.directory, self.limit, self.file_field = directory, limit, file_field
        self.upload = Upload()
        self.parts = 0
        self.field_bytes = 0
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._value = bytearray()
        self._out: IO[bytes] | None = None

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidInput(f"the form holds more than {MAX_PARTS} parts")
        self._headers, self._name, self._value = {}, "", bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            return
        if self._name != self.file_field or self.upload.path is not None:
            raise InvalidInput(f"the form may carry one file, as {self.file_field!r}")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.upload.filename = filename.decode("utf-8", "replace")[:255]
        path = self.directory / (secrets.token_urlsafe(16) + staged_suffix(self.upload.filename))
        self._out = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self.upload.path = path

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self.upload.size += end - start
            if self.upload.size > self.limit:
                raise TooLarge(f"the file is larger than {self.limit >> 20} MiB")
            self._out.write(data[start:end])
            return
        self.field_bytes += end - start
        if self.field_bytes > MAX_FIELD_BYTES:
            raise TooLarge(f"the form's fields are larger than {MAX_FIELD_BYTES} bytes")
        self._value += data[start:end]

    def on_part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            return
        try:
            self.upload.fields.setdefault(self._name, self._value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidInput("a form field is not valid UTF-8") from exc

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def read_upload(request: Request, directory: Path, limit: int, file_field: str = "file") -> Upload:
    """Stream a multipart form: the file to a new private file in ``directory`` (at most ``limit`` bytes), fields in memory.

    Raises:
        TooLarge: the declared body, the file or the fields pass their caps. InvalidInput: not multipart,
        no boundary, a malformed body, a second file, too many parts.
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput("the upload must be sent as multipart/form-data")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MAX_FIELD_BYTES + 4096 * MAX_PARTS:
        raise TooLarge(f"the file is larger than {limit >> 20} MiB")
    reader = _Reader(directory, limit, file_field)
    callbacks = {name: getattr(reader, name) for name in dir(reader) if name.startswith("on_")}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (InvalidInput, TooLarge):
        reader.close()
        reader.upload.discard()
        raise
    except Exception as exc:  # python-multipart's own parse errors
        reader.close()
        reader.upload.discard()
        raise InvalidInput("the upload is not a well-formed multipart form") from exc
    reader.close()
    return reader.upload
