"""Pydantic models for every boundary: CLI --json, REST, MCP structured content, export."""

from schemas.items import (
    DocumentAdded,
    DocumentDetail,
    FolderReport,
    Item,
    ItemPage,
    MemoryIn,
    PreferenceOut,
    Provenance,
    RememberResult,
    SearchHit,
    SearchPage,
    SearchQuery,
    SpaceCount,
    StatusReport,
)

__all__ = [
    "DocumentAdded",
    "DocumentDetail",
    "FolderReport",
    "Item",
    "ItemPage",
    "MemoryIn",
    "PreferenceOut",
    "Provenance",
    "RememberResult",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "SpaceCount",
    "StatusReport",
]
