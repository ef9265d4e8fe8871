"""Export bundles and import reports: the companion files of a bundle and the summaries.

A bundle is a PAM v1.0 directory (``memory-store.json``, ``embeddings.json``) plus our
companion files under ``x-ctxvault/``; docs/export-format.md describes every byte.
The models here describe the companion files (their JSON Schemas are generated into
schemas/json/) and what export and import report back to the owner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.items import Conflict, Sensitivity

FORMAT_NAME = "ctxvault-bundle"
FORMAT_VERSION = 1
PAM_SCHEMA_VERSION = "1.0"
COMPANION_DIR = "x-ctxvault"

ImportFormat = Literal["bundle", "pam", "chatgpt", "claude", "gemini", "grok", "copilot", "mcp-memory", "mem0", "markdown"]
IMPORT_FORMATS: tuple[ImportFormat, ...] = (
    "bundle", "pam", "chatgpt", "claude", "gemini", "grok", "copilot", "mcp-memory", "mem0", "markdown",
)  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileEntry(_Model):
    """One file of the bundle, as the manifest pins it."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Selection(_Model):
    """Which items an export holds: the same selectors as a grant's scope."""

    spaces: list[str] | None = None
    kinds: list[Literal["memory", "preference", "document"]] | None = None
    tags: list[str] | None = None
    max_sensitivity: Sensitivity | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def is_everything(self) -> bool:
        return self == Selection()


class BundleCounts(_Model):
    memories: int = Field(default=0, ge=0)
    preferences: int = Field(default=0, ge=0, description="Current preference values.")
    preference_versions: int = Field(default=0, ge=0, description="Older values kept as history.")
    documents: int = Field(default=0, ge=0)
    chunks: int = Field(default=0, ge=0)
    vectors: int = Field(default=0, ge=0)


class Manifest(_Model):
    """``x-ctxvault/manifest.json``: what the bundle holds and the sha256 of every other file."""

    format: Literal["ctxvault-bundle"] = "ctxvault-bundle"
    format_version: int = Field(description="1 for this layout; readers refuse versions they do not know.")
    pam_schema_version: str = PAM_SCHEMA_VERSION
    exported_by: str
    created_at: datetime
    selection: Selection
    counts: BundleCounts
    model: str | None = Field(default=None, description="Embedding model of vectors.f32, if any.")
    dimensions: int | None = Field(default=None, ge=1)
    files: dict[str, FileEntry]


class DocumentFileInfo(_Model):
    member: str = Field(description="Path of the original bytes inside the bundle.")
    path: str = Field(description="Where the owner added it from.")
    filename: str
    mime: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class VersionEntry(_Model):
    """An earlier version of an item (``history`` in ``metadata["x-ctxvault"]`` and in documents.json), oldest first."""

    text: str
    space: str
    tags: list[str]
    sensitivity: Sensitivity
    content_hash: str
    saved_by: str
    saved_at: datetime = Field(description="When this version was written; with content_hash, how vaults recognise a shared version.")
    replaced_by: str
    replaced_at: datetime
    file: DocumentFileInfo | None = Field(
        default=None, description="A document version's file, a member of the bundle: the content that version held."
    )


class ItemExtras(_Model):
    """``metadata["x-ctxvault"]`` of every PAM memory we write: what PAM has no field for."""

    kind: Literal["memory", "preference"]
    key: str | None = None
    space: str
    tags: list[str] = Field(description="Tags exactly as given; PAM tags hold only those matching its pattern.")
    sensitivity: Sensitivity
    source: str
    created_by: str
    supersedes: str | None = None
    superseded_at: datetime | None = None
    meta: dict[str, object] = Field(default_factory=dict)
    history: list[VersionEntry] = Field(default_factory=list, description="Earlier versions, oldest first (omitted when none).")
    left_out: list[datetime] = Field(
        default_factory=list,
        description="When each earlier version outside the selection was written (no content, no hash): how an importing "
        "vault still at one of them knows it is behind, not changed (omitted when none).",
    )


class PreferenceHistory(_Model):
    key: str
    current: str | None = Field(description="Id of the live value, if any in this bundle.")
    versions: list[str] = Field(description="Ids of every value, newest first.")


class PreferencesFile(_Model):
    """``x-ctxvault/preferences.json``: each preference key with its history."""

    preferences: list[PreferenceHistory]


class ChunkEntry(_Model):
    seq: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str


