"""Items as every surface sees them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.limits import QUERY_CHARS

Kind = Literal["memory", "preference", "document"]
Sensitivity = Literal["low", "medium", "high"]

SPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TAG_PATTERN = r"^[^\s,;#=]{1,64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provenance(_Model):
    """Where an item came from: who wrote it, through what, and when."""

    source: str = Field(description="Channel it arrived through: cli, mcp, import:<format>, document:<path>.")
    created_by: str = Field(description="'owner' or the id of the app that wrote it.")
    created_at: datetime
    updated_at: datetime


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
        import re

        bad = [t for t in tags if not re.fullmatch(TAG_PATTERN, t)]
        if bad:
            raise ValueError(f"invalid tag(s) {bad}: tags are 1-64 characters without spaces, ',', ';', '#', '='")
        return sorted(set(tags))

    @field_validator("text")
    @classmethod
    def _text(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        return text.strip()


class RememberResult(_Model):
    """What remember did: added a new memory, or updated a near-duplicate."""

    item: Item
    action: Literal["added", "updated", "unchanged"]
    duplicate_of: str | None = Field(default=None, description="The existing memory a near-duplicate matched.")
    similarity: float | None = None


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
