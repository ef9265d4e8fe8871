"""OAuth 2.1 for the HTTP surface: clients, codes, tokens, and step-up scopes."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from datetime import datetime

from schemas.mcp import AccessReport, Authorization, OAuthClient, OAuthTokens
from vault.access import Grants
from vault.apps import Apps, principal_of
from vault.errors import InvalidInput, InvalidToken, NotFound
from vault.filters import Sensitivity
from vault.items import utcnow
from vault.oauth import MAX_CLIENT_NAME_CHARS, MAX_UNUSED_DYNAMIC_CLIENTS, OAuthState, check_client_name, check_redirect_uris
from vault.owner_sessions import LoginLinks, PendingAuthorization
from vault.policy import OPERATION_NEEDS
from vault.principal import Principal
from vault.scopes import ACTIONS, KINDS, Action, format_scope, narrow_scope, parse_scope, parse_scopes
from vault.service.access import AccessPart


class OAuthPart(AccessPart):
    """OAuth 2.1 for the HTTP surface: clients, codes, tokens, and step-up scopes."""

    def oauth_register(self, client_name: str | None, redirect_uris: list[str], pending: Collection[str] = ()) -> OAuthClient:
        """Dynamic client registration (RFC 7591): a client record with no app and no access.

        At most ``MAX_UNUSED_DYNAMIC_CLIENTS`` never-approved clients are kept: registering
        another drops the oldest of them (an approved client is never dropped, nor one of
        ``pending``, the clients whose authorization waits for the owner's decision).

        Raises:
            InvalidInput: a bad redirect URI. TooLarge: a field or list past its limit.
        """
        name = check_client_name(client_name)
        uris = check_redirect_uris(redirect_uris)
        oauth = OAuthState(self.store)
        with self.store.transaction():
            oauth.prune_unused(keep=MAX_UNUSED_DYNAMIC_CLIENTS - 1, spare=pending)
            return oauth.add_client("dynamic", name, uris)

    def oauth_client(self, client_id: str, metadata: dict[str, object] | None = None) -> OAuthClient:
        """The client behind ``client_id``: stored, a registered app with redirect URIs, or (given its
        fetched Client ID Metadata Document) a metadata client.

        Raises:
            NotFound: unknown client. InvalidInput: a metadata document that does not match its URL.
        """
        oauth = OAuthState(self.store)
        if metadata is not None:
            if metadata.get("client_id") != client_id or not client_id.startswith("https://"):
                raise InvalidInput("the client metadata document must be served over https and name its own URL as client_id")
            uris = metadata.get("redirect_uris")
            if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
                raise InvalidInput("the client metadata document has no redirect_uris")
            name = metadata.get("client_name")
            shown = check_client_name(name[:MAX_CLIENT_NAME_CHARS]) if isinstance(name, str) else client_id
            with self.store.transaction():
                return oauth.add_client("metadata", shown, [str(u) for u in uris], client_id)
        try:
            return oauth.client(client_id)
        except NotFound:
            app = Apps(self.store).get(client_id)
            if not app.redirect_uris:
                raise
            return OAuthClient(client_id=client_id, kind="registered", client_name=app.name, redirect_uris=app.redirect_uris, app_id=app.id)

    def oauth_approve(
        self,
        principal: Principal,
        client_id: str,
        scopes: list[str],
        *,
        redirect_uri: str,
        code_challenge: str,
        resource: str,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Authorization:
        """The owner approves an OAuth client: its app gets the scopes as a grant, the client a one-time code.

        Raises:
            ScopeDenied: not the owner. InvalidInput: a bad scope or redirect URI. NotFound: unknown client.
        """
        self._policy.require_owner(principal, "approve OAuth clients")
        client = self.oauth_client(client_id)
        if redirect_uri not in client.redirect_uris:
            raise InvalidInput("redirect_uri is not registered for this client")
        parsed = parse_scopes(scopes)
        stamp = now or utcnow()
        oauth, apps = OAuthState(self.store), Apps(self.store)
        with self.store.transaction():
            app_id = client.app_id
            if app_id is None:
                base = re.sub(r"[^a-z0-9_.-]+", "-", client.client_name.lower()).strip("-._")[:50] or "oauth-client"
                name = next(
                    n
                    for n in (base if i == 0 else f"{base}-{i + 1}" for i in range(1000))
                    if self.store.one("SELECT 1 FROM apps WHERE name = ?", [n]) is None
                )
                app_id = apps.add(name, now=stamp).app.id
                oauth.bind_app(client.client_id, app_id)
                self._audit.record(
                    principal, "app_add", detail={"app_id": app_id, "name": name, "oauth_client": client.client_id}, now=stamp
                )
            grant = Grants(self.store).create(
                app_id, parsed, purpose=f"OAuth authorization of {client.client_name}", expires_at=expires_at, now=stamp
            )
            self._audit.record(
                principal, "grant", scope=" ".join(grant.scopes), purpose=grant.purpose,
                detail={"grant_id": grant.id, "app_id": app_id, "oauth_client": client.client_id}, now=stamp,
            )  # fmt: skip
            code = oauth.issue_code(client.client_id, app_id, redirect_uri, code_challenge, resource, grant.scopes, stamp)
        return Authorization(code=code, app_id=app_id, grant_id=grant.id)

    def oauth_offer(self, scope: str | None) -> tuple[tuple[str, ...], bool]:
        """The scopes to show the owner for an /authorize ``scope`` parameter, and whether the client named them.

        A client that names no scope is offered every requestable scope, none chosen: it gets
        nothing unless the owner picks. Checked before any page is shown.

        Raises:
            InvalidInput: a malformed or owner-only scope (the message says which and why).
        """
        texts = (scope or "").split()
        if not texts:
            return tuple(self.requestable_scopes()), False
        return tuple(dict.fromkeys(format_scope(parse_scope(t)) for t in texts)), True

    @staticmethod
    def requestable_scopes() -> list[str]:
        """Every scope form an app may request (owner-only actions are never among them)."""
        return [f"{a}:{k}" for a in ACTIONS for k in KINDS if k != "profile" or a in ("search", "read")]

    def oauth_decide(
        self,
        principal: Principal,
        pending: PendingAuthorization,
        chosen: list[str],
        *,
        spaces: list[str] | None = None,
        max_sensitivity: Sensitivity | None = None,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Authorization:
        """Approve a pending authorization as the owner narrowed it on the page: only scopes it showed
        (``chosen`` names them), limited to ``spaces`` and ``max_sensitivity``, until ``expires_at``.

        Raises:
            InvalidInput: nothing chosen, a scope the page did not show, or a narrowing that leaves nothing.
            ScopeDenied: not the owner.
        """
        self._policy.require_owner(principal, "approve OAuth clients")
        if not chosen:
            raise InvalidInput("choose at least one scope to allow, or deny")
        unknown = [c for c in chosen if c not in pending.offered]
        if unknown:
            raise InvalidInput(f"scope {unknown[0]!r} was not offered on the page; an approval can only narrow the request")
        space_set = frozenset(spaces) if spaces else None
        narrowed = [format_scope(narrow_scope(parse_scope(c), space_set, max_sensitivity)) for c in dict.fromkeys(chosen)]
        return self.oauth_approve(
            principal, pending.client_id, narrowed, redirect_uri=pending.redirect_uri, code_challenge=pending.code_challenge,
            resource=pending.resource, expires_at=expires_at, now=now,
        )  # fmt: skip

    def owner_login_link(self, principal: Principal, now: datetime | None = None) -> str:
        """Mint a single-use, short-lived token that logs the owner's browser in to the vault's pages.

        Raises:
            ScopeDenied: not the owner.
        """
        self._policy.require_owner(principal, "mint an owner login link")
        with self.store.transaction():
            return LoginLinks(self.store).mint(now or utcnow())

    def redeem_owner_login(self, token: str, now: datetime | None = None) -> None:
        """Use up a login link minted by ``owner_login_link``.

        Raises:
            InvalidToken: unknown, used or expired.
        """
        with self.store.transaction():
            LoginLinks(self.store).redeem(token, now or utcnow())

    def lock_owner(self, principal: Principal, now: datetime | None = None) -> bool:
        """Lock now: unused login links die and this vault's unlock session (``ctxvault lock``) ends.

        The caller ends its own owner sessions (they live in its memory). Apps keep their grants: the
        process serving them holds the key until it stops. Returns whether an unlock session was running.

        Raises:
            ScopeDenied: not the owner.
        """
        from vault.agent_client import lock as lock_agent

        self._policy.require_owner(principal, "lock the vault")
        with self.store.transaction():
            links = LoginLinks(self.store).revoke_all()
        ended = lock_agent(self.settings)
        self._audit.record(principal, "lock", detail={"login_links": links, "unlock_session": ended}, now=now)
        return ended

    def oauth_exchange(
        self, client_id: str, code: str, redirect_uri: str, code_verifier: str, resource: str | None, now: datetime | None = None
    ) -> OAuthTokens:
        """Trade a one-time code (PKCE S256 verified) for an access and a refresh token.

        Raises:
            InvalidToken: any mismatch, reuse or expiry (one error for all).
        """
        stamp = now or utcnow()
        oauth = OAuthState(self.store)
        with self.store.transaction():
            row = oauth.redeem_code(code, client_id, redirect_uri, code_verifier, resource, stamp)
            issued = None
            if row is not None:
                scopes = json.loads(row["scopes"])
                issued = oauth.issue_tokens(row["code_hash"], client_id, row["app_id"], row["resource"], scopes, stamp)
        # Raised after the commit: refusing a reused code revokes what its first use issued.
        if issued is None:
            raise InvalidToken("invalid authorization code")
        return issued

    def oauth_refresh(self, client_id: str, refresh_token: str, resource: str | None, now: datetime | None = None) -> OAuthTokens:
        """Rotate a refresh token; presenting a used one revokes every token of its authorization.

        Raises:
            InvalidToken
        """
        with self.store.transaction():
            issued = OAuthState(self.store).rotate_refresh(refresh_token, client_id, resource, now or utcnow())
        # Raised after the commit: refusing a reused refresh token revokes its whole family.
        if issued is None:
            raise InvalidToken("invalid refresh token")
        return issued

    def authenticate_oauth(self, access_token: str, resource: str, now: datetime | None = None) -> Principal:
        """The app an access token was issued to, if it is live and meant for ``resource`` (RFC 8707 audience).

        Raises:
            InvalidToken
        """
        granted = OAuthState(self.store).authenticate(access_token, now or utcnow())
        app = Apps(self.store).find(granted.app_id)
        if app is None or granted.resource != resource:
            raise InvalidToken("invalid or expired access token")
        return principal_of(app)

    def authenticate_bearer(self, token: str, resource: str, client: str, now: datetime | None = None) -> Principal:
        """The app behind an HTTP bearer token (an app token, or an OAuth access token for ``resource``).

        A refused token is audited as a denial before the error is raised: filed under the
        app a revoked or expired OAuth token was issued to, else under the client's address;
        a burst from one client is one entry a minute with its count (``REFUSAL_WINDOW``).

        Raises:
            InvalidToken
        """
        try:
            return self.authenticate_app(token, now=now)
        except InvalidToken:
            pass
        try:
            return self.authenticate_oauth(token, resource, now=now)
        except InvalidToken:
            self._audit.record_refused_token(OAuthState(self.store).issued_to(token), client, now=now)
            raise

    def step_up(self, principal: Principal, operation: str, now: datetime | None = None) -> str | None:
        """The scope ``principal`` must request before ``operation`` over HTTP (403 step-up), else None.

        A refusal is audited like the same call's denial over stdio.
        """
        needed = self.scope_needed(principal, operation)
        if needed is not None:
            self._audit.record_denial(principal, f"{operation} (HTTP step-up)", scope=needed, now=now)
        return needed

    def missing_scope(self, principal: Principal, action: Action, kind: str | None = None) -> str | None:
        """The scope to ask for when ``principal`` holds nothing at all for ``action`` (HTTP step-up), else None."""
        if self._policy.reach(principal, action):
            return None
        return f"{action}:{kind or '*'}"

    def scope_needed(self, principal: Principal, operation: str) -> str | None:
        """The scope to request before ``operation`` when ``principal`` holds nothing for it, else None."""
        if operation not in OPERATION_NEEDS:
            return None
        action, kind = OPERATION_NEEDS[operation]
        return self.missing_scope(principal, action, kind)

    def access_report(self, principal: Principal, now: datetime | None = None) -> AccessReport:
        """The principal's live access plus every scope form it could request (never which spaces exist)."""
        summary = self.list_access(principal, now=now)
        return AccessReport(**summary.model_dump(), requestable=self.requestable_scopes())

    # -- access (issue 4) -------------------------------------------------------------------
    # Apps, grants, consent requests and the audit log. Owner-only operations call
    # require_owner; the consent decision has no app-callable path (BRIEF §4).
