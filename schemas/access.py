"""Apps, grants, consent requests and audit entries as every surface sees them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ConsentStatus = Literal["pending", "approved", "denied", "expired"]
APP_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class App(_Model):
    """A registered app: a principal that sees only what its grants allow."""

    id: str
    name: str
    created_at: datetime
    last_seen_at: datetime | None = Field(default=None, description="When its token was last used.")
    redirect_uris: list[str] = Field(default_factory=list)


class AppCreated(_Model):
    """A new (or re-keyed) app with its token. The token is shown this once and stored only hashed."""

    app: App
    token: str = Field(description="Bearer token for the app (CTXVAULT_APP_TOKEN on stdio).")


class Grant(_Model):
    """Scopes the owner lent to one app, with a purpose and an optional expiry."""

    id: str
    app_id: str
    app_name: str | None = Field(default=None, description="None once the app was removed.")
    scopes: list[str]
    purpose: str | None = None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    consent_id: str | None = Field(default=None, description="The consent request it came from, if any.")
    active: bool = Field(description="Not revoked and not expired at the time of the answer.")


class ConsentRequest(_Model):
    """An app's request for scopes, waiting for the owner's decision."""

    id: str
    app_id: str
    app_name: str | None = None
    scopes: list[str]
    purpose: str
    created_at: datetime
    expires_at: datetime = Field(description="The request lapses unanswered after this.")
    grant_expires_at: datetime | None = Field(default=None, description="The grant expiry the app asked for.")
    status: ConsentStatus
    decided_at: datetime | None = None
    grant_id: str | None = None
    link: str = Field(description="Path of the owner's consent page; it carries no personal data and grants nothing by itself.")


class AccessSummary(_Model):
    """What a principal may do right now: its live grants and pending requests."""

    principal: str
    app: App | None = None
    scopes: list[str] = Field(description="Every live scope, across grants.")
    grants: list[Grant]
    pending: list[ConsentRequest]


class AuditEntry(_Model):
    """One line of the hash-chained audit log."""

    seq: int
    at: datetime
    principal: str
    app_id: str | None = None
    event: str = Field(description="disclose, write, forget, purge, deny, grant, revoke, consent_*, app_*.")
    item_ids: list[str] = Field(default_factory=list)
    scope: str | None = None
    purpose: str | None = None
    detail: dict[str, object] = Field(default_factory=dict)
    hash: str


class AuditReport(_Model):
    """The result of a successful ``audit verify``."""

    entries: int
    head: str = Field(description="Hash of the newest entry ('' for an empty log).")
