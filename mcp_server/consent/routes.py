"""The owner's pages as FastAPI routes: login (passphrase or one-time link), OAuth decision, consent requests, logout.

Every decision is a core call; this module parses the form, calls, and renders. The session
cookie is the only owner credential a browser holds: ``HttpOnly; SameSite=Strict``, under
``/consent/`` over plain http (``__Host-`` with ``Secure`` and ``/`` over https), and deleted
by the answer that sends the browser to an OAuth client (with the back-off device id), so
the client's loopback server (another port of the same host, which browsers send the same
cookies) never receives either.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol, TypeVar, cast
from urllib.parse import urlencode, urlsplit

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mcp_server.consent import (
    STYLE,
    STYLE_PATH,
    consent_page,
    decided_page,
    error_page,
    home_page,
    link_page,
    logged_out_page,
    login_page,
    request_page,
    security_headers,
)
from mcp_server.forms import read_form
from mcp_server.server import VaultAccess
from vault import OWNER
from vault.errors import InvalidInput, InvalidToken, LoginThrottled, NotFound, VaultError, WrongPassphrase
from vault.filters import SENSITIVITY_ORDER, Sensitivity
from vault.items import utcnow
from vault.owner_sessions import COOKIE_PATH, SESSION_MAX, OwnerSessions, PendingAuthorization
from vault.unlock import unlock_key

T = TypeVar("T")


class Call(Protocol):
    """Runs a core call in a worker thread under the vault lock."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


EXPIRY = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "30d": timedelta(days=30)}
DEVICE_MAX_AGE = 365 * 24 * 3600
_NEXT = re.compile(r"^/consent/(oauth/[A-Za-z0-9_-]{1,64}|authorize\?[^\s]*|[0-9A-Za-z]{1,64}|)$")


@dataclass(frozen=True, slots=True)
class Cookies:
    """Names and attributes of the owner's cookies for one issuer."""

    session: str
    device: str
    path: str
    secure: bool

    @classmethod
    def for_issuer(cls, issuer: str) -> Cookies:
        # __Host- needs Secure and Path=/, which plain http cannot offer; there the path narrows instead.
        if issuer.startswith("https://"):
            return cls("__Host-cv_session", "__Host-cv_device", "/", True)
        return cls("cv_session", "cv_device", COOKIE_PATH, False)

    def set_session(self, response: Response, sid: str) -> None:
        response.set_cookie(
            self.session, sid, max_age=int(SESSION_MAX), path=self.path, secure=self.secure, httponly=True, samesite="strict"
        )

    def drop_session(self, response: Response) -> None:
        response.delete_cookie(self.session, path=self.path, secure=self.secure, httponly=True, samesite="strict")

    def drop_device(self, response: Response) -> None:
        response.delete_cookie(self.device, path=self.path, secure=self.secure, httponly=True, samesite="strict")

    def leave_for_client(self, response: Response) -> Response:
        """Delete both cookies on an answer that sends the browser to an OAuth client's server."""
        self.drop_session(response)
        self.drop_device(response)
        return response

    def set_device(self, response: Response, device: str) -> None:
        response.set_cookie(
            self.device, device, max_age=DEVICE_MAX_AGE, path=self.path, secure=self.secure, httponly=True, samesite="strict"
        )


def page(html: str, status: int = 200, form_targets: Sequence[str] = ()) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=security_headers(form_targets))


def redirect(url: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status, headers=security_headers())


