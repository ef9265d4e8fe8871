"""Reports about the derived retrieval indexes (issue 13)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrievalReport(_Model):
    """The state of embeddings and the vector index."""

    model: str = Field(description="Embedding model the vault is configured for.")
    backend: str | None = Field(description="onnx or torch once loaded; None if not loaded in this process.")
    units: int = Field(description="Searchable units: memories, preferences and document chunks.")
    vectors: int = Field(description="Units with a vector from the configured model.")
    stale_vectors: int = Field(description="Vectors made by another model; `ctxvault reindex` replaces them.")
    missing_vectors: int
    waiting_items: int = Field(0, description="Items with a unit waiting for its embedding (the backlog).")
    waiting_units: int = Field(0, description="Units waiting for their embedding: searchable by keywords until then.")
    index_kind: str | None = Field(description="flat (exact) or ivf (approximate); None if not loaded.")
    index_size: int
    generation: int


class ReindexReport(_Model):
    embedded: int
    model: str
    switched_from: str | None = None  # the vault's model before `reindex --model` switched it
    index_kind: str | None
    index_size: int
