"""What every importer produces and the merge consumes: items to write, with their vectors.

Importers parse a source into an ``ImportBatch``; nothing here touches the store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from schemas.items import MAX_TAG_CHARS, MAX_TAGS, SPACE_PATTERN, TAG_PATTERN, Kind, Sensitivity
from schemas.items import MAX_TEXT_CHARS as ITEM_TEXT_CHARS
from schemas.portable import ImportFormat, Skipped, VersionEntry
from vault.blob import Content
from vault.chunking import Chunk
from vault.dates import aware
from vault.errors import BadBundle
from vault.history import DocFile, State, StateKey, Version
from vault.items import content_hash

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_TAG = re.compile(TAG_PATTERN)
_SPACE = re.compile(SPACE_PATTERN)
_BAD_TAG_CHARS = re.compile(r"[\s,;#=]+")
_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_INSTANTS = ("created_at", "updated_at", "valid_from", "valid_until", "superseded_at")

# Hostile input is refused before anything is written; these bound what one import may
# hold in memory (the plaintext never goes to disk). docs/export-format.md states them.
# What a vault stores is bounded tighter, by the item limits every write obeys (within_limits).
MAX_ITEMS = 2_000_000
MAX_TEXT_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class DocumentPayload:
    path: str
    filename: str
    mime: str
    data: Content  # a bundle's document: read from the import's spool when its row is written
    sha256: str
    text: str | None = None  # extracted text, when chunks must be computed
    chunks: tuple[Chunk, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One item as a source describes it; ``id=None`` lets the vault assign one."""

    id: str | None
    kind: Kind
    text: str
    space: str
    created_at: datetime
    updated_at: datetime
    key: str | None = None
    tags: tuple[str, ...] = ()
    sensitivity: Sensitivity = "low"
    source: str = "import"
    created_by: str = "owner"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    supersedes: str | None = None
    superseded_at: datetime | None = None
    superseded_by: str | None = None  # the id of the value that replaced it, when the source's bundle holds it
    meta: Mapping[str, object] = field(default_factory=dict)
    hash: str | None = None  # content hash when it is not the text's (documents)
    document: DocumentPayload | None = None
    history: tuple[Version, ...] = ()  # earlier versions, oldest first (vault/history.py)
    left_out: frozenset[datetime] = frozenset()  # saved_at of earlier versions the bundle's selection left out
    # Computed once, on first use; init=False so that dataclasses.replace() never carries it over.
    _hash: list[str] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A source may state an instant without an offset (a Gemini ``time``, a PAM ``created_at``);
        # the merge compares them with the vault's aware ones, so every instant is aware from here on.
        # Written out, the common case (all aware) costs 0.2 µs a record, a loop over the names 0.6 µs.
        if (
            self.created_at.tzinfo is None
            or self.updated_at.tzinfo is None
            or (self.valid_from is not None and self.valid_from.tzinfo is None)
            or (self.valid_until is not None and self.valid_until.tzinfo is None)
            or (self.superseded_at is not None and self.superseded_at.tzinfo is None)
        ):
            for name in _INSTANTS:
                value = getattr(self, name)
                if value is not None and value.tzinfo is None:
                    object.__setattr__(self, name, aware(value))

    @property
    def content_hash(self) -> str:
        if self.hash is not None:
            return self.hash
        if not self._hash:
            self._hash.append(content_hash(f"{self.key}: {self.text}" if self.kind == "preference" and self.key else self.text))
        return self._hash[0]

    @property
    def state(self) -> State:
        """The record's own state, as history would keep it."""
        by = self.history[-1].replaced_by if self.history else self.created_by
        return State(self.text, self.space, self.tags, self.sensitivity, self.content_hash, by, self.updated_at)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """An item the source forgot (its id and content hash) or purged (its id only), never its content."""

    id: str
    content_hash: str | None  # None for a purged id
    purged: bool
    at: datetime
    # A forgotten item's states the source held: its last (updated_at, content hash) and its earlier versions';
    # None when the bundle does not say (made before tombstones carried them).
    states: frozenset[StateKey] | None = None