def redirect_with(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return redirect(redirect_uri + joiner + urlencode(params))


def to_client(sessions: OwnerSessions, cookies: Cookies, request: Request, redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    """Every redirect to an OAuth client: the client's server may share our host (browsers send cookies to
    every port) so the session ends and no cookie of ours goes along, not even the back-off device id."""
    sessions.end(request.cookies.get(cookies.session))
    response = redirect_with(redirect_uri, params)
    cookies.leave_for_client(response)
    return response


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def login_response(
    request: Request, sessions: OwnerSessions, cookies: Cookies, next_url: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The passphrase form, its token bound to this browser's device id (set as a cookie when new)."""
    device = sessions.device(request.cookies.get(cookies.device))
    response = page(login_page(sessions.login_token(device), next_url, error), status)
    cookies.set_device(response, device)
    return response


Form = tuple[dict[str, str], dict[str, list[str]]]


async def form_or_page(request: Request) -> Form | Response:
    """The posted form (capped, urlencoded only: ``read_form``), or the error page refusing it (413 past the cap)."""
    try:
        return await read_form(request)
    except InvalidInput as exc:
        return page(error_page(exc.message), exc.http_status)


def install(app: FastAPI, access: VaultAccess, issuer: str, sessions: OwnerSessions, cookies: Cookies, call: Call) -> None:
    """Add the owner's pages to ``app`` (before the /mcp mount)."""

    def session_of(request: Request) -> str | None:
        sid = request.cookies.get(cookies.session)
        return sid if sessions.valid(sid) else None

    @app.get(STYLE_PATH)
    async def style() -> Response:
        return Response(STYLE, media_type="text/css", headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    @app.post("/consent/login")
    async def login(request: Request) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        next_url = form.get("next", "")
        device = request.cookies.get(cookies.device)
        if not sessions.login_ok(device, form.get("token", "")) or device is None:
            return page(error_page("The form expired; reload the page."), 403)
        if not _NEXT.fullmatch(next_url):
            return page(error_page("Nothing to continue to."), 400)
        try:
            # Counted before the (slow) passphrase check, refunded by a successful login: no parallel bypass.
            sessions.attempt(device)
            await anyio.to_thread.run_sync(lambda: unlock_key(access.service.settings, form.get("passphrase", "")))
        except LoginThrottled as exc:
            throttled = login_response(request, sessions, cookies, next_url, exc.message, 429)
            throttled.headers["Retry-After"] = str(int(exc.retry_after) + 1)
            return throttled
        except WrongPassphrase:
            return login_response(request, sessions, cookies, next_url, "Wrong passphrase.", 401)
        response = redirect(next_url)
        cookies.set_session(response, sessions.start(device))
        return response

    @app.get("/consent/link")
    async def link(request: Request) -> Response:
        return page(link_page(request.query_params.get("token", "")))

    @app.post("/consent/link")
    async def link_login(request: Request) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        try:
            # The link logs in without the passphrase and without the back-off: the owner minted it in the CLI.
            await call(lambda: access.service.redeem_owner_login(form.get("link", "")))
        except InvalidToken as exc:
            return page(error_page(exc.message), 401)
        response = redirect("/consent/")
        device = request.cookies.get(cookies.device)
        cookies.set_session(response, sessions.start(device if device is not None and sessions.device(device) == device else None))
        return response

    @app.get("/consent/")
    async def home(request: Request) -> Response:
        sid = session_of(request)
        if sid is None:
            return login_response(request, sessions, cookies, "/consent/")
        pending = await call(lambda: access.service.list_consent(OWNER))
        return page(home_page(sessions.form_token(sid, "logout"), pending))

    @app.post("/consent/logout")
    async def logout(request: Request) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        sid = request.cookies.get(cookies.session)
        if not sessions.form_ok(sid, "logout", form.get("token", "")):
            return page(error_page("Log in again to continue."), 403)
        sessions.end(sid)
        response = page(logged_out_page())
        cookies.drop_session(response)
        return response

    async def show_pending(sid: str, pid: str, pending: PendingAuthorization, error: str | None = None, status: int = 200) -> Response:
        spaces = await call(lambda: access.service.spaces(OWNER))
        html = consent_page(
            sessions.form_token(sid, f"oauth:{pid}"), pid, pending.client_name, pending.client_id, pending.redirect_uri,
            pending.offered, pending.asked, spaces, error,
        )  # fmt: skip
        return page(html, status, [origin_of(pending.redirect_uri)])

    @app.get("/consent/oauth/{pid}")
    async def oauth_page(request: Request, pid: str) -> Response:
        pending = sessions.pending(pid)
        if pending is None:
            return page(error_page("This authorization expired or was decided; start again from the app."), 404)
        sid = session_of(request)
        if sid is None:
            return login_response(request, sessions, cookies, f"/consent/oauth/{pid}")
        return await show_pending(sid, pid, pending)

    @app.post("/consent/oauth/{pid}")
    async def oauth_decide(request: Request, pid: str) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, multi = got
        sid = request.cookies.get(cookies.session)
        if sid is None or not sessions.form_ok(sid, f"oauth:{pid}", form.get("token", "")):
            return page(error_page("Log in again to decide."), 403)
        # Taken before any await: a second decision posted meanwhile finds nothing (one grant, one code).
        pending = sessions.take(pid)
        if pending is None:
            return page(error_page("This authorization expired or was decided; start again from the app."), 404)
        back = {"iss": issuer, **({"state": pending.state} if pending.state else {})}
        if form.get("decision") == "approve":
            sens = form.get("sens") or None
            expiry = form.get("expires", "")
            expires = EXPIRY.get(expiry)
            try:
                if sens is not None and sens not in SENSITIVITY_ORDER:
                    raise InvalidInput("sens must be low, medium or high")
                if expiry and expires is None:
                    # Only "" means "until revoked": an unknown value must never become a grant without end.
                    raise InvalidInput(f"expires must be one of {', '.join(EXPIRY)}, or empty for no expiry")
                stamp = utcnow()
                approved = await call(
                    lambda: access.service.oauth_decide(
                        OWNER, pending, multi.get("scope", []), spaces=multi.get("space") or None,
                        max_sensitivity=cast(Sensitivity | None, sens), expires_at=stamp + expires if expires else None, now=stamp,
                    )
                )  # fmt: skip
            except InvalidInput as exc:
                sessions.restore(pid)
                return await show_pending(sid, pid, pending, exc.message, 400)
            except VaultError as exc:
                # The owner's browser gets a page, never the API's JSON (e.g. a client that is gone).
                sessions.settle(pid)
                return page(error_page(f"{exc.message}; start again from the app."), exc.http_status)
            params = {"code": approved.code, **back}
        else:
            params = {"error": "access_denied", **back}
        sessions.settle(pid)
        return to_client(sessions, cookies, request, pending.redirect_uri, params)

    # The consent page for requests made over MCP (request_access): the same owner login.
    @app.get("/consent/{request_id}")
    async def consent_request(request: Request, request_id: str) -> Response:
        sid = session_of(request)
        if sid is None:
            return login_response(request, sessions, cookies, f"/consent/{request_id}")
        try:
            asked = await call(lambda: access.service.consent_status(OWNER, request_id))
        except NotFound:
            return page(error_page("No such consent request."), 404)
        token = sessions.form_token(sid, f"consent:{request_id}")
        return page(request_page(token, asked.app_name or asked.app_id, asked.scopes, asked.purpose, asked.status))

    @app.post("/consent/{request_id}")
    async def consent_decide(request: Request, request_id: str) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        sid = request.cookies.get(cookies.session)
        if not sessions.form_ok(sid, f"consent:{request_id}", form.get("token", "")):
            return page(error_page("Log in again to decide."), 403)
        decision: Literal["approve", "deny"] = "approve" if form.get("decision") == "approve" else "deny"
        try:
            if decision == "approve":
                await call(lambda: access.service.approve_consent(OWNER, request_id))
            else:
                await call(lambda: access.service.deny_consent(OWNER, request_id))
        except VaultError as exc:
            return page(error_page(exc.message), exc.http_status)
        return page(decided_page(decision == "approve"))
