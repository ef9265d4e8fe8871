"""What every console route needs: the owner's cookies, the session behind a request, page answers.

The owner's pages live under ``/o/<key>/``, ``key`` a random secret of the session. Over plain
http the session cookie's Path is that prefix: browsers share cookies across the ports of a
host, so a cookie under a fixed path would reach any loopback server (an OAuth client's
redirect server) the browser is sent to; a cookie under a secret path reaches none. Over https
it is ``__Host-`` (Secure, Path=/) and the key is still required. The back-off device id lives
under ``LOGIN_PATH`` and is dropped by every answer that sends the browser to a client.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mcp_server.console.html import document, navigation, security_headers
from mcp_server.console.pages import error_page, login_page
from mcp_server.forms import read_form
from mcp_server.server import VaultAccess
from vault.errors import InvalidInput
from vault.owner_sessions import LOGIN_PATH, OWNER_PREFIX, SESSION_MAX, OwnerSessions

T = TypeVar("T")
DEVICE_MAX_AGE = 365 * 24 * 3600
# Where a login may continue to, relative to /o/<key>/: a section, a decision, or the logged-in /authorize.
NEXT = re.compile(r"^([a-z]{0,16}(/[A-Za-z0-9_-]{1,64})?|authorize\?[^\s#]*)$")

Form = tuple[dict[str, str], dict[str, list[str]]]


class Call(Protocol):
    """Runs a core call in a worker thread under the vault lock."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class Cookies:
    """Names and attributes of the owner's cookies for one issuer."""

    session: str
    device: str
    secure: bool

    @classmethod
    def for_issuer(cls, issuer: str) -> Cookies:
        if issuer.startswith("https://"):
            return cls("__Host-cv_session", "__Host-cv_device", True)
        return cls("cv_session", "cv_device", False)

    def session_path(self, key: str) -> str:
        return "/" if self.secure else f"{OWNER_PREFIX}{key}/"

    @property
    def device_path(self) -> str:
        return "/" if self.secure else LOGIN_PATH

    def set_session(self, response: Response, sid: str, key: str) -> None:
        response.set_cookie(
            self.session, sid, max_age=int(SESSION_MAX), path=self.session_path(key), secure=self.secure, httponly=True, samesite="strict"
        )

    def drop_session(self, response: Response, key: str) -> None:
        response.delete_cookie(self.session, path=self.session_path(key), secure=self.secure, httponly=True, samesite="strict")

    def set_device(self, response: Response, device: str) -> None:
        response.set_cookie(
            self.device, device, max_age=DEVICE_MAX_AGE, path=self.device_path, secure=self.secure, httponly=True, samesite="strict"
        )

    def drop_device(self, response: Response) -> None:
        response.delete_cookie(self.device, path=self.device_path, secure=self.secure, httponly=True, samesite="strict")


@dataclass(frozen=True, slots=True)
class Owner:
    """The logged-in owner behind one request: their session and its path key."""

    sid: str
    key: str
    sessions: OwnerSessions

    @property
    def base(self) -> str:
        """The prefix of every console URL of this session (no trailing slash)."""
        return f"{OWNER_PREFIX}{self.key}"

    def token(self, form: str) -> str:
        """A CSRF token for one form of this session (server-side, never a cookie's value)."""
        return self.sessions.form_token(self.sid, form)

    def form_ok(self, form: str, token: str) -> bool:
        return self.sessions.form_ok(self.sid, form, token)


def page(html: str, status: int = 200, form_targets: Sequence[str] = ()) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=security_headers(form_targets))


def redirect(url: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status, headers=security_headers())


def redirect_with(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return redirect(redirect_uri + joiner + urlencode(params))


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


async def form_or_page(request: Request) -> Form | Response:
    """The posted form (capped, urlencoded only: ``read_form``), or the error page refusing it (413 past the cap)."""
    try:
        return await read_form(request)
    except InvalidInput as exc:
        return page(error_page(exc.message), exc.http_status)


@dataclass(frozen=True, slots=True)
class Console:
    """The console's shared parts, handed to every page module's ``install``."""

    access: VaultAccess
    issuer: str
    sessions: OwnerSessions
    cookies: Cookies
    call: Call

    def owner(self, request: Request, key: str) -> Owner | None:
        """The owner, if this request carries a live session whose path key is ``key``."""
        sid = request.cookies.get(self.cookies.session)
        if sid is None or not self.sessions.valid(sid, key):
            return None
        return Owner(sid, key, self.sessions)

    def login(self, request: Request, next_url: str = "", error: str | None = None, status: int = 200) -> Response:
        """The passphrase form, its token bound to this browser's device id (set as a cookie when new).

        ``next_url`` is where to continue under /o/<key>/ after login (``NEXT``). The form is only
        ever shown at LOGIN_PATH, the one path the device cookie is sent to: elsewhere, a redirect there."""
        next_url = next_url if NEXT.fullmatch(next_url) else ""
        if request.url.path != LOGIN_PATH:
            return redirect(f"{LOGIN_PATH}?{urlencode({'next': next_url})}" if next_url else LOGIN_PATH)
        device = self.sessions.device(request.cookies.get(self.cookies.device))
        response = page(login_page(self.sessions.login_token(device), next_url, error), status)
        self.cookies.set_device(response, device)
        return response

    def start(self, response: Response, device: str | None) -> str:
        """Start a session and set its cookie on ``response``; returns the console's base URL for it."""
        sid = self.sessions.start(device)
        key = self.sessions.key_of(sid)
        self.cookies.set_session(response, sid, key)
        return f"{OWNER_PREFIX}{key}"

    def render(self, owner: Owner, active: str, title: str, body: str, status: int = 200) -> HTMLResponse:
        """A console page: the navigation bar (``active`` section), then ``body``."""
        return page(document(title, body, navigation(owner.base, active, owner.token("logout"))), status)

    def to_client(self, redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
        """Every redirect to an OAuth client: the back-off device id is dropped (its path is fixed); the
        session cookie lives under the secret path and is not sent there."""
        response = redirect_with(redirect_uri, params)
        self.cookies.drop_device(response)
        return response
