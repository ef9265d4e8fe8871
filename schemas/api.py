"""Bodies of the REST API (/v1) that no other surface shares, and its one error shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.items import SPACE_PATTERN, Sensitivity
from schemas.limits import FILTER_ITEMS, MEMORY_CHARS, PURPOSE_CHARS, SCOPES

# A JSON body larger than this is refused (413) while it is read, before authentication.
API_BODY_BYTES = 1_048_576


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Model):
    type: str = Field(description="The error class, e.g. NotFound, ScopeDenied, InvalidInput.")
    message: str


class ErrorBody(_Model):
    """Every error of the REST API: one shape, whatever the status."""

    error: ErrorDetail
    status: int


class EditIn(_Model):
    """Fields to change on an item; the previous version is kept in its history."""

    text: str | None = Field(default=None, min_length=1, max_length=MEMORY_CHARS)
    space: str | None = Field(default=None, pattern=SPACE_PATTERN)
    tags: list[str] | None = Field(default=None, max_length=FILTER_ITEMS)
    sensitivity: Sensitivity | None = None


class PreferenceIn(_Model):
    value: str = Field(min_length=1, max_length=MEMORY_CHARS)
    space: str = Field(default="personal", pattern=SPACE_PATTERN)
    sensitivity: Sensitivity = "low"


class AccessRequestIn(_Model):
    """An app asks the owner for scopes (the owner decides in the console's Inbox)."""

    scopes: list[str] = Field(min_length=1, max_length=SCOPES)
    purpose: str = Field(min_length=1, max_length=PURPOSE_CHARS)
    expires_at: datetime | None = None


class ApproveIn(_Model):
    """The owner approves a consent request, optionally narrowed to fewer or tighter scopes."""

    scopes: list[str] | None = Field(default=None, max_length=SCOPES)
    expires_at: datetime | None = None


class Purged(_Model):
    purged: int = Field(description="Rows erased: the item and its earlier versions.")


class RestoreIn(_Model):
    version: int = Field(ge=1, description="The version number as the item's history shows it.")
