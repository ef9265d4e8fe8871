"""What a set of scopes would reach, for the owner deciding on a request: counts and a preview."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.items import Kind, Sensitivity


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReachCount(_Model):
    """How many live items of one space, kind and sensitivity the scopes reach."""

    space: str
    kind: Kind
    sensitivity: Sensitivity
    count: int


class ReachPreview(_Model):
    """One item the app would see, as the app would see it (the start of its text)."""

    id: str
    kind: Kind
    space: str
    sensitivity: Sensitivity
    title: str = Field(description="A preference's key, else the start of the text.")
    snippet: str = Field(description="The start of its text (a preference's value).")


class ScopeReach(_Model):
    """What a grant of ``scopes`` would reach right now."""

    scopes: list[str]
    seen: int = Field(description="Live items it could search or read.")
    changed: int = Field(description="Live items it could change (write scopes).")
    forgotten: int = Field(description="Live items it could forget (delete scopes).")
    counts: list[ReachCount] = Field(description="What it could search or read, per space, kind and sensitivity.")
    preview: list[ReachPreview] = Field(description="The newest items it could read, as the app would see them.")
