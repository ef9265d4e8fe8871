"""Read a file into text: plain text, Markdown, HTML and PDF."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
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


SNIFF_BYTES = 8192
"""How much of a file is looked at to tell text from binary (as git and file(1) look at the start)."""
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\b\x1b")
_SIGNATURES = {
    b"%PDF-": "a PDF (name it .pdf)",
    b"PK\x03\x04": "a ZIP archive (or an office document)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "gzip-compressed",
    b"\x7fELF": "a program",
    b"age-encryption.org/": "an age-encrypted file",
}


def binary_reason(data: bytes) -> str | None:
    """Why ``data`` is not text, or None: a known binary signature, a NUL byte, or over 5% control bytes at its start.

    Text in another 8-bit encoding (Latin-1) passes: it is decoded with replacement characters.

    Decided by content, not by the file name: a PDF, image or program renamed .txt is refused.
    """
    head = data[:SNIFF_BYTES]
    for magic, what in _SIGNATURES.items():
        if head.startswith(magic):
            return f"it is {what}"
    if b"\0" in head:
        return "it holds NUL bytes (binary content)"
    odd = sum(1 for b in head if b < 0x20 and b not in _TEXT_CONTROLS)
    if head and odd / len(head) > 0.05:
        return "over 5% of it is control bytes (binary content)"
    return None


def extract(data: bytes, mime: str, fallback_title: str) -> tuple[str, str]:
    """Return (title, text) of a file's bytes.

    Raises:
        InvalidInput: a text type whose content is binary; a PDF that is not one or cannot be read.
    """
    if mime == "application/pdf":
        return _pdf(data, fallback_title)
    if reason := binary_reason(data):
        raise InvalidInput(f"not a {mime} file: {reason}")
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


@contextmanager
def _pypdf_quiet() -> Iterator[list[str]]:
    """Collect what pypdf logs (``EOF marker not found``…) instead of letting it reach stderr."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    # pypdf logs on its modules' loggers (pypdf._reader…): a handler on their parent catches them all,
    # and without propagation neither the root's handlers nor logging's last resort print them.
    logger, handler = logging.getLogger("pypdf"), Keep()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield said
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _pdf(data: bytes, fallback: str) -> tuple[str, str]:
    import warnings

    from pypdf import PdfReader

    if b"%PDF-" not in data[:1024]:
        raise InvalidInput("not a PDF file: no %PDF- header")
    with _pypdf_quiet() as said, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pypdf warns as well as logs on a damaged file; the error below says it once
        try:
            reader = PdfReader(io.BytesIO(data))
            pages = [page.extract_text() or "" for page in reader.pages]
            meta_title = reader.metadata.title if reader.metadata and reader.metadata.title else None
        except Exception as exc:  # a hostile PDF makes pypdf raise almost anything (struct, zlib, recursion errors)
            detail = "; ".join(dict.fromkeys([*said, str(exc) or type(exc).__name__]))
            raise InvalidInput(f"cannot read PDF (damaged or truncated): {detail[:200]}") from exc
    # Generators often stamp a placeholder title; the file name says more.
    title = str(meta_title).strip() if meta_title else ""
    return (title if title and title.lower() not in ("untitled", "untitled document") else fallback), "\n\n".join(pages)
