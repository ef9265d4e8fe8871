"""The vault's own OAuth 2.1 authorization server (MCP authorization spec), as FastAPI routes.

- RFC 8414 metadata at /.well-known/oauth-authorization-server (RFC 9728 resource metadata
  and the 401 pointing at it come from the SDK's resource-server half).
- /authorize: authorization code + PKCE S256 only, RFC 8707 ``resource`` must name our /mcp,
  the owner logs in with the passphrase and approves on our page (CSRF-protected); the
  redirect carries ``iss`` (RFC 9207).
- /token: code exchange and refresh-token rotation; tokens are stored hashed by the core.
- Clients: pre-registered apps (``ctxvault apps add NAME --redirect-uri …``), Client ID
  Metadata Documents (an https client_id fetched on first use), and /register (RFC 7591),
  kept for clients that still need it.
- Step-up (403 ``insufficient_scope``) lives in ``mcp_server.stepup``.

Every decision is a core call; this module parses, calls, and renders.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar
from urllib.parse import urlencode, urlsplit

import anyio.to_thread
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mcp_server.consent import consent_page, decided_page, error_page, login_page, request_page
from mcp_server.server import VaultAccess
from vault import OWNER
from vault.errors import InvalidInput, NotFound, TooLarge, VaultError, WrongPassphrase
from vault.oauth import MAX_REGISTRATION_BYTES
from vault.unlock import unlock_key

T = TypeVar("T")
SESSION_COOKIE, CSRF_COOKIE = "cv_owner", "cv_csrf"
OWNER_SESSION_SECONDS = 15 * 60
DEFAULT_SCOPE = "search:* read:*"
MAX_METADATA_BYTES = 64 * 1024

MetadataFetcher = Callable[[str], Awaitable[dict[str, object]]]


async def fetch_client_metadata(url: str) -> dict[str, object]:
    """GET a Client ID Metadata Document (https only, small, JSON object)."""
    import httpx2

    if not url.startswith("https://"):
        raise InvalidInput("a client_id URL must be https")
    try:
        async with (
            httpx2.AsyncClient(timeout=5, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as answer,
        ):
            body = b""
            async for part in answer.aiter_bytes():
                body += part
                if len(body) > MAX_METADATA_BYTES:
                    raise InvalidInput("the client metadata document is too large")
            status = answer.status_code
        if status != 200:
            raise InvalidInput("the client metadata document could not be fetched")
        document = json.loads(body)
    except (httpx2.HTTPError, ValueError) as exc:
        raise InvalidInput("the client metadata document could not be fetched or is not JSON") from exc
    if not isinstance(document, dict):
        raise InvalidInput("the client metadata document is not a JSON object")
    return document


class OwnerSessions:
    """Owner logins on the consent page: random ids in memory only, short-lived.

    Failed logins back off: after ``FREE_FAILURES`` in a row, each further attempt waits
    2, 4, 8… seconds (at most ``MAX_BACKOFF``), so a local process cannot grind guesses
    against the passphrase through this page.
    """

    FREE_FAILURES = 5
    MAX_BACKOFF = 300.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._failures = 0
        self._last_failure = 0.0

    def start(self) -> str:
        now = self._clock()
        self._expiry = {sid: t for sid, t in self._expiry.items() if t > now}
        sid = secrets.token_urlsafe(32)
        self._expiry[sid] = now + OWNER_SESSION_SECONDS
        self._failures = 0
        return sid

    def valid(self, sid: str | None) -> bool:
        return sid is not None and self._expiry.get(sid, 0.0) > self._clock()

    def retry_after(self) -> float:
        """Seconds until another login may be tried (0 when it may be tried now)."""
        if self._failures < self.FREE_FAILURES:
            return 0.0
        wait = min(2.0 ** (self._failures - self.FREE_FAILURES + 1), self.MAX_BACKOFF)
        return max(0.0, self._last_failure + wait - self._clock())

    def failed(self) -> None:
        self._failures += 1
        self._last_failure = self._clock()


def _csrf_ok(request: Request, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie, submitted)


def _with_csrf(request: Request, render: Callable[[str], str], status: int = 200) -> HTMLResponse:
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = HTMLResponse(render(csrf), status_code=status, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/")
    return response


def _redirect_with(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + joiner + urlencode(params), status_code=303)


def _token_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers={"Cache-Control": "no-store"})


def install(app: FastAPI, access: VaultAccess, issuer: str, fetch_metadata: MetadataFetcher = fetch_client_metadata) -> None:
    """Add the authorization server's routes to ``app`` (before the /mcp mount)."""
    resource = f"{issuer}/mcp"
    sessions = OwnerSessions()

    async def call(fn: Callable[[], T]) -> T:
        def locked() -> T:
            with access.lock:
                return fn()

        return await anyio.to_thread.run_sync(locked)

    @app.get("/.well-known/oauth-authorization-server")
    async def metadata() -> JSONResponse:
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "registration_endpoint": f"{issuer}/register",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "authorization_response_iss_parameter_supported": True,
                "client_id_metadata_document_supported": True,
                "scopes_supported": ["search:*", "read:*", "write:memories", "delete:*"],
            }
        )

    @app.post("/register")
    async def register(request: Request) -> JSONResponse:
        # Read at most MAX_REGISTRATION_BYTES, streamed: a huge body is refused, never buffered.
        declared = request.headers.get("content-length", "")
        raw = bytearray()
        if not (declared.isdigit() and int(declared) > MAX_REGISTRATION_BYTES):
            async for part in request.stream():
                raw += part
                if len(raw) > MAX_REGISTRATION_BYTES:
                    break
        if len(raw) > MAX_REGISTRATION_BYTES or (declared.isdigit() and int(declared) > MAX_REGISTRATION_BYTES):
            return _token_error("invalid_client_metadata", f"the registration is larger than {MAX_REGISTRATION_BYTES} bytes", 413)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return _token_error("invalid_client_metadata", "the body must be JSON")
        if not isinstance(body, dict) or not isinstance(body.get("redirect_uris"), list):
            return _token_error("invalid_redirect_uri", "redirect_uris is required")
        uris, name = body["redirect_uris"], body.get("client_name")
        if not all(isinstance(u, str) for u in uris):
            return _token_error("invalid_redirect_uri", "every redirect_uri must be a string")
        if name is not None and not isinstance(name, str):
            return _token_error("invalid_client_metadata", "client_name must be a string")
        try:
            client = await call(lambda: access.service.oauth_register(name, uris))
        except TooLarge as exc:
            return _token_error("invalid_client_metadata", exc.message)
        except InvalidInput as exc:
            return _token_error("invalid_redirect_uri", exc.message)
        return JSONResponse(
            {
                "client_id": client.client_id,
                "client_name": client.client_name,
                "redirect_uris": client.redirect_uris,
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
            status_code=201,
        )

    async def resolve_client(client_id: str) -> tuple[str, str, list[str]]:
        try:
            client = await call(lambda: access.service.oauth_client(client_id))
        except NotFound:
            if not client_id.startswith("https://"):
                raise
            document = await fetch_metadata(client_id)
            client = await call(lambda: access.service.oauth_client(client_id, document))
        return client.client_id, client.client_name, client.redirect_uris

    async def known_client(client_id: str) -> bool:
        try:
            await call(lambda: access.service.oauth_client(client_id))
        except NotFound:
            return False
        return True

    @app.get("/authorize")
    async def authorize(request: Request) -> Response:
        q = request.query_params
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        logged_in = sessions.valid(request.cookies.get(SESSION_COOKIE))
        if not logged_in and client_id.startswith("https://") and not await known_client(client_id):
            # An unknown client's metadata URL is fetched (and the client stored) only for
            # the logged-in owner, never for any page that merely links here.
            return _with_csrf(request, lambda csrf: login_page(csrf, f"/authorize?{q}"))
        try:
            _, name, uris = await resolve_client(client_id)
        except VaultError as exc:
            return HTMLResponse(error_page(f"Unknown or invalid client: {exc.message}"), status_code=400)
        if redirect_uri not in uris:
            # Never redirect to an unregistered URI (open redirect).
            return HTMLResponse(error_page("The redirect_uri is not registered for this client."), status_code=400)
        state = q.get("state")
        back = {"iss": issuer, **({"state": state} if state else {})}
        if q.get("response_type") != "code":
            return _redirect_with(redirect_uri, {"error": "unsupported_response_type", **back})
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return _redirect_with(redirect_uri, {"error": "invalid_request", "error_description": "PKCE S256 is required", **back})
        if q.get("resource", resource).rstrip("/") != resource:
            return _redirect_with(redirect_uri, {"error": "invalid_target", "error_description": f"resource must be {resource}", **back})
        if not logged_in:
            return _with_csrf(request, lambda csrf: login_page(csrf, f"/authorize?{q}"))
        scopes = (q.get("scope") or DEFAULT_SCOPE).split()
        fields = {k: q[k] for k in ("client_id", "redirect_uri", "code_challenge", "state") if q.get(k)} | {"scope": " ".join(scopes)}
        return _with_csrf(request, lambda csrf: consent_page(csrf, name, client_id, scopes, fields))

    @app.post("/consent/login")
    async def login(
        request: Request, passphrase: Annotated[str, Form()], csrf: Annotated[str, Form()], next: Annotated[str, Form()]
    ) -> Response:
        if not _csrf_ok(request, csrf):
            return HTMLResponse(error_page("The form expired; reload the page."), status_code=403)
        if not (next.startswith("/authorize?") or re.fullmatch(r"/consent/[0-9A-Za-z]{1,64}", next)):
            return HTMLResponse(error_page("Nothing to continue to."), status_code=400)
        wait = sessions.retry_after()
        if wait > 0:
            page = _with_csrf(
                request, lambda token: login_page(token, next, f"Too many wrong passphrases; try again in {wait:.0f} s."), 429
            )
            page.headers["Retry-After"] = str(int(wait) + 1)
            return page
        try:
            await anyio.to_thread.run_sync(lambda: unlock_key(access.service.settings, passphrase))
        except WrongPassphrase:
            sessions.failed()
            return _with_csrf(request, lambda token: login_page(token, next, "Wrong passphrase."), status=401)
        response = RedirectResponse(next, status_code=303)
        response.set_cookie(SESSION_COOKIE, sessions.start(), httponly=True, samesite="strict", path="/", max_age=OWNER_SESSION_SECONDS)
        return response

    @app.post("/authorize")
    async def decide(
        request: Request,
        csrf: Annotated[str, Form()],
        decision: Annotated[str, Form()],
        client_id: Annotated[str, Form()],
        redirect_uri: Annotated[str, Form()],
        code_challenge: Annotated[str, Form()],
        scope: Annotated[str, Form()],
        state: Annotated[str | None, Form()] = None,
    ) -> Response:
        if not _csrf_ok(request, csrf) or not sessions.valid(request.cookies.get(SESSION_COOKIE)):
            return HTMLResponse(error_page("Log in again to decide."), status_code=403)
        _, _, uris = await resolve_client(client_id)
        if redirect_uri not in uris:
            return HTMLResponse(error_page("The redirect_uri is not registered for this client."), status_code=400)
        back = {"iss": issuer, **({"state": state} if state else {})}
        if decision != "approve":
            return _redirect_with(redirect_uri, {"error": "access_denied", **back})
        try:
            approved = await call(
                lambda: access.service.oauth_approve(
                    OWNER, client_id, scope.split(), redirect_uri=redirect_uri, code_challenge=code_challenge, resource=resource
                )
            )
        except InvalidInput as exc:
            return _redirect_with(redirect_uri, {"error": "invalid_scope", "error_description": exc.message, **back})
        return _redirect_with(redirect_uri, {"code": approved.code, **back})

    # The consent page for requests made over MCP (request_access): the same owner login.
    @app.get("/consent/{request_id}")
    async def consent_request(request: Request, request_id: str) -> Response:
        if not sessions.valid(request.cookies.get(SESSION_COOKIE)):
            return _with_csrf(request, lambda csrf: login_page(csrf, f"/consent/{request_id}"))
        try:
            asked = await call(lambda: access.service.consent_status(OWNER, request_id))
        except NotFound:
            return HTMLResponse(error_page("No such consent request."), status_code=404)
        name = asked.app_name or asked.app_id
        return _with_csrf(request, lambda csrf: request_page(csrf, name, asked.scopes, asked.purpose, asked.status))

    @app.post("/consent/{request_id}")
    async def consent_decide(request: Request, request_id: str, csrf: Annotated[str, Form()], decision: Annotated[str, Form()]) -> Response:
        if not _csrf_ok(request, csrf) or not sessions.valid(request.cookies.get(SESSION_COOKIE)):
            return HTMLResponse(error_page("Log in again to decide."), status_code=403)
        approve = decision == "approve"
        try:
            if approve:
                await call(lambda: access.service.approve_consent(OWNER, request_id))
            else:
                await call(lambda: access.service.deny_consent(OWNER, request_id))
        except VaultError as exc:
            return HTMLResponse(error_page(exc.message), status_code=exc.http_status)
        return HTMLResponse(decided_page(approve), headers={"Cache-Control": "no-store"})

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        field = {k: str(v) for k, v in form.items()}
        client_id, target = field.get("client_id", ""), field.get("resource")
        try:
            match field.get("grant_type"):
                case "authorization_code":
                    issued = await call(
                        lambda: access.service.oauth_exchange(
                            client_id, field.get("code", ""), field.get("redirect_uri", ""), field.get("code_verifier", ""), target
                        )
                    )
                case "refresh_token":
                    issued = await call(lambda: access.service.oauth_refresh(client_id, field.get("refresh_token", ""), target))
                case _:
                    return _token_error("unsupported_grant_type", "use authorization_code or refresh_token")
        except VaultError as exc:
            return _token_error("invalid_grant", exc.message)
        return JSONResponse(issued.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
