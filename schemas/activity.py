"""The owner's view of the audit log: a filtered page of it, a summary per app, what an app saw."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.access import AuditEntry
from schemas.limits import ID_CHARS, NAME_CHARS

ACTIVITY_PAGE = 50  # entries per page of the Activity timeline
ACTIVITY_PAGE_MAX = 500


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActivityQuery(_Model):
    """Which audit entries to show: every field narrows; ``before`` pages back (entries with a smaller seq)."""

    app: str | None = Field(default=None, max_length=ID_CHARS, description="An app's name or id (a removed app's id works).")
    event: str | None = Field(default=None, max_length=NAME_CHARS)
    since: datetime | None = Field(default=None, description="Entries at or after this instant.")
    until: datetime | None = Field(default=None, description="Entries before this instant.")
    before: int | None = Field(default=None, ge=1, description="Only entries with a smaller sequence number (the next page).")
    limit: int = Field(default=ACTIVITY_PAGE, ge=1, le=ACTIVITY_PAGE_MAX)


class ActivityPage(_Model):
    """A page of the timeline, newest first."""

    entries: list[AuditEntry]
    total: int = Field(description="Entries matching the filters, over every page.")
    next_before: int | None = Field(description="``before`` for the next (older) page; None on the last page.")
    events: list[str] = Field(description="Every event type in the log, for a filter's choices.")


class AppActivity(_Model):
    """One app's line of the privacy report."""

    app_id: str
    name: str
    removed: bool = Field(description="The app is no longer registered (its entries stay).")
    last_access: datetime | None = Field(description="Its last disclosure, write or forget; None if it never got anything.")
    last_event: datetime
    items_seen: int = Field(description="Distinct items disclosed to it.")
    disclosures: int
    writes: int
    denials: int


class Disclosure(_Model):
    """One item an app saw: how often and when; ``kind`` and ``title`` are None once the item is gone."""

    item_id: str
    times: int
    first: datetime
    last: datetime
    kind: str | None = None
    space: str | None = None
    title: str | None = Field(default=None, description="The start of the item's text (the owner's own data).")
    forgotten: bool = False
