"""Importers: one module per source, each turning a file or folder into an ImportBatch.

``detect`` names the format of a path; ``read_source`` parses it. Nothing here writes
to the vault: ``vault.portable.merge`` does, in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from schemas.portable import ImportFormat
from vault.errors import BadBundle, InvalidInput, NothingToImport
from vault.items import utcnow
from vault.portable import bundle as bundle_io
from vault.portable.bundle import Identity
from vault.portable.importers import bundle, markdown, mcp_memory, mem0, providers
from vault.portable.importers.chats import Reading
from vault.portable.records import ImportBatch, readable_path, within_limits
from vault.portable.spool import Spool

_SNIFF_BYTES = 64 << 20


def detect(path: Path) -> ImportFormat:
    """The format of ``path``, judged by its content.

    Raises:
        InvalidInput: missing path. BadBundle: nothing we can read.
    """
    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    if path.is_dir():
        if (path / bundle.MANIFEST).is_file():
            return "bundle"
        if (path / "memory-store.json").is_file():
            return "pam"
        if found := providers.sniff(path):
            return found  # type: ignore[return-value]
        markdown.check_notes_folder(path)
        return "markdown"
    if bundle_io.is_age_file(path) or bundle_io.looks_like_tar(path):
        return "bundle"
    suffix = path.suffix.lower()
    if suffix in markdown.SUFFIXES:
        return "markdown"
    if suffix == ".jsonl":
        return "mcp-memory"
    if suffix == ".csv":
        if found := providers.sniff(path):
            return found  # type: ignore[return-value]
        raise BadBundle(f"{path.name} is not a recognised Copilot activity CSV")
    if path.stat().st_size <= _SNIFF_BYTES:
        head = path.read_bytes()
        try:
            data = bundle_io.load_json(head, path.name)
        except BadBundle:
            if b'"type":"entity"' in head.replace(b" ", b"") or b'"type":"relation"' in head.replace(b" ", b""):
                return "mcp-memory"
            raise
        if isinstance(data, dict) and data.get("schema") == "portable-ai-memory":
            return "pam"
        if mem0.entries(data) is not None:
            return "mem0"
        if isinstance(data, dict) and data.get("type") in ("entity", "relation"):
            return "mcp-memory"
    if found := providers.sniff(path):
        return found  # type: ignore[return-value]
    raise BadBundle(f"cannot tell what {path.name} is: pass --from with its format")


def read_source(
    path: Path,
    fmt: ImportFormat | None = None,
    *,
    identities: list[Identity] | None = None,
    passphrase: str | None = None,
    space: str | None = None,
    now: datetime | None = None,
    progress: Reading | None = None,
    spool: Spool | None = None,
) -> ImportBatch:
    """Parse ``path`` as ``fmt`` (detected when None) into an ImportBatch; ``progress`` hears of each
    conversation or activity read. ``spool``: a bundle's documents are sealed into it as they stream
    (the caller closes it once the batch is written) instead of being held in memory.

    Raises:
        BadBundle: unreadable, tampered or hostile input. InvalidInput: missing path.
        NothingToImport: a source (other than a bundle, which may hold an empty vault) with nothing readable.
    """
    fmt = fmt or detect(path)
    batch = _read(path, fmt, identities, passphrase, space, now, progress, spool)
    if fmt != "bundle" and not within_limits(batch).records:
        raise NothingToImport(nothing_message(path.name, fmt, batch))
    return batch


def nothing_message(name: str, fmt: str, batch: ImportBatch) -> str:
    """Why nothing was imported: the skipped records' reasons, most common first, or the lack of any record."""
    if not batch.records and not batch.skipped:
        return f"{name}: nothing to import as {fmt} (no record found); if it is another format, pass --from with it"
    reasons: dict[str, int] = {}
    for s in within_limits(batch).skipped:
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    listed = "; ".join(f"{n} × {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5])
    return f"{name}: nothing to import as {fmt}: every record was skipped ({listed})"


def _read(
    path: Path,
    fmt: ImportFormat,
    identities: list[Identity] | None,
    passphrase: str | None,
    space: str | None,
    now: datetime | None,
    progress: Reading | None,
    spool: Spool | None = None,
) -> ImportBatch:
    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    stamp = now or utcnow()
    source = readable_path(str(path))  # a label in the summary: never a lone surrogate
    match fmt:
        case "bundle":
            return bundle.read(bundle.open_files(path, identities=identities, passphrase=passphrase, spool=spool), source, space)
        case "pam":
            if path.is_dir():
                return bundle.read_pam(bundle_io.read_directory(path), source, space)
            return bundle.read_pam({"memory-store.json": _small(path)}, source, space)
        case "mcp-memory":
            return mcp_memory.read(_small(path), source, space, stamp)
        case "mem0":
            return mem0.read(bundle_io.load_json(_small(path), path.name), source, space, stamp)
        case "markdown":
            return markdown.read(path, source, space)
        case "chatgpt" | "claude" | "gemini" | "grok" | "copilot":
            return providers.read(path, fmt, source, space, stamp, progress)


def _small(path: Path) -> bytes:
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; this format is a single file")
    if path.stat().st_size > bundle_io.MAX_JSON_BYTES:
        raise BadBundle(f"{path.name} is larger than {bundle_io.MAX_JSON_BYTES >> 20} MiB")
    return path.read_bytes()
