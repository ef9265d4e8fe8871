"""A folder of Markdown or text notes (basic-memory's layout included) as documents.

Front matter between ``---`` lines becomes tags (``tags:``) and metadata (every other
scalar key); the title is the front matter's ``title``, else the first heading, else
the file name. Links, hidden files and files over the size limit are skipped with a reason.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

import yaml

from schemas.portable import Skipped
from vault.errors import BadBundle
from vault.items import content_hash
from vault.portable.records import DocumentPayload, ImportBatch, ItemRecord, check_count, clean_tags, readable_path

SUFFIXES = {".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain"}
MAX_NOTE_BYTES = 10 << 20
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_SAMPLE_FILES = 20_000  # a folder's files looked at to judge whether it holds notes


def front_matter(text: str) -> tuple[dict[str, object], str]:
    """The YAML front matter (read with ``yaml.safe_load``: folded ``>`` and literal ``|`` blocks, lists,
    dates) and the body after it. A BOM and CRLF line ends are accepted; front matter that is not a
    YAML mapping is left in the body, as the note's text."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.startswith("---\n"):
        return {}, text
    end = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4:], re.MULTILINE)
    if end is None:
        return {}, text
    block, body = text[4 : 4 + end.start()], text[4 + end.end() :].lstrip("\n")
    try:
        data = yaml.safe_load(block)
    except (yaml.YAMLError, RecursionError, ValueError):
        return {}, text
    if not isinstance(data, dict):
        return {}, text
    meta: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, list):
            meta[str(key)] = [_scalar(v) for v in value if v is not None and not isinstance(v, dict | list)]
        elif value is not None and not isinstance(value, dict):
            meta[str(key)] = _scalar(value)
    return meta, body


def _scalar(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value).strip()


def check_notes_folder(folder: Path) -> None:
    """Refuse to guess "markdown" for a folder that does not look like notes: an Obsidian vault
    (``.obsidian/``), or a folder whose files are mostly ``.md``/``.markdown``/``.txt`` with at least one
    Markdown note. (``--from markdown`` imports any folder's notes.)

    Raises:
        BadBundle: naming ``--from``.
    """
    if (folder / ".obsidian").is_dir():
        return
    notes = markdown_files = others = 0
    for _root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if name.startswith("."):
                continue
            suffix = Path(name).suffix.lower()
            notes += suffix in SUFFIXES
            markdown_files += suffix in (".md", ".markdown")
            others += suffix not in SUFFIXES
        if notes + others >= _SAMPLE_FILES:
            break
    if markdown_files and notes >= others:
        return
    raise BadBundle(
        f"{readable_path(folder.name)} is not a recognised export and does not look like a notes folder "
        f"({markdown_files} Markdown note(s) among {notes + others} file(s)): pass --from with its format "
        "(--from markdown imports its .md and .txt files anyway)"
    )


def note_id(folder: Path, rel: str, permalink: object) -> str:
    """A note's id, the same on every import of the same folder: from its permalink (basic-memory),
    else its path inside the folder. An edited note re-imported updates its item (the previous
    version kept in its history) instead of adding a second one."""
    key = permalink.strip() if isinstance(permalink, str) and permalink.strip() else f"path:{rel}"
    base = readable_path(str(folder.resolve()))
    return "note-" + hashlib.sha256(f"{base}\0{key}".encode()).hexdigest()[:32]


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
        meta, body = front_matter(text) if mime == "text/markdown" else ({}, text.removeprefix("\ufeff").replace("\r\n", "\n"))
        if not body.strip():
            skipped.append(Skipped(ref=rel, reason="empty note"))
            continue
        heading = _HEADING.search(body)
        title = str(meta.get("title") or (heading.group(1) if heading else readable_path(path.stem)))[:300]
        tags = meta.pop("tags", [])
        stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        records.append(
            ItemRecord(
                id=note_id(folder if folder.is_dir() else folder.parent, rel, meta.get("permalink")),
                kind="document",
                text=title,
                space=space or "personal",
                created_at=stamp,
                updated_at=stamp,
                tags=clean_tags(tags if isinstance(tags, list) else [tags]),
                source=f"import:markdown:{rel}",
                meta={"front_matter": meta, "chars": len(body), "note_path": rel},
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