@dataclass(frozen=True, slots=True)
class VectorSet:
    """Vectors a source carries: row ``n`` of ``matrix`` (float32) is the vector of unit ``keys[n]``, an
    (item id, unit seq); a key listed twice means its last row. One matrix, as a bundle stores it, instead
    of an object per vector."""

    model: str
    dim: int
    keys: Sequence[tuple[str, int]]
    matrix: NDArray[np.float32]

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.keys), self.dim) or self.matrix.dtype.name != "float32":
            raise ValueError(f"{len(self.keys)} keys of dimension {self.dim} for a {self.matrix.dtype} matrix of shape {self.matrix.shape}")

    @classmethod
    def from_rows(cls, model: str, dim: int, rows: Mapping[tuple[str, int], NDArray[np.float32]]) -> VectorSet:
        import numpy as np  # importers without vectors never load numpy

        keys = list(rows)
        matrix = np.stack([rows[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, dim), np.float32)
        return cls(model, dim, keys, matrix)

    def by_key(self) -> dict[tuple[str, int], NDArray[np.float32]]:
        """Each unit's vector (a view of its row)."""
        return {key: self.matrix[n] for n, key in enumerate(self.keys)}


@dataclass(frozen=True, slots=True)
class ImportBatch:
    format: ImportFormat
    source: str
    records: tuple[ItemRecord, ...]
    vectors: VectorSet | None = None
    skipped: tuple[Skipped, ...] = ()
    tombstones: tuple[Tombstone, ...] = ()
    # One space or filter of the source (a bundle's selection): what it does not hold was not forgotten, only left out.
    partial: bool = False


def readable_path(name: str) -> str:
    """A path as text: bytes of a file name that are not UTF-8 (kept by Python as lone surrogates) become U+FFFD."""
    return name if name.isascii() else name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def clean_tags(tags: object) -> tuple[str, ...]:
    """Foreign tags made valid for the vault: separators become '-', at most 64 characters."""
    if not isinstance(tags, list | tuple):
        return ()
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            continue
        fixed = _BAD_TAG_CHARS.sub("-", tag.strip()).strip("-")[:64]
        if fixed and _TAG.fullmatch(fixed):
            out.append(fixed)
    return tuple(sorted(set(out)))


def clean_space(space: object, default: str) -> str:
    if isinstance(space, str):
        fixed = re.sub(r"[^a-z0-9_-]+", "-", space.strip().lower()).strip("-")[:64]
        if fixed and _SPACE.fullmatch(fixed):
            return fixed
    return default


def valid_id(value: object) -> str | None:
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def check_text(text: object, where: str) -> str:
    """A non-empty text within the limit, or BadBundle naming the entry."""
    if not isinstance(text, str):
        raise BadBundle(f"{where}: text is not a string")
    if len(text) > MAX_TEXT_CHARS:
        raise BadBundle(f"{where}: text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate (JSON "\ud800"): not storable as UTF-8
            raise BadBundle(f"{where}: text holds an unpaired surrogate at character {exc.start}") from None
    return text


def within_limits(batch: ImportBatch) -> ImportBatch:
    """``batch`` without the records that break the item limits ``add`` obeys (schemas.items), each one
    listed in ``skipped`` with the reason: one over-long memory does not refuse the rest of the import.

    A document's content is chunked, so only its title counts as its text.
    """
    problems = [(r, problem) for r in batch.records if (problem := _limit_problem(r)) is not None]
    if not problems:
        return batch
    dropped = {id(r) for r, _ in problems}
    skipped = [Skipped(ref=(r.id or f"{r.kind} {r.text[:40]!r}")[:128], reason=f"{r.kind}: {problem}") for r, problem in problems]
    records = tuple(r for r in batch.records if id(r) not in dropped)
    return replace(batch, records=records, skipped=(*batch.skipped, *skipped))


def _limit_problem(r: ItemRecord) -> str | None:
    """What in a record, or in one of its earlier versions (a restore would make it current), breaks the item limits."""
    problem = _state_problem(r.text, r.tags, advice=r.kind != "document")
    if problem is not None or not r.history:
        return problem
    for n, v in enumerate(r.history, 1):
        if not v.state.text.strip():
            return f"version {n}: text is empty"
        if (problem := _state_problem(v.state.text, v.state.tags, advice=False)) is not None:
            return f"version {n}: {problem}"
    return None


def _state_problem(text: str, tags: Sequence[str], *, advice: bool) -> str | None:
    if len(text) > ITEM_TEXT_CHARS:
        return f"text is {len(text):,} characters; the limit is {ITEM_TEXT_CHARS:,}" + (
            " (add it as a document to keep it whole)" if advice else ""
        )
    if len(tags) > MAX_TAGS and len(set(tags)) > MAX_TAGS:
        return f"{len(set(tags))} tags; the limit is {MAX_TAGS}"
    if any(len(t) > MAX_TAG_CHARS for t in tags):
        return f"a tag is longer than {MAX_TAG_CHARS} characters"
    return None


def versions_from(entries: Sequence[VersionEntry], where: str, files: Mapping[str, Content] | None = None) -> tuple[Version, ...]:
    """A record's history from its bundle entries, each text checked like the record's own; a document
    version's file is read from the bundle's ``files`` and checked against its sha256.

    Raises:
        BadBundle: a text that breaks the bundle limits, a version file that is missing, altered, or not a document's.
    """
    out: list[Version] = []
    for n, e in enumerate(entries):
        text = check_text(e.text, f"{where} version {n + 1}")
        tags = clean_tags(e.tags)
        state = State(text, clean_space(e.space, "personal"), tags, e.sensitivity, e.content_hash, e.saved_by[:128], e.saved_at)
        out.append(Version(state, e.replaced_by[:128], e.replaced_at, _version_file(e, files, f"{where} version {n + 1}")))
    return tuple(out)


def _version_file(e: VersionEntry, files: Mapping[str, Content] | None, where: str) -> DocFile | None:
    if e.file is None:
        return None
    if files is None:
        raise BadBundle(f"{where}: only a document's version carries a file")
    data = files.get(e.file.member)
    if data is None:
        raise BadBundle(f"{where}: its file {e.file.member[:80]!r} is missing")
    if (hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else data.sha256) != e.file.sha256:
        raise BadBundle(f"{where}: file does not match its sha256")
    return DocFile(readable_path(e.file.path), e.file.filename, e.file.mime, e.file.sha256, data)


def check_count(n: int, what: str) -> None:
    if n > MAX_ITEMS:
        raise BadBundle(f"{what}: {n} entries; the limit is {MAX_ITEMS}")