class DocumentEntry(_Model):
    id: str = Field(min_length=1, max_length=128)
    title: str
    space: str
    tags: list[str]
    sensitivity: Sensitivity
    source: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    content_hash: str
    meta: dict[str, object] = Field(default_factory=dict)
    file: DocumentFileInfo
    chunks: list[ChunkEntry]
    history: list[VersionEntry] = Field(default_factory=list, description="Earlier versions, oldest first.")
    left_out: list[datetime] = Field(
        default_factory=list, description="When each earlier version outside the selection was written (as in a memory's extras)."
    )


class DocumentsFile(_Model):
    """``x-ctxvault/documents.json``: documents, their chunks, and where their files are."""

    documents: list[DocumentEntry]


class SpaceEntry(_Model):
    name: str
    memories: int
    preferences: int
    documents: int


class SpacesFile(_Model):
    """``x-ctxvault/spaces.json``: the spaces of the exported items."""

    spaces: list[SpaceEntry]


class EarlierState(_Model):
    """A state an item held before the one it was forgotten in: how a vault still at that state is recognised."""

    saved_at: datetime
    content_hash: str = Field(min_length=1, max_length=128)


class TombstoneEntry(_Model):
    id: str = Field(min_length=1, max_length=128)
    content_hash: str | None = Field(
        default=None,
        description="A forgotten item's content hash; a purged id carries none (a hash would confirm a guess at erased content).",
    )
    state: Literal["forgotten", "purged"]
    at: datetime = Field(description="When it was forgotten or purged.")
    updated_at: datetime | None = Field(default=None, description="A forgotten item's last change before it was forgotten.")
    earlier: list[EarlierState] | None = Field(
        default=None,
        description="A forgotten item's earlier versions inside the selection: a vault still at one of them is behind, "
        "and forgets the item too. Absent in bundles made before it existed.",
    )


class TombstonesFile(_Model):
    """``x-ctxvault/tombstones.json``: items forgotten (id and content hash) or purged (id only) in the exporting vault.

    An import forgets them in the target, and a purged id is never brought back by an older bundle.
    """

    tombstones: list[TombstoneEntry]


class VectorsFile(_Model):
    """``x-ctxvault/vectors.json``: row ``n`` of vectors.f32 is the unit ``units[n]`` = [item id, chunk seq]."""

    model: str
    dimensions: int = Field(ge=1, le=8192)
    units: list[tuple[str, int]]


class ExportSummary(_Model):
    """What an export wrote."""

    path: str
    format: Literal["bundle", "markdown"]
    encryption: Literal["recipients", "passphrase", "none"]
    counts: BundleCounts
    bytes: int
    files: int
    unreadable: list[str] = Field(
        default_factory=list, description="A salvage export (--salvage): what the damaged vault could not give, row groups or files."
    )
    audited: bool = Field(default=True, description="False when a salvage export could not be written to the (damaged) audit log.")


class Skipped(_Model):
    ref: str = Field(description="The id or name of the skipped entry in the source.")
    reason: str


class ImportSummary(_Model):
    """What an import did (or, with dry_run, would do)."""

    source: str
    detected: ImportFormat
    dry_run: bool
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = Field(default_factory=list)
    vectors_reused: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict, description="New or updated items per kind.")
    conflicts: list[Conflict] = Field(
        default_factory=list, description="Items changed on both sides: both kept, listed by `ctxvault conflicts`."
    )
    forgotten: int = Field(default=0, description="Items the source had forgotten or purged, forgotten here too.")


COMPANION_MODELS: dict[str, type[BaseModel]] = {
    "manifest": Manifest,
    "preferences": PreferencesFile,
    "documents": DocumentsFile,
    "spaces": SpacesFile,
    "tombstones": TombstonesFile,
    "vectors": VectorsFile,
}


def json_schemas() -> dict[str, str]:
    """The JSON Schema (2020-12) text of every companion file, by file name under schemas/json/."""
    import json

    return {
        f"ctxvault-{name}.schema.json": json.dumps(model.model_json_schema(mode="validation"), indent=2, ensure_ascii=False) + "\n"
        for name, model in COMPANION_MODELS.items()
    }


if __name__ == "__main__":  # python -m schemas.portable: regenerate schemas/json/ctxvault-*.schema.json
    from pathlib import Path

    folder = Path(__file__).parent / "json"
    folder.mkdir(exist_ok=True)
    for filename, text in json_schemas().items():
        (folder / filename).write_text(text, encoding="utf-8")
