"""Registered apps: principals identified by a random bearer token stored only as its hash."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime, timedelta

from schemas.access import App, AppCreated
from vault.errors import InvalidInput, InvalidToken, NotFound
from vault.items import new_id, utcnow
from vault.principal import Principal
from vault.store import Row, Store

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
TOKEN_PREFIX = "cvt_"
# An app's "last seen" is kept to the minute: every HTTP request authenticates its token (twice),
# and a write per request would queue every read of a busy server behind the write lock.
SEEN_RESOLUTION = timedelta(minutes=1)


def new_token() -> str:
    """A bearer token: 256 random bits, so a plain sha256 is a safe way to store it."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_of(app: App) -> Principal:
    return Principal.app(app.id, name=app.name)


def _row_to_app(row: Row) -> App:
    return App(
        id=row["id"],
        name=row["name"],
        created_at=datetime.fromisoformat(row["created_at"]),
        last_seen_at=datetime.fromisoformat(row["last_seen_at"]) if row["last_seen_at"] else None,
        redirect_uris=json.loads(row["redirect_uris"]),
    )


class Apps:
    """The apps table. Callers check that the owner is asking; this class does not."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, name: str, redirect_uris: list[str] | None = None, now: datetime | None = None) -> AppCreated:
        """Register an app; its token is returned once.

        Raises:
            InvalidInput: a malformed name or redirect URI, or the name is taken.
        """
        if not APP_NAME.fullmatch(name):
            raise InvalidInput(f"invalid app name {name!r}: use lowercase letters, digits, '.', '_' or '-' (at most 64)")
        uris = list(redirect_uris or [])
        for uri in uris:
            if not re.match(r"^(https://|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/)", uri):
                raise InvalidInput(f"redirect URI {uri!r} must be https:// or a loopback http:// address")
        if self._store.one("SELECT 1 FROM apps WHERE name = ?", [name]) is not None:
            raise InvalidInput(f"an app named {name!r} already exists")
        token = new_token()
        app_id = new_id()
        self._store.execute(
            "INSERT INTO apps (id, name, created_at, last_seen_at, token_hash, redirect_uris) VALUES (?, ?, ?, NULL, ?, ?)",
            [app_id, name, (now or utcnow()).isoformat(), hash_token(token), json.dumps(uris)],
        )
        return AppCreated(app=self.get(app_id), token=token)

    def get(self, name_or_id: str) -> App:
        """An app by name or id.

        Raises:
            NotFound
        """
        row = self._store.one("SELECT * FROM apps WHERE name = ? OR id = ?", [name_or_id, name_or_id])
        if row is None:
            raise NotFound(f"no app {name_or_id!r}; see `ctxvault apps list`")
        return _row_to_app(row)

    def find(self, app_id: str) -> App | None:
        row = self._store.one("SELECT * FROM apps WHERE id = ?", [app_id])
        return _row_to_app(row) if row else None

    def all(self) -> list[App]:
        return [_row_to_app(r) for r in self._store.query("SELECT * FROM apps ORDER BY name")]

    def rotate_token(self, name_or_id: str) -> AppCreated:
        """Replace an app's token; the old one stops working at once."""
        app = self.get(name_or_id)
        token = new_token()
        self._store.execute("UPDATE apps SET token_hash = ? WHERE id = ?", [hash_token(token), app.id])
        return AppCreated(app=app, token=token)

    def remove(self, name_or_id: str) -> App:
        app = self.get(name_or_id)
        self._store.execute("DELETE FROM apps WHERE id = ?", [app.id])
        return app

    def authenticate(self, token: str, now: datetime | None = None) -> App:
        """The app holding ``token``; marks it seen (to the ``SEEN_RESOLUTION``: only then is anything written).

        Raises:
            InvalidToken: no app holds this token (unknown, rotated or removed).
        """
        row = self._store.one("SELECT * FROM apps WHERE token_hash = ?", [hash_token(token.strip())])
        if row is None:
            raise InvalidToken("unknown app token: it was never issued, was rotated, or its app was removed")
        app = _row_to_app(row)
        at = now or utcnow()
        if app.last_seen_at is not None and timedelta(0) <= at - app.last_seen_at < SEEN_RESOLUTION:
            return app
        with self._store.transaction():
            self._store.execute("UPDATE apps SET last_seen_at = ? WHERE id = ?", [at.isoformat(), row["id"]])
        return app.model_copy(update={"last_seen_at": at})
