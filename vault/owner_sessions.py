"""The owner's browser sessions on the vault's own pages, and what they may post.

Threats (docs/threat-model.md, "Consent integrity"): browsers share cookies across the
ports of one host, so anything in a cookie reaches every loopback server the browser
visits, the OAuth client's redirect server included. Hence:

- A session id is the only owner credential in a cookie. Form tokens (CSRF) live here,
  bound to one session and one form, and are never equal to a cookie value.
- An OAuth decision form names a server-side ``PendingAuthorization`` (client, redirect,
  PKCE challenge, the scopes the page showed), never the scopes themselves.
- Sessions expire after ``SESSION_IDLE`` without use and ``SESSION_MAX`` after login.
- Wrong passphrases back off per browser (its device id), so a local process guessing
  with its own ids does not lock the owner's browser out; a global pool still slows
  guessing spread over many ids, except for browsers that have logged in before here.
  The one-time link from ``ctxvault ui`` (``LoginLinks``) bypasses the back-off.

Everything but login links is in memory: a restart logs the owner out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vault.errors import InvalidToken, LoginThrottled
from vault.store import Store

# The owner's pages live under ``/o/<key>/``, ``key`` a random secret of the session: over plain http
# the session cookie's Path is that prefix, so a browser sends it to no other server on this host
# (browsers share cookies across ports) unless that server knows the key. No OAuth redirect URI may
# lie under OWNER_PREFIX or LOGIN_PATH (vault/oauth.py), to keep even the back-off device id at home.
OWNER_PREFIX = "/o/"
LOGIN_PATH = "/login"
SESSION_IDLE = 15 * 60.0
SESSION_MAX = 8 * 3600.0
PENDING_TTL = 10 * 60.0
LOGIN_FORM_TTL = 30 * 60.0
LOGIN_LINK_TTL = timedelta(minutes=5)
FREE_FAILURES = 5
GLOBAL_FREE_FAILURES = 20
MAX_BACKOFF = 300.0
# Any local page can make a browser GET /authorize or the login page: bound what that holds in memory.
MAX_PENDING = 256
MAX_FORM_TOKENS = 4096
_DEVICE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def backoff(failures: int, free: int) -> float:
    """Seconds to wait after ``failures`` wrong passphrases in a row when ``free`` are allowed: 2, 4, 8… (capped)."""
    return 0.0 if failures < free else min(2.0 ** (failures - free + 1), MAX_BACKOFF)


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """An OAuth request checked at /authorize, waiting for the owner's decision on our page."""

    client_id: str
    client_name: str
    redirect_uri: str
    code_challenge: str
    resource: str
    state: str | None
    offered: tuple[str, ...]  # canonical scopes shown on the page, one checkbox each
    asked: bool  # the client named these scopes; otherwise they are every requestable scope, unchecked


@dataclass(slots=True)
class _Session:
    key: str
    started: float
    seen: float


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass(slots=True)
class _Tokens:
    by_value: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # token -> (owner, form, expiry)


