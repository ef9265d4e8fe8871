"""Read a file into text: plain text, Markdown, HTML and PDF."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from vault.errors import InvalidInput, TooLarge

SUFFIX_MIME = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}


@dataclass(frozen=True, slots=True)
class DocumentFile:
    path: Path
    filename: str
    mime: str
    data: bytes
    sha256: str
    title: str
    text: str


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUFFIX_MIME


def read_document(path: Path, max_bytes: int) -> DocumentFile:
    """Read and extract a supported file.

    Raises:
        InvalidInput: unsupported type, unreadable file, or no text in it.
        TooLarge: the file exceeds ``max_bytes``.
    """
    mime = SUFFIX_MIME.get(path.suffix.lower())
    if mime is None:
        raise InvalidInput(f"unsupported file type {path.suffix or '(none)'!r}: use one of {', '.join(sorted(SUFFIX_MIME))}")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TooLarge(f"{path.name} is {size} bytes; the limit is {max_bytes}")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    title, text = extract(data, mime, path.stem)
    if not text.strip():
        raise InvalidInput(f"{path.name} contains no extractable text")
    return DocumentFile(path.resolve(), path.name, mime, data, hashlib.sha256(data).hexdigest(), title, text)


def extract(data: bytes, mime: str, fallback_title: str) -> tuple[str, str]:
    """Return (title, text) of a file's bytes."""
    if mime == "application/pdf":
        return _pdf(data, fallback_title)
    raw = data.decode("utf-8", errors="replace")
    if mime == "text/html":
        return _html(raw, fallback_title)
    if mime == "text/markdown":
        return _markdown_title(raw, fallback_title), raw
    return fallback_title, raw


def _markdown_title(text: str, fallback: str) -> str:
    for line in text.splitlines()[:50]:
        if line.startswith("# "):
            return line[2:].strip() or fallback
    return fallback


def _html(raw: str, fallback: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    text = soup.get_text("\n")
    lines = [line.strip() for line in text.splitlines()]
    body = "\n".join(line for line in lines if line)
    return title or fallback, body


def _pdf(data: bytes, fallback: str) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata and reader.metadata.title else None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"cannot read PDF: {exc}") from exc
    # Generators often stamp a placeholder title; the file name says more.
    title = str(meta_title).strip() if meta_title else ""
    return (title if title and title.lower() not in ("untitled", "untitled document") else fallback), "\n\n".join(pages)
