"""Grants and consent requests: what the owner lent to which app, and what apps asked for.

A grant is live while it is neither revoked nor expired; liveness is decided at
each call from the stored rows (nothing is cached), so a revocation or an expiry
takes effect on the app's next call.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from schemas.access import ConsentRequest, ConsentStatus, Grant
from vault.errors import InvalidInput, LimitReached, NotFound
from vault.items import new_id, utcnow
from vault.scopes import Scope, format_scope, parse_scope
from vault.store import Row, Store

# An unanswered consent request lapses after a day: the app asks again, the owner
# is never shown a week-old request they no longer remember the context of.
REQUEST_TTL = timedelta(days=1)
CONSENT_PATH = "/consent/{id}"
# Pending requests one app may hold at once: enough for an app asking for a few slices
# in turn, few enough that the owner's list stays readable (300 in 10 s were seen).
MAX_PENDING_PER_APP = 20

_LIVE = "g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > ?)"


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def live_scopes(store: Store, app_id: str, now: datetime | None = None) -> list[str]:
    """Every scope of the app's live grants, as stored (canonical text)."""
    rows = store.query(f"SELECT g.scopes FROM grants g WHERE g.app_id = ? AND {_LIVE}", [app_id, (now or utcnow()).isoformat()])
    return [s for r in rows for s in json.loads(r[0])]


def live_scope_objects(store: Store, app_id: str, now: datetime | None = None) -> list[Scope]:
    return [parse_scope(s) for s in live_scopes(store, app_id, now)]


def _row_to_grant(row: Row, now: datetime) -> Grant:
    expires, revoked = _dt(row["expires_at"]), _dt(row["revoked_at"])
    return Grant(
        id=row["id"],
        app_id=row["app_id"],
        app_name=row["app_name"],
        scopes=json.loads(row["scopes"]),
        purpose=row["purpose"],
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=expires,
        revoked_at=revoked,
        consent_id=row["consent_id"],
        active=revoked is None and (expires is None or expires > now),
    )


class Grants:
    """The grants table. Callers check that the owner is asking; this class does not."""

    _SELECT = "SELECT g.*, a.name AS app_name FROM grants g LEFT JOIN apps a ON a.id = g.app_id"

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self,
        app_id: str,
        scopes: list[Scope],
        purpose: str | None = None,
        expires_at: datetime | None = None,
        consent_id: str | None = None,
        now: datetime | None = None,
    ) -> Grant:
        """Store a grant.

        Raises:
            InvalidInput: no scopes, or an expiry that is already past.
        """
        now = now or utcnow()
        if not scopes:
            raise InvalidInput("a grant needs at least one scope")
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("the expiry must be in the future")
        grant_id = new_id()
        texts = list(dict.fromkeys(format_scope(s) for s in scopes))
        self._store.execute(
            "INSERT INTO grants (id, app_id, scopes, purpose, created_at, expires_at, revoked_at, consent_id) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            [grant_id, app_id, json.dumps(texts), purpose, now.isoformat(), expires_at.isoformat() if expires_at else None, consent_id],
        )
        return self.get(grant_id, now)

    def get(self, grant_id: str, now: datetime | None = None) -> Grant:
        row = self._store.one(f"{self._SELECT} WHERE g.id = ?", [grant_id])
        if row is None:
            raise NotFound(f"no grant {grant_id!r}; see `ctxvault grants list`")
        return _row_to_grant(row, now or utcnow())

    def query(self, app_id: str | None = None, active_only: bool = False, now: datetime | None = None) -> list[Grant]:
        now = now or utcnow()
        where, params = ["1"], []
        if app_id is not None:
            where.append("g.app_id = ?")
            params.append(app_id)
        if active_only:
            where.append(_LIVE)
            params.append(now.isoformat())
        rows = self._store.query(f"{self._SELECT} WHERE {' AND '.join(where)} ORDER BY g.created_at, g.id", params)
        return [_row_to_grant(r, now) for r in rows]

    def revoke(self, grant_id: str, now: datetime | None = None) -> Grant:
        """Revoke one grant (revoking a revoked grant changes nothing)."""
        now = now or utcnow()
        grant = self.get(grant_id, now)
        if grant.revoked_at is None:
            self._store.execute("UPDATE grants SET revoked_at = ? WHERE id = ?", [now.isoformat(), grant_id])
        return self.get(grant_id, now)

    def revoke_app(self, app_id: str, now: datetime | None = None) -> list[Grant]:
        """Revoke every unrevoked grant of an app; return the grants revoked."""
        now = now or utcnow()
        ids = [r[0] for r in self._store.query("SELECT id FROM grants WHERE app_id = ? AND revoked_at IS NULL", [app_id])]
        return [self.revoke(i, now) for i in ids]


