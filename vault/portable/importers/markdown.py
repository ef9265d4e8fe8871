"""A folder of Markdown or text notes (basic-memory's layout included) as documents.

Front matter between ``---`` lines becomes tags (``tags:``) and metadata (every other
scalar key); the title is the front matter's ``title``, else the first heading, else
the file name. Links, hidden files and files over the size limit are skipped with a reason.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

from schemas.portable import Skipped
from vault.items import content_hash
from vault.portable.records import DocumentPayload, ImportBatch, ItemRecord, check_count, clean_tags, readable_path

SUFFIXES = {".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain"}
MAX_NOTE_BYTES = 10 << 20
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def front_matter(text: str) -> tuple[dict[str, object], str]:
    """The YAML-like front matter (scalars and lists only) and the body after it."""
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        return {}, text
    block, body = text[3:end], text[end + 4 :].lstrip("-").lstrip("\n")
    meta: dict[str, object] = {}
    current: str | None = None
    for raw in block.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.lstrip().startswith("- ") and current is not None:
            value = meta.setdefault(current, [])
            if isinstance(value, list):
                value.append(line.lstrip()[2:].strip().strip("'\""))
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        current = key.strip()
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            meta[current] = [v.strip().strip("'\"") for v in value[1:-1].split(",") if v.strip()]
        elif value:
            meta[current] = value.strip("'\"")
        else:
            meta[current] = []
    return meta, body


def read(folder: Path, source: str, space: str | None) -> ImportBatch:
    paths = sorted(folder.rglob("*")) if folder.is_dir() else [folder]
    check_count(len(paths), str(folder))
    records: list[ItemRecord] = []
    skipped: list[Skipped] = []
    for path in paths:
        rel = readable_path(path.relative_to(folder).as_posix() if folder.is_dir() else path.name)
        if any(part.startswith(".") for part in Path(rel).parts):
            continue
        if path.is_symlink():
            skipped.append(Skipped(ref=rel, reason="a link: not followed"))
            continue
        if not path.is_file():
            continue
        mime = SUFFIXES.get(path.suffix.lower())
        if mime is None:
            skipped.append(Skipped(ref=rel, reason="not a .md, .markdown or .txt file"))
            continue
        if path.stat().st_size > MAX_NOTE_BYTES:
            skipped.append(Skipped(ref=rel, reason=f"larger than {MAX_NOTE_BYTES >> 20} MiB"))
            continue
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(Skipped(ref=rel, reason="not UTF-8 text"))
            continue
        meta, body = front_matter(text) if mime == "text/markdown" else ({}, text)
        if not body.strip():
            skipped.append(Skipped(ref=rel, reason="empty note"))
            continue
        heading = _HEADING.search(body)
        title = str(meta.get("title") or (heading.group(1) if heading else readable_path(path.stem)))[:300]
        tags = meta.pop("tags", [])
        stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        records.append(
            ItemRecord(
                id=None,
                kind="document",
                text=title,
                space=space or "personal",
                created_at=stamp,
                updated_at=stamp,
                tags=clean_tags(tags if isinstance(tags, list) else [tags]),
                source=f"import:markdown:{rel}",
                meta={"front_matter": {k: v for k, v in meta.items() if isinstance(v, str | list)}, "chars": len(body)},
                hash=content_hash(body),
                document=DocumentPayload(
                    path=readable_path(str(path.resolve())),
                    filename=readable_path(path.name),
                    mime=mime,
                    data=data,
                    sha256=hashlib.sha256(data).hexdigest(),
                    text=body,
                ),
            )
        )
    return ImportBatch("markdown", source, tuple(records), None, tuple(skipped))