class OwnerSessions:
    """Sessions, form tokens, pending authorizations and the login back-off of one server process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._forms = _Tokens()
        self._pending: dict[str, tuple[PendingAuthorization, float]] = {}
        self._taken: dict[str, tuple[PendingAuthorization, float]] = {}  # being decided (take → restore or settle)
        self._failures: dict[str, _Failures] = {}
        self._global = _Failures()
        self._trusted: set[str] = set()

    # -- sessions ---------------------------------------------------------------------------
    def start(self, device: str | None = None) -> str:
        """A new session id (the cookie value); a successful login also resets that browser's back-off.

        The session's path key (``key_of``) goes in the URL of every owner page; both are needed."""
        now = self._clock()
        self._prune(now)
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = _Session(key=secrets.token_urlsafe(18), started=now, seen=now)
        if device is not None:
            self._failures.pop(device, None)
            self._trusted.add(device)
            self._global = _Failures()
        return sid

    def valid(self, sid: str | None, key: str | None = None) -> bool:
        """Whether ``sid`` is a live session (whose path key is ``key``, when given); use restarts the idle timer."""
        now = self._clock()
        session = self._sessions.get(sid or "")
        if session is None or now - session.seen >= SESSION_IDLE or now - session.started >= SESSION_MAX:
            self._sessions.pop(sid or "", None)
            return False
        if key is not None and not hmac.compare_digest(session.key, key):
            return False
        session.seen = now
        return True

    def key_of(self, sid: str) -> str:
        """The path key of a live session (``/o/<key>/``)."""
        return self._sessions[sid].key

    def end(self, sid: str | None) -> None:
        """Log out: the session and every form token bound to it are gone."""
        self._sessions.pop(sid or "", None)
        self._forms.by_value = {t: v for t, v in self._forms.by_value.items() if v[0] != f"s:{sid}"}

    def end_all(self) -> int:
        """Lock now: every session and its form tokens are gone (every browser must log in again); returns how many."""
        ended = len(self._sessions)
        self._sessions.clear()
        self._forms.by_value = {t: v for t, v in self._forms.by_value.items() if not v[0].startswith("s:")}
        return ended

    # -- form tokens ------------------------------------------------------------------------
    def form_token(self, sid: str, form: str) -> str:
        """A token for one form of one session (a CSRF token that no cookie carries)."""
        return self._issue(f"s:{sid}", form, SESSION_MAX)

    def form_ok(self, sid: str | None, form: str, token: str) -> bool:
        return sid is not None and self.valid(sid) and self._check(f"s:{sid}", form, token)

    def login_token(self, device: str) -> str:
        """A token for the passphrase form shown to one browser."""
        return self._issue(f"d:{device}", "login", LOGIN_FORM_TTL)

    def login_ok(self, device: str | None, token: str) -> bool:
        """Whether ``token`` is this browser's passphrase-form token; it is used up (one attempt per form)."""
        if device is None or not self._check(f"d:{device}", "login", token):
            return False
        del self._forms.by_value[token]
        return True

    def _issue(self, owner: str, form: str, ttl: float) -> str:
        now = self._clock()
        self._prune(now)
        token = secrets.token_urlsafe(32)
        self._forms.by_value[token] = (owner, form, now + ttl)
        while len(self._forms.by_value) > MAX_FORM_TOKENS:
            del self._forms.by_value[next(iter(self._forms.by_value))]
        return token

    def _check(self, owner: str, form: str, token: str) -> bool:
        found = self._forms.by_value.get(token)
        if found is None or found[2] <= self._clock():
            return False
        return hmac.compare_digest(found[0], owner) and hmac.compare_digest(found[1], form)

    # -- pending OAuth authorizations -------------------------------------------------------
    def hold(self, pending: PendingAuthorization) -> str:
        """Keep a checked /authorize request for the owner's decision; its id goes in the page's URL."""
        now = self._clock()
        self._prune(now)
        pid = secrets.token_urlsafe(24)
        self._pending[pid] = (pending, now + PENDING_TTL)
        while len(self._pending) > MAX_PENDING:
            del self._pending[next(iter(self._pending))]
        return pid

    def pending(self, pid: str) -> PendingAuthorization | None:
        found = self._pending.get(pid)
        return found[0] if found is not None and found[1] > self._clock() else None

    def pending_clients(self) -> frozenset[str]:
        """The client ids with a live authorization waiting for (or in) the owner's decision."""
        now = self._clock()
        return frozenset(p.client_id for table in (self._pending, self._taken) for p, until in table.values() if until > now)

    def waiting(self) -> list[tuple[str, PendingAuthorization]]:
        """Every live authorization waiting for the owner (not being decided), oldest first: (id, pending)."""
        now = self._clock()
        return [(pid, p) for pid, (p, until) in self._pending.items() if until > now]

    def drop(self, client_id: str | None = None) -> int:
        """Forget the waiting authorizations (of one client, or all): the owner denied them in bulk.
        Their pages then answer that they were decided; returns how many were dropped."""
        gone = [pid for pid, p in self.waiting() if client_id is None or p.client_id == client_id]
        for pid in gone:
            self._pending.pop(pid, None)
            self.settle(pid)
        return len(gone)

    def take(self, pid: str) -> PendingAuthorization | None:
        """The pending authorization, removed at once (before any await): a decision is made once,
        so a second decision posted meanwhile finds nothing. ``restore`` puts it back."""
        found = self._pending.pop(pid, None)
        if found is None or found[1] <= self._clock():
            return None
        self._taken[pid] = found
        return found[0]

    def restore(self, pid: str) -> None:
        """Put back what ``take`` removed (the owner's choice was refused; the page is shown again), same expiry."""
        found = self._taken.pop(pid, None)
        if found is not None:
            self._pending[pid] = found

    def settle(self, pid: str) -> None:
        """The decision is made: what ``take`` removed, and the decision form's tokens, are gone for good."""
        self._taken.pop(pid, None)
        self._forms.by_value = {t: v for t, v in self._forms.by_value.items() if v[1] != f"oauth:{pid}"}

    # -- login back-off ---------------------------------------------------------------------
    @staticmethod
    def device(cookie: str | None) -> str:
        """The browser's device id: its cookie when well formed, else a new one (the caller sets the cookie)."""
        return cookie if cookie is not None and _DEVICE.fullmatch(cookie) else secrets.token_urlsafe(32)

    def retry_after(self, device: str) -> float:
        """Seconds until ``device`` may try a passphrase again (0: now)."""
        now = self._clock()
        own = self._failures.get(device, _Failures())
        wait = own.last + backoff(own.count, FREE_FAILURES) - now if own.count else 0.0
        if device not in self._trusted and self._global.count:
            wait = max(wait, self._global.last + backoff(self._global.count, GLOBAL_FREE_FAILURES) - now)
        return max(0.0, wait)

    def check_login(self, device: str) -> None:
        """Raises LoginThrottled while ``device`` must wait."""
        wait = self.retry_after(device)
        if wait > 0:
            raise LoginThrottled(f"Too many wrong passphrases; try again in {wait:.0f} s, or run `ctxvault ui` for a login link.", wait)

    def attempt(self, device: str) -> None:
        """Reserve one passphrase attempt before it is checked: counted as a failure now, so parallel
        attempts cannot all pass ``check_login`` first; a successful login (``start``) clears it.

        Raises:
            LoginThrottled: ``device`` must wait (nothing is counted).
        """
        self.check_login(device)
        self.failed(device)

    def failed(self, device: str) -> None:
        now = self._clock()
        own = self._failures.setdefault(device, _Failures())
        own.count, own.last = own.count + 1, now
        self._global.count, self._global.last = self._global.count + 1, now

    def _prune(self, now: float) -> None:
        self._sessions = {k: v for k, v in self._sessions.items() if now - v.seen < SESSION_IDLE and now - v.started < SESSION_MAX}
        self._forms.by_value = {k: v for k, v in self._forms.by_value.items() if v[2] > now}
        self._pending = {k: v for k, v in self._pending.items() if v[1] > now}
        self._taken = {k: v for k, v in self._taken.items() if v[1] > now}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginLinks:
    """One-time owner login links: minted by the CLI (the owner already unlocked it), redeemed once by the server."""

    PREFIX = "cvl_"

    def __init__(self, store: Store) -> None:
        self._store = store

    def mint(self, now: datetime) -> str:
        token = self.PREFIX + secrets.token_urlsafe(32)
        self._store.execute("DELETE FROM owner_login_links WHERE expires_at <= ?", [now.isoformat()])
        self._store.execute(
            "INSERT INTO owner_login_links (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
            [_hash(token), now.isoformat(), (now + LOGIN_LINK_TTL).isoformat()],
        )
        return token

    def revoke_all(self) -> int:
        """Drop every link not yet used (Lock now); returns how many."""
        count = self._store.one("SELECT count(*) FROM owner_login_links WHERE used_at IS NULL")
        self._store.execute("DELETE FROM owner_login_links WHERE used_at IS NULL")
        return int(count[0]) if count else 0

    def redeem(self, token: str, now: datetime) -> None:
        """Raises InvalidToken for an unknown, used or expired link (one error for all)."""
        row = self._store.one("SELECT expires_at, used_at FROM owner_login_links WHERE token_hash = ?", [_hash(token.strip())])
        if row is None or row["used_at"] is not None or datetime.fromisoformat(row["expires_at"]) <= now:
            raise InvalidToken("this login link is unknown, used or expired; run `ctxvault ui` for a new one")
        self._store.execute("UPDATE owner_login_links SET used_at = ? WHERE token_hash = ?", [now.isoformat(), _hash(token.strip())])
