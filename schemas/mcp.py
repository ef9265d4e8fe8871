"""Payloads the MCP surface returns that no other surface needs yet."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.access import AccessSummary, ConsentRequest
from schemas.items import Item, PreferenceOut, SearchHit, SpaceCount


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PreferenceList(_Model):
    """Preferences the caller may read: all of them, the ones asked for by key, or those relevant to a task."""

    preferences: list[PreferenceOut]
    missing: list[str] = Field(default_factory=list, description="Requested keys that are unset or outside this app's grant.")


class ProfileSummary(_Model):
    """What the vault holds that the caller may read: spaces with counts, and current preferences."""

    spaces: list[SpaceCount]
    preferences: list[PreferenceOut]


class TaskContext(_Model):
    """The in-scope context relevant to a task: matching items and preferences, as data with provenance."""

    task: str
    hits: list[SearchHit]
    preferences: list[PreferenceOut]


class ForgetResult(_Model):
    """The item that was forgotten; it has left search and will be erased by the owner's next purge."""

    item: Item


class AccessRequested(_Model):
    """A consent request waiting for the owner; nothing is granted until the owner approves it."""

    request: ConsentRequest
    consent_url: str = Field(description="The vault's own consent page; show it to the user. It carries no personal data.")
    approve_command: str = Field(description="What the owner can run in a terminal instead of opening the page.")
    note: str = Field(
        default="The user must approve this in the vault (page or CLI); call list_access afterwards to see the new scopes.",
    )


class OAuthClient(_Model):
    """An OAuth client of the vault's authorization server; it acts as one app once the owner approves it."""

    client_id: str
    kind: Literal["registered", "metadata", "dynamic"]
    client_name: str
    redirect_uris: list[str]
    app_id: str | None = None


class OAuthTokens(_Model):
    """A token response (RFC 6749 §5.1); the refresh token rotates on every use."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    scope: str


class Authorization(_Model):
    """The owner's approval of an OAuth client: the one-time code to send back to it."""

    code: str
    app_id: str
    grant_id: str


class AccessReport(AccessSummary):
    """What this app may do now (live grants, their scopes, pending requests) and the scopes it could ask for."""

    requestable: list[str] = Field(
        description="Scope forms to pass to request_access; narrow them with #space=…;tag=…;sens=… (see docs/consent.md)."
    )