def _status(row: Row, now: datetime) -> ConsentStatus:
    status: ConsentStatus = row["status"]
    if status == "pending" and datetime.fromisoformat(row["expires_at"]) <= now:
        return "expired"
    return status


def _row_to_request(row: Row, now: datetime) -> ConsentRequest:
    return ConsentRequest(
        id=row["id"],
        app_id=row["app_id"],
        app_name=row["app_name"],
        scopes=json.loads(row["scopes"]),
        purpose=row["purpose"],
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
        grant_expires_at=_dt(row["grant_expires_at"]),
        status=_status(row, now),
        decided_at=_dt(row["decided_at"]),
        grant_id=row["grant_id"],
        link=CONSENT_PATH.format(id=row["id"]),
    )


class ConsentRequests:
    """The consent_requests table. Only the owner decides; callers enforce that."""

    _SELECT = "SELECT c.*, a.name AS app_name FROM consent_requests c LEFT JOIN apps a ON a.id = c.app_id"

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self,
        app_id: str,
        scopes: list[Scope],
        purpose: str,
        grant_expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> ConsentRequest:
        """Store a pending request.

        Raises:
            InvalidInput: no scopes, an empty purpose, or a grant expiry already past.
            LimitReached: the app already holds ``MAX_PENDING_PER_APP`` pending requests.
        """
        now = now or utcnow()
        if not scopes:
            raise InvalidInput("ask for at least one scope, e.g. read:memories#space=work")
        if not purpose.strip():
            raise InvalidInput("say why the app needs this access (purpose)")
        if grant_expires_at is not None and grant_expires_at <= now:
            raise InvalidInput("the requested expiry must be in the future")
        if len(self.query(status="pending", app_id=app_id, now=now)) >= MAX_PENDING_PER_APP:
            raise LimitReached(
                f"this app already has {MAX_PENDING_PER_APP} pending consent requests; wait until the owner decides them "
                f"(or they lapse after {REQUEST_TTL.days} day) before asking again"
            )
        request_id = new_id()
        texts = list(dict.fromkeys(format_scope(s) for s in scopes))
        self._store.execute(
            "INSERT INTO consent_requests (id, app_id, scopes, purpose, created_at, expires_at, grant_expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                request_id, app_id, json.dumps(texts), purpose.strip(), now.isoformat(), (now + REQUEST_TTL).isoformat(),
                grant_expires_at.isoformat() if grant_expires_at else None,
            ],
        )  # fmt: skip
        return self.get(request_id, now)

    def duplicate(self, app_id: str, scopes: list[Scope], purpose: str, now: datetime | None = None) -> ConsentRequest | None:
        """The app's pending request for the same scopes (in any order) and the same purpose, if any."""
        wanted = sorted({format_scope(s) for s in scopes})
        for request in self.query(status="pending", app_id=app_id, now=now):
            if sorted(request.scopes) == wanted and request.purpose == purpose.strip():
                return request
        return None

    def get(self, request_id: str, now: datetime | None = None) -> ConsentRequest:
        row = self._store.one(f"{self._SELECT} WHERE c.id = ?", [request_id])
        if row is None:
            raise NotFound(f"no consent request {request_id!r}; see `ctxvault consent list`")
        return _row_to_request(row, now or utcnow())

    def query(self, status: ConsentStatus | None = None, app_id: str | None = None, now: datetime | None = None) -> list[ConsentRequest]:
        now = now or utcnow()
        where, params = ["1"], []
        if app_id is not None:
            where.append("c.app_id = ?")
            params.append(app_id)
        rows = self._store.query(f"{self._SELECT} WHERE {' AND '.join(where)} ORDER BY c.created_at, c.id", params)
        requests = [_row_to_request(r, now) for r in rows]
        return [r for r in requests if status is None or r.status == status]

    def decide(self, request_id: str, status: ConsentStatus, grant_id: str | None = None, now: datetime | None = None) -> ConsentRequest:
        now = now or utcnow()
        self._store.execute(
            "UPDATE consent_requests SET status = ?, decided_at = ?, grant_id = ? WHERE id = ?",
            [status, now.isoformat(), grant_id, request_id],
        )
        return self.get(request_id, now)

    def pending(self, request_id: str, now: datetime | None = None) -> ConsentRequest:
        """A request the owner can still decide.

        Raises:
            NotFound, InvalidInput: already decided or expired.
        """
        request = self.get(request_id, now)
        if request.status != "pending":
            raise InvalidInput(f"consent request {request_id} is {request.status}; only a pending request can be decided")
        return request
