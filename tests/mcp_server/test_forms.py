"""The capped readers of mcp_server/forms.py; ``read_upload`` (multipart, streamed) checked with hypothesis:
however the body is split into chunks it reads the same, and any bytes at all are a VaultError or a result."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_server.forms import Upload, read_upload
from vault.errors import InvalidInput, TooLarge, VaultError

BOUNDARY = "xyzBOUNDARY"
HEADERS = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def body(fields: dict[str, str], filename: str, data: bytes) -> bytes:
    out = b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items())
    out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n\r\n'.encode()
    return out + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def read(
    chunks: list[bytes],
    folder: Path,
    limit: int = 1000,
    headers: dict[str, str] | None = None,
    gate: Callable[[dict[str, str]], bool] | None = None,
) -> Upload:
    queue = list(chunks)

    async def receive() -> dict[str, Any]:
        part = queue.pop(0) if queue else b""
        return {"type": "http.request", "body": part, "more_body": bool(queue)}

    raw = [(k.encode(), v.encode()) for k, v in (headers or HEADERS).items()]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": raw, "query_string": b""}, receive)
    return asyncio.run(read_upload(request, "file", limit, folder, gate))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=600),
    token=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_characters='"\\'), max_size=40),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_chunking_reads_the_same_fields_and_file(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, token: str, cuts: list[int]
) -> None:
    folder = tmp_path_factory.mktemp("up")
    got = read(split(body({"token": token, "space": "work"}, "n.md", data), cuts), folder)
    assert got.fields == {"token": token, "space": "work"} and got.filename == "n.md" and got.size == len(data)
    assert got.path is not None and got.path.read_bytes() == data and got.path.parent == folder
    assert got.path.stat().st_mode & 0o777 == 0o600


@settings(max_examples=80, deadline=None)
@given(junk=st.binary(max_size=400), cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_any_bytes_are_a_result_or_a_vault_error(tmp_path_factory: pytest.TempPathFactory, junk: bytes, cuts: list[int]) -> None:
    try:
        read(split(f"--{BOUNDARY}\r\n".encode() + junk, cuts), tmp_path_factory.mktemp("junk"))
    except VaultError:
        pass


def test_the_file_cap_stops_reading_at_the_first_chunk_past_it(tmp_path: Path) -> None:
    chunks = [body({}, "a.txt", b"a" * 900)] + [b"never read"] * 3
    with pytest.raises(TooLarge, match="limit of 500 bytes"):
        read(chunks, tmp_path, limit=500)


def test_fields_past_the_form_cap_a_second_file_and_a_wrong_type_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TooLarge):
        read([body({"token": "x" * 20_000}, "a.txt", b"hi")], tmp_path, limit=100_000)
    two = body({}, "a.txt", b"1").removesuffix(f"--{BOUNDARY}--\r\n".encode())
    two += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="b.txt"\r\n\r\n2\r\n--{BOUNDARY}--\r\n'.encode()
    with pytest.raises(InvalidInput, match="one file"):
        read([two], tmp_path)
    with pytest.raises(InvalidInput, match="multipart/form-data"):
        read([b"a=b"], tmp_path, headers={"content-type": "application/x-www-form-urlencoded"})
    with pytest.raises(InvalidInput, match="multipart/form-data"):
        read([b""], tmp_path, headers={"content-type": "multipart/form-data"})  # no boundary


def test_a_gate_that_refuses_the_fields_stops_before_the_file(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    def gate(fields: dict[str, str]) -> bool:
        seen.append(dict(fields))
        return fields.get("token") == "good"

    got = read([body({"token": "bad"}, "a.txt", b"a" * 900), b"never read"], tmp_path, limit=100, gate=gate)
    assert got.refused and got.path is None and list(tmp_path.iterdir()) == [] and seen == [{"token": "bad"}]
    fine = read([body({"token": "good"}, "a.txt", b"ok")], tmp_path, gate=gate)
    assert not fine.refused and fine.path is not None and fine.path.read_bytes() == b"ok"
