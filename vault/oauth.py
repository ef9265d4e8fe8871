"""The vault's own OAuth 2.1 authorization server state: clients, codes, tokens.

Codes and tokens are 256 random bits, stored only as sha256 hashes. A code is single use,
bound to its client, redirect URI, PKCE S256 challenge and RFC 8707 resource. Refresh
tokens rotate: each use revokes it and issues a new pair; presenting a revoked refresh
token again revokes the whole family (the token was stolen or replayed). Tokens say
which app is calling; what it may see is decided from live grants on every call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from schemas.mcp import OAuthClient, OAuthTokens
from vault.errors import InvalidInput, InvalidToken, NotFound, TooLarge
from vault.items import utcnow
from vault.owner_sessions import LOGIN_PATH, OWNER_PREFIX
from vault.store import Row, Store
from vault.unsafe_text import first_unsafe

CODE_TTL = timedelta(minutes=10)
ACCESS_TTL = timedelta(hours=1)
REFRESH_TTL = timedelta(days=30)
ACCESS_PREFIX, REFRESH_PREFIX = "cvo_", "cvr_"
_REDIRECT = re.compile(r"^(https://[^\s#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/[^\s#]*)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Dynamic client registration (RFC 7591) is open to any local process, so what one
# registration may store, and how many unused ones are kept, is bounded (issue 29: 1,000
# registrations, a 10 MB client_name and 20,000 redirect URIs were once all stored).
MAX_REGISTRATION_BYTES = 16 * 1024  # the whole /register body; the route reads no more
MAX_CLIENT_NAME_CHARS = 100
MAX_REDIRECT_URIS = 10
MAX_REDIRECT_URI_CHARS = 2000
# Registered but never approved clients kept at once; registering past it drops the oldest.
# Approved clients (bound to an app) are never pruned.
MAX_UNUSED_DYNAMIC_CLIENTS = 50
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a code verifier (RFC 7636 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def check_redirect_uris(uris: list[str]) -> list[str]:
    """Raises InvalidInput unless every URI is https (with a host, no user part) or loopback http, without a fragment."""
    if not uris:
        raise InvalidInput("at least one redirect_uri is required")
    if len(uris) > MAX_REDIRECT_URIS:
        raise TooLarge(f"{len(uris)} redirect_uris; at most {MAX_REDIRECT_URIS} are accepted")
    for uri in uris:
        if len(uri) > MAX_REDIRECT_URI_CHARS:
            raise TooLarge(f"a redirect_uri is {len(uri)} characters; at most {MAX_REDIRECT_URI_CHARS} are accepted")
        parts = urlsplit(uri) if _REDIRECT.fullmatch(uri) and not _CONTROL.search(uri) else None
        if parts is None or not parts.hostname or "@" in parts.netloc:
            raise InvalidInput(
                f"redirect_uri {uri[:200]!r} must be https:// or a loopback http:// address, with a host, without a fragment"
            )
        path = unquote(parts.path)
        for own in (OWNER_PREFIX, LOGIN_PATH):
            if path.rstrip("/") == own.rstrip("/") or path.startswith(own.rstrip("/") + "/"):
                # Defence in depth: our cookies' paths (the session's also needs its secret key) are ours alone.
                raise InvalidInput(f"redirect_uri {uri[:200]!r} must not lie under the vault's own path {own}")
    return list(dict.fromkeys(uris))


def check_client_name(name: str | None) -> str:
    """The client_name to store ("MCP client" when none is given).

    Raises:
        TooLarge: longer than ``MAX_CLIENT_NAME_CHARS``.
        InvalidInput: a control or format character (a ``\u202e`` would reverse the consent page).
    """
    if name is None or not name.strip():
        return "MCP client"
    if len(name) > MAX_CLIENT_NAME_CHARS:
        raise TooLarge(f"client_name is {len(name)} characters; at most {MAX_CLIENT_NAME_CHARS} are accepted")
    bad = first_unsafe(name)
    if bad is not None:
        raise InvalidInput(f"client_name must not contain control or format characters (U+{ord(bad):04X})")
    return name.strip()


@dataclass(frozen=True, slots=True)
class Authorized:
    """What a valid access token stands for."""

    app_id: str
    client_id: str
    resource: str
    scopes: tuple[str, ...]
    expires_at: datetime


def _row_to_client(row: Row) -> OAuthClient:
    return OAuthClient(
        client_id=row["client_id"],
        kind=row["kind"],
        client_name=row["client_name"],
        redirect_uris=json.loads(row["redirect_uris"]),
        app_id=row["app_id"],
    )


class OAuthState:
    """The oauth_* tables. Callers decide who may do what; this class keeps the protocol's invariants."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add_client(self, kind: str, client_name: str, redirect_uris: list[str], client_id: str | None = None) -> OAuthClient:
        uris = check_redirect_uris(redirect_uris)
        client_id = client_id or f"cvc_{secrets.token_urlsafe(16)}"
        self._store.execute(
            "INSERT INTO oauth_clients (client_id, kind, client_name, redirect_uris, app_id, created_at) VALUES (?, ?, ?, ?, NULL, ?) "
            "ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name, redirect_uris = excluded.redirect_uris",
            [client_id, kind, client_name[:100], json.dumps(uris), utcnow().isoformat()],
        )
        return self.client(client_id)

    def prune_unused(self, keep: int, spare: Collection[str] = ()) -> int:
        """Drop the oldest dynamic clients never approved, so that at most ``keep`` remain; return how many went.

        Clients in ``spare`` (a live authorization waits for the owner's decision) are never dropped.
        """
        rows = self._store.query(
            "SELECT client_id FROM oauth_clients WHERE kind = 'dynamic' AND app_id IS NULL ORDER BY created_at DESC, rowid DESC"
        )
        stale = [r[0] for r in rows[keep:] if r[0] not in spare]
        for client_id in stale:
            self._store.execute("DELETE FROM oauth_clients WHERE client_id = ? AND app_id IS NULL", [client_id])
        return len(stale)

    def client(self, client_id: str) -> OAuthClient:
        """Raises NotFound."""
        row = self._store.one("SELECT * FROM oauth_clients WHERE client_id = ?", [client_id])
        if row is None:
            raise NotFound(f"unknown OAuth client {client_id!r}")
        return _row_to_client(row)

    def bind_app(self, client_id: str, app_id: str) -> None:
        self._store.execute("UPDATE oauth_clients SET app_id = ? WHERE client_id = ?", [app_id, client_id])

    def issue_code(
        self, client_id: str, app_id: str, redirect_uri: str, challenge: str, resource: str, scopes: list[str], now: datetime
    ) -> str:
        code = secrets.token_urlsafe(32)
        self._store.execute(
            "INSERT INTO oauth_codes (code_hash, client_id, app_id, redirect_uri, code_challenge, resource, scopes, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [_hash(code), client_id, app_id, redirect_uri, challenge, resource, json.dumps(scopes), (now + CODE_TTL).isoformat()],
        )
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str, verifier: str, resource: str | None, now: datetime) -> Row | None:
        """Consume a code once, checking every binding; None for every failure alike.

        A rejection may still have written (revoking tokens of a reused code): the caller
        commits, then reports the failure.
        """
        row = self._store.one("SELECT * FROM oauth_codes WHERE code_hash = ?", [_hash(code)])
        bad = None
        if row is None or row["used_at"] is not None or datetime.fromisoformat(row["expires_at"]) <= now:
            if row is not None and row["used_at"] is not None:
                # A code used twice: revoke what the first use issued (RFC 6749 §4.1.2).
                self._store.execute(
                    "UPDATE oauth_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", [now.isoformat(), row["code_hash"]]
                )
            return bad
        if row["client_id"] != client_id or row["redirect_uri"] != redirect_uri:
            return bad
        if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(s256(verifier), row["code_challenge"]):
            return bad
        if resource is not None and resource != row["resource"]:
            return bad
        self._store.execute("UPDATE oauth_codes SET used_at = ? WHERE code_hash = ?", [now.isoformat(), row["code_hash"]])
        return row

    def issue_tokens(self, family: str, client_id: str, app_id: str, resource: str, scopes: list[str], now: datetime) -> OAuthTokens:
        access, refresh = ACCESS_PREFIX + secrets.token_urlsafe(32), REFRESH_PREFIX + secrets.token_urlsafe(32)
        for token, kind, ttl in ((access, "access", ACCESS_TTL), (refresh, "refresh", REFRESH_TTL)):
            self._store.execute(
                "INSERT INTO oauth_tokens (token_hash, kind, family, client_id, app_id, resource, scopes, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_hash(token), kind, family, client_id, app_id, resource, json.dumps(scopes), now.isoformat(), (now + ttl).isoformat()],
            )
        return OAuthTokens(access_token=access, refresh_token=refresh, expires_in=int(ACCESS_TTL.total_seconds()), scope=" ".join(scopes))

    def rotate_refresh(self, refresh: str, client_id: str, resource: str | None, now: datetime) -> OAuthTokens | None:
        """Trade a refresh token for a new pair; None when refused. A reused one revokes its
        whole family (the caller commits that, then reports the failure)."""
        row = self._store.one("SELECT * FROM oauth_tokens WHERE token_hash = ? AND kind = 'refresh'", [_hash(refresh)])
        if row is None or row["client_id"] != client_id:
            return None
        if row["revoked_at"] is not None:
            self._store.execute(
                "UPDATE oauth_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", [now.isoformat(), row["family"]]
            )
            return None
        if datetime.fromisoformat(row["expires_at"]) <= now or (resource is not None and resource != row["resource"]):
            return None
        self._store.execute("UPDATE oauth_tokens SET revoked_at = ? WHERE token_hash = ?", [now.isoformat(), row["token_hash"]])
        return self.issue_tokens(row["family"], client_id, row["app_id"], row["resource"], json.loads(row["scopes"]), now)

    def authenticate(self, access: str, now: datetime) -> Authorized:
        """Raises InvalidToken for an unknown, expired or revoked access token."""
        row = self._store.one("SELECT * FROM oauth_tokens WHERE token_hash = ? AND kind = 'access'", [_hash(access.strip())])
        if row is None or row["revoked_at"] is not None or datetime.fromisoformat(row["expires_at"]) <= now:
            raise InvalidToken("invalid or expired access token")
        return Authorized(
            app_id=row["app_id"],
            client_id=row["client_id"],
            resource=row["resource"],
            scopes=tuple(json.loads(row["scopes"])),
            expires_at=datetime.fromisoformat(row["expires_at"]),
        )

    def issued_to(self, access: str) -> str | None:
        """The app an access token was issued to, live or not (None for a token never issued)."""
        row = self._store.one("SELECT app_id FROM oauth_tokens WHERE token_hash = ? AND kind = 'access'", [_hash(access.strip())])
        return str(row["app_id"]) if row is not None and row["app_id"] else None

    def revoke_app(self, app_id: str, now: datetime) -> None:
        self._store.execute("UPDATE oauth_tokens SET revoked_at = ? WHERE app_id = ? AND revoked_at IS NULL", [now.isoformat(), app_id])
