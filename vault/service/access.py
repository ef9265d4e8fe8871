"""Apps, grants, consent requests and the audit log (the owner's controls)."""

from __future__ import annotations

from datetime import datetime

from schemas.access import AccessSummary, App, AppCreated, AuditEntry, AuditReport, ConsentRequest, ConsentStatus, Grant
from vault.access import ConsentRequests, Grants
from vault.apps import Apps, principal_of
from vault.errors import InvalidInput, NotFound
from vault.filters import Sensitivity
from vault.items import utcnow
from vault.oauth import OAuthState
from vault.principal import Principal
from vault.scopes import format_scope, narrow_scope, parse_scopes
from vault.service.core import ServiceCore, _iso


class AccessPart(ServiceCore):
    """Apps, grants, consent requests and the audit log (the owner's controls)."""

    def add_app(self, principal: Principal, name: str, redirect_uris: list[str] | None = None, now: datetime | None = None) -> AppCreated:
        """Register an app with no access; its token is in the result, shown this once.

        Raises:
            InvalidInput: a malformed or taken name. ScopeDenied: not the owner.
        """
        self._policy.require_owner(principal, "register apps")
        with self.store.transaction():
            created = Apps(self.store).add(name, redirect_uris, now=now)
            self._audit.record(principal, "app_add", detail={"app_id": created.app.id, "name": name}, now=now)
        return created

    def list_apps(self, principal: Principal) -> list[App]:
        """Every registered app (owner only)."""
        self._policy.require_owner(principal, "list apps")
        return Apps(self.store).all()

    def show_app(self, principal: Principal, name: str, now: datetime | None = None) -> AccessSummary:
        """One app with its grants and pending consent requests (owner only).

        Raises:
            NotFound
        """
        self._policy.require_owner(principal, "inspect apps")
        return self._access_summary(principal_of(Apps(self.store).get(name)), now)

    def rotate_app_token(self, principal: Principal, name: str, now: datetime | None = None) -> AppCreated:
        """Give an app a new token; the old one stops working at once."""
        self._policy.require_owner(principal, "rotate app tokens")
        with self.store.transaction():
            created = Apps(self.store).rotate_token(name)
            self._audit.record(principal, "app_rotate_token", detail={"app_id": created.app.id}, now=now)
        return created

    def remove_app(self, principal: Principal, name: str, now: datetime | None = None) -> App:
        """Unregister an app: its token stops working, its grants are revoked, its requests denied."""
        self._policy.require_owner(principal, "remove apps")
        with self.store.transaction():
            app = Apps(self.store).get(name)
            revoked = Grants(self.store).revoke_app(app.id, now=now)
            consents = ConsentRequests(self.store)
            for request in consents.query(status="pending", app_id=app.id, now=now):
                consents.decide(request.id, "denied", now=now)
            # OAuth tokens die with the app, and its clients must be approved afresh.
            OAuthState(self.store).revoke_app(app.id, now=now or utcnow())
            self.store.execute("UPDATE oauth_clients SET app_id = NULL WHERE app_id = ?", [app.id])
            Apps(self.store).remove(app.id)
            self._audit.record(
                principal, "app_remove", detail={"app_id": app.id, "name": app.name, "grants_revoked": [g.id for g in revoked]}, now=now
            )
        return app

    def authenticate_app(self, token: str, now: datetime | None = None) -> Principal:
        """The app principal holding ``token`` (MCP stdio: CTXVAULT_APP_TOKEN; HTTP: bearer).

        Raises:
            InvalidToken: unknown, rotated or removed token.
        """
        return principal_of(Apps(self.store).authenticate(token, now=now))

    def principal_for_app(self, name: str) -> Principal:
        """The principal of a registered app, for the owner's `--as APP` preview.

        Raises:
            NotFound
        """
        return principal_of(Apps(self.store).get(name))

    def grant(
        self,
        principal: Principal,
        app: str,
        scopes: list[str],
        *,
        purpose: str | None = None,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Grant:
        """Lend scopes to an app directly (owner only).

        Raises:
            InvalidInput: a malformed, unknown or owner-only scope; a past expiry. NotFound: no such app.
        """
        self._policy.require_owner(principal, "grant access")
        parsed = parse_scopes(scopes)
        with self.store.transaction():
            target = Apps(self.store).get(app)
            created = Grants(self.store).create(target.id, parsed, purpose=purpose, expires_at=expires_at, now=now)
            self._audit.record(
                principal, "grant", scope=" ".join(created.scopes), purpose=purpose,
                detail={"grant_id": created.id, "app_id": target.id, "expires_at": _iso(expires_at)}, now=now,
            )  # fmt: skip
        return created

    def list_grants(
        self, principal: Principal, app: str | None = None, active_only: bool = False, now: datetime | None = None
    ) -> list[Grant]:
        """Grants, oldest first, for all apps or one (owner only)."""
        self._policy.require_owner(principal, "list grants")
        app_id = Apps(self.store).get(app).id if app else None
        return Grants(self.store).query(app_id=app_id, active_only=active_only, now=now)

    def revoke(self, principal: Principal, grant_id: str, now: datetime | None = None) -> Grant:
        """Revoke one grant; the app loses it on its next call.

        Raises:
            NotFound
        """
        self._policy.require_owner(principal, "revoke grants")
        with self.store.transaction():
            grant = Grants(self.store).revoke(grant_id, now=now)
            self._audit.record(
                principal, "revoke", scope=" ".join(grant.scopes), detail={"grant_id": grant.id, "app_id": grant.app_id}, now=now
            )
        return grant

    def revoke_app(self, principal: Principal, app: str, now: datetime | None = None) -> list[Grant]:
        """Revoke every grant of one app; return the grants revoked."""
        self._policy.require_owner(principal, "revoke grants")
        with self.store.transaction():
            target = Apps(self.store).get(app)
            revoked = Grants(self.store).revoke_app(target.id, now=now)
            self._audit.record(principal, "revoke", detail={"app_id": target.id, "grant_ids": [g.id for g in revoked]}, now=now)
        return revoked

    def request_access(
        self,
        principal: Principal,
        scopes: list[str],
        purpose: str,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> ConsentRequest:
        """An app asks for scopes; the owner decides out of band (``link`` is the consent page path).

        Asking again for the same scopes with the same purpose while the first request is
        pending returns that request (nothing new is stored or logged).

        Raises:
            InvalidInput: a malformed or owner-only scope, or no purpose. ScopeDenied: the owner needs no consent.
            LimitReached: the app already holds ``MAX_PENDING_PER_APP`` pending requests.
        """
        if principal.app_id is None:
            raise InvalidInput("the owner needs no consent; use `ctxvault grant` to lend access to an app")
        parsed = parse_scopes(scopes)
        consents = ConsentRequests(self.store)
        with self.store.transaction():
            existing = consents.duplicate(principal.app_id, parsed, purpose, now=now)
            if existing is not None:
                return existing
            request = consents.create(principal.app_id, parsed, purpose, grant_expires_at=expires_at, now=now)
            self._audit.record(
                principal, "consent_request", scope=" ".join(request.scopes), purpose=request.purpose,
                detail={"consent_id": request.id}, now=now,
            )  # fmt: skip
        return request

    def consent_status(self, principal: Principal, request_id: str, now: datetime | None = None) -> ConsentRequest:
        """One consent request, for the owner or the app that made it.

        Raises:
            NotFound: no such request, or another app's.
        """
        request = ConsentRequests(self.store).get(request_id, now=now)
        if not principal.is_owner and request.app_id != principal.app_id:
            raise NotFound(f"no consent request {request_id!r}")
        return request

    def list_consent(
        self, principal: Principal, status: ConsentStatus | None = "pending", app: str | None = None, now: datetime | None = None
    ) -> list[ConsentRequest]:
        """Consent requests, oldest first; pending ones by default (owner only)."""
        self._policy.require_owner(principal, "list consent requests")
        app_id = Apps(self.store).get(app).id if app else None
        return ConsentRequests(self.store).query(status=status, app_id=app_id, now=now)

    def approve_consent(
        self,
        principal: Principal,
        request_id: str,
        *,
        scopes: list[str] | None = None,
        spaces: list[str] | None = None,
        max_sensitivity: Sensitivity | None = None,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Grant:
        """Approve a pending request, optionally narrowed: fewer or narrower ``scopes``, each limited to
        ``spaces`` and ``max_sensitivity``, an earlier expiry. Identical pending requests of the same app
        (same scopes, same purpose) are settled by the same grant.

        Raises:
            NotFound. InvalidInput: not pending, the approval is wider than the request, or a narrowing leaves nothing.
            ScopeDenied: only the owner can approve.
        """
        self._policy.require_owner(principal, "approve consent requests")
        consents = ConsentRequests(self.store)
        with self.store.transaction():
            request = consents.pending(request_id, now=now)
            asked = parse_scopes(request.scopes)
            approved = parse_scopes(scopes) if scopes is not None else asked
            if spaces or max_sensitivity is not None:
                space_set = frozenset(spaces) if spaces else None
                approved = list({format_scope(n): n for n in (narrow_scope(s, space_set, max_sensitivity) for s in approved)}.values())
            wider = [s for s in approved if not any(a.covers(s) for a in asked)]
            if wider:
                raise InvalidInput(f"scope {format_scope(wider[0])} was not requested; an approval can only narrow the request")
            if request.grant_expires_at is not None and (expires_at is None or expires_at > request.grant_expires_at):
                expires_at = min(expires_at or request.grant_expires_at, request.grant_expires_at)
            created = Grants(self.store).create(
                request.app_id, approved, purpose=request.purpose, expires_at=expires_at, consent_id=request.id, now=now
            )
            consents.decide(request.id, "approved", grant_id=created.id, now=now)
            twins = self._twins(consents, request, now)
            for twin in twins:
                consents.decide(twin.id, "approved", grant_id=created.id, now=now)
            self._audit.record(
                principal, "consent_approve", scope=" ".join(created.scopes), purpose=request.purpose,
                detail={"consent_id": request.id, "grant_id": created.id, "app_id": request.app_id,
                        "narrowed": created.scopes != request.scopes, "expires_at": _iso(expires_at),
                        **({"twins": [t.id for t in twins]} if twins else {})},
                now=now,
            )  # fmt: skip
        return created

    def deny_consent(self, principal: Principal, request_id: str, now: datetime | None = None) -> ConsentRequest:
        """Deny a pending request (and its identical twins); the app keeps whatever it had before.

        Raises:
            NotFound. InvalidInput: not pending. ScopeDenied: only the owner can deny.
        """
        self._policy.require_owner(principal, "deny consent requests")
        consents = ConsentRequests(self.store)
        with self.store.transaction():
            request = consents.pending(request_id, now=now)
            decided = consents.decide(request.id, "denied", now=now)
            twins = self._twins(consents, request, now)
            for twin in twins:
                consents.decide(twin.id, "denied", now=now)
            self._audit.record(
                principal, "consent_deny", scope=" ".join(request.scopes), purpose=request.purpose,
                detail={"consent_id": request.id, "app_id": request.app_id, **({"twins": [t.id for t in twins]} if twins else {})},
                now=now,
            )  # fmt: skip
        return decided

    @staticmethod
    def _twins(consents: ConsentRequests, request: ConsentRequest, now: datetime | None) -> list[ConsentRequest]:
        """The app's other pending requests identical to ``request`` (same scopes in any order, same purpose)."""
        return [
            r for r in consents.query(status="pending", app_id=request.app_id, now=now)
            if r.id != request.id and sorted(r.scopes) == sorted(request.scopes) and r.purpose == request.purpose
        ]  # fmt: skip

    def deny_all_consent(self, principal: Principal, app: str | None = None, now: datetime | None = None) -> list[ConsentRequest]:
        """Deny every pending request (of one app, or of all), in one transaction; return those denied.

        Raises:
            NotFound: no such app. ScopeDenied: only the owner can deny.
        """
        self._policy.require_owner(principal, "deny consent requests")
        consents = ConsentRequests(self.store)
        with self.store.transaction():
            app_id = Apps(self.store).get(app).id if app else None
            denied = []
            for request in consents.query(status="pending", app_id=app_id, now=now):
                denied.append(consents.decide(request.id, "denied", now=now))
                self._audit.record(
                    principal, "consent_deny", scope=" ".join(request.scopes), purpose=request.purpose,
                    detail={"consent_id": request.id, "app_id": request.app_id, "bulk": True}, now=now,
                )  # fmt: skip
        return denied

    def _access_summary(self, target: Principal, now: datetime | None) -> AccessSummary:
        if target.app_id is None:
            return AccessSummary(principal=target.label, scopes=["*"], grants=[], pending=[])
        grants = Grants(self.store).query(app_id=target.app_id, active_only=True, now=now)
        pending = ConsentRequests(self.store).query(status="pending", app_id=target.app_id, now=now)
        return AccessSummary(
            principal=target.label,
            app=Apps(self.store).find(target.app_id),
            scopes=list(dict.fromkeys(s for g in grants for s in g.scopes)),
            grants=grants,
            pending=pending,
        )

    def list_access(self, principal: Principal, now: datetime | None = None) -> AccessSummary:
        """What the calling principal may do right now: live grants, their scopes, pending requests."""
        return self._access_summary(principal, now)

    def audit_entries(
        self,
        principal: Principal,
        app: str | None = None,
        since: datetime | None = None,
        event: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Audit log entries, oldest first; ``limit`` keeps the newest (owner only).

        Raises:
            NotFound: ``app`` names no registered app (a removed app's id still works).
        """
        self._policy.require_owner(principal, "read the audit log")
        app_id = None
        if app is not None:
            found = Apps(self.store).find(app) or next((a for a in Apps(self.store).all() if a.name == app), None)
            app_id = found.id if found else app if self.store.one("SELECT 1 FROM audit WHERE app_id = ?", [app]) else None
            if app_id is None:
                raise NotFound(f"no app {app!r} in the vault or its audit log")
        return self._audit.entries(app_id=app_id, since=since, event=event, limit=limit)

    def verify_audit(self, principal: Principal) -> AuditReport:
        """Check the audit log's hash chain end to end (owner only).

        Raises:
            AuditTampered: with the sequence number of the first entry that fails.
        """
        self._policy.require_owner(principal, "verify the audit log")
        return self._audit.verify()

    # -- portable (issue 11) ----------------------------------------------------------------
    # Bundles, profiles and importers live in vault/portable/; these methods check who
    # asks, read or write the store, and record the event. Imported lazily: PAM's models
    # and pyrage stay out of commands that do not export or import.
