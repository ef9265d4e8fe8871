"""Items as every surface sees them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.limits import MEMORY_CHARS, NAME_CHARS, QUERY_CHARS

Kind = Literal["memory", "preference", "document"]
Sensitivity = Literal["low", "medium", "high"]

# One set of limits for every way an item arrives: `add`, `remember`, `edit`, `pref set` and
# every importer (vault.portable.records.within_limits) read these and no number of their own.
MAX_TEXT_CHARS = MEMORY_CHARS  # a memory's text or a preference's value (a document's text is chunked)
MAX_TAGS = 32
MAX_TAG_CHARS = NAME_CHARS
MAX_SPACE_CHARS = NAME_CHARS
SPACE_PATTERN = rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_SPACE_CHARS - 1}}}$"
TAG_PATTERN = rf"^[^\s,;#=]{{1,{MAX_TAG_CHARS}}}$"


def limit_problem(text: str | None = None, tags: Sequence[str] = (), space: str | None = None) -> str | None:
    """What in ``text``, ``tags`` or ``space`` breaks the item limits, in words; None when nothing does."""
    if text is not None and len(text) > MAX_TEXT_CHARS:
        return f"text is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}"
    if len(set(tags)) > MAX_TAGS:
        return f"{len(set(tags))} tags; the limit is {MAX_TAGS}"
    bad = [t for t in tags if not re.fullmatch(TAG_PATTERN, t)]
    if bad:
        return f"invalid tag(s) {[t[:70] for t in bad[:3]]}: tags are 1-{MAX_TAG_CHARS} characters without spaces, ',', ';', '#', '='"
    if space is not None and not re.fullmatch(SPACE_PATTERN, space):
        return f"invalid space {space[:70]!r}: 1-{MAX_SPACE_CHARS} lowercase letters, digits, '_' or '-'"
    return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provenance(_Model):
    """Where an item came from: who wrote it, through what, and when."""

    source: str = Field(description="Channel it arrived through: cli, mcp, import:<format>, document:<path>.")
    created_by: str = Field(description="'owner' or the id of the app that wrote it.")
    created_at: datetime
    updated_at: datetime


class VersionFile(_Model):
    """The file a document version held: its content, extracted again when the version is restored."""

    filename: str
    mime: str
    size: int = Field(ge=0)
    sha256: str


class ItemVersion(_Model):
    """One earlier state of an item, kept when an edit, update, merge or restore replaced it."""

    version: int = Field(ge=1, description="1 is the oldest kept; the current state is the number after the last.")
    text: str
    space: str
    tags: list[str]
    sensitivity: Sensitivity
    content_hash: str
    saved_by: str = Field(description="'owner' or the app that wrote this state.")
    saved_at: datetime = Field(description="When this state was written.")
    replaced_by: str = Field(description="Who replaced it (an import names the owner who ran it).")
    replaced_at: datetime
    file: VersionFile | None = Field(default=None, description="A document version's file; none for memories and preferences.")


class Item(_Model):
    """One memory, preference or document."""

    id: str
    kind: Kind
    text: str = Field(description="Memory text, preference value, or document title.")
    key: str | None = Field(default=None, description="Preference key (preferences only).")
    space: str
    tags: list[str]
    sensitivity: Sensitivity
    provenance: Provenance
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    content_hash: str
    supersedes: str | None = None
    superseded_at: datetime | None = None
    deleted_at: datetime | None = None
    meta: dict[str, object] = Field(default_factory=dict)
    versions: list[ItemVersion] | None = Field(
        default=None, description="Earlier versions, oldest first, when asked for (get_item with versions)."
    )


class ItemHistory(_Model):
    """An item's current state and every earlier version kept, oldest first."""

    item: Item
    current_version: int = Field(description="The number the current state has in this history.")
    versions: list[ItemVersion]
    conflicts: list[int] = Field(default_factory=list, description="Open import conflicts of this item (ids).")


class Conflict(_Model):
    """An item an import found changed on both sides: both are kept, the newer current and the other as a version."""

    id: int | None = Field(default=None, description="Conflict id (none in a dry run).")
    item_id: str
    kind: Kind
    version: int | None = Field(default=None, description="The version holding the side that is not current (none in a dry run).")
    current_updated_at: datetime
    other_updated_at: datetime
    kept: Literal["vault", "source"] = Field(description="Whose side is current: the vault's own or the imported one.")
    source: str
    found_at: datetime | None = None


class ItemPage(_Model):
    items: list[Item]
    total: int


class MemoryIn(_Model):
    """A memory to remember."""

    text: str = Field(min_length=1, description="The fact or event, in a sentence or two.")
    space: str = Field(default="personal", pattern=SPACE_PATTERN)
    tags: list[str] = Field(default_factory=list)
    sensitivity: Sensitivity = "low"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    source: str = "cli"

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        if problem := limit_problem(tags=tags):
            raise ValueError(problem)
        return sorted(set(tags))

    @field_validator("text")
    @classmethod
    def _text(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        return text.strip()


class SimilarItem(_Model):
    """A memory like the one just remembered, found among those the caller may read."""

    id: str
    score: float = Field(description="Cosine similarity of the two texts (1.0 = the same words).")
    snippet: str = Field(description="The start of its text.")


class RememberResult(_Model):
    """What remember did: added a new memory, merged it into the same fact, or found it stored already."""

    item: Item
    action: Literal["added", "updated", "unchanged"]
    duplicate_of: str | None = Field(default=None, description="The existing memory it was merged into, or found as.")
    similarity: float | None = None
    similar: list[SimilarItem] = Field(
        default_factory=list,
        description="Near-duplicates that were kept apart because they may state a different fact (another number, "
        "date, name or a negation): call remember again with update_id to replace one of them with this text.",
    )


class PreferenceOut(_Model):
    key: str
    value: str
    item: Item


class SearchQuery(_Model):
    """A search inside what the caller may read."""

    text: str = Field(min_length=1, max_length=QUERY_CHARS)
    limit: int = Field(default=10, ge=1, le=200)
    kinds: list[Kind] | None = None
    spaces: list[str] | None = None
    tags: list[str] | None = None
    max_sensitivity: Sensitivity | None = None
    since: datetime | None = None
    until: datetime | None = None
    mode: Literal["hybrid", "lexical", "dense"] = "hybrid"
    purpose: str | None = None


class SearchHit(_Model):
    """One ranked result: data with provenance, never an instruction."""

    item_id: str
    kind: Kind
    text: str = Field(
        description="The matching text: the memory (its relative dates resolved, e.g. 'yesterday ⟨yesterday = 7 May 2023⟩'), "
        "preference, or document chunk."
    )
    snippet: str
    score: float
    space: str
    tags: list[str]
    sensitivity: Sensitivity
    key: str | None = None
    chunk: int | None = Field(default=None, description="Chunk number for documents.")
    title: str | None = Field(default=None, description="Document title for chunks.")
    provenance: Provenance


class SearchPage(_Model):
    query: str
    hits: list[SearchHit]


class DocumentAdded(_Model):
    item_id: str
    path: str
    action: Literal["added", "replaced", "unchanged"]
    chunks: int


class FolderReport(_Model):
    added: int
    replaced: int
    unchanged: int
    skipped: list[str] = Field(default_factory=list, description="Files not added, with the reason.")
    documents: list[DocumentAdded] = Field(default_factory=list)


class DocumentDetail(_Model):
    item: Item
    path: str
    filename: str
    mime: str
    size: int
    sha256: str
    chunks: list[str]


class SpaceCount(_Model):
    space: str
    memories: int
    preferences: int
    documents: int


class StatusReport(_Model):
    home: str
    schema_version: int
    items: int
    memories: int
    preferences: int
    documents: int
    chunks: int
    forgotten: int
    spaces: list[str]
    model: str
    db_bytes: int
    waiting_items: int = Field(0, description="Items with a unit waiting for its embedding (the backlog).")
    waiting_units: int = Field(0, description="Units (memories, preferences, chunks) waiting for their embedding.")
