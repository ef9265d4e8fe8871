"""The vault's own OAuth 2.1 authorization server (MCP authorization spec), as FastAPI routes.

- RFC 8414 metadata at /.well-known/oauth-authorization-server (RFC 9728 resource metadata
  and the 401 pointing at it come from the SDK's resource-server half).
- /authorize: authorization code + PKCE S256 only, RFC 8707 ``resource`` must name our /mcp;
  the checked request is held server-side and the owner decides on /o/<key>/oauth/{id}
  (mcp_server/console/decide.py): logs in, narrows, approves or denies. A client naming no
  scope is offered nothing ticked. The redirect carries ``iss`` (RFC 9207).
- /token: code exchange and refresh-token rotation; tokens are stored hashed by the core.
- Clients: pre-registered apps (``ctxvault apps add NAME --redirect-uri …``), Client ID
  Metadata Documents (an https client_id fetched on first use), and /register (RFC 7591),
  kept for clients that still need it.
- Step-up (403 ``insufficient_scope``) lives in ``mcp_server.stepup``.

Every decision is a core call; this module parses, calls, and renders.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from mcp_server.console import routes as console_routes
from mcp_server.console.context import Console, Cookies, page, redirect
from mcp_server.console.pages import error_page
from mcp_server.forms import read_capped, read_form
from mcp_server.server import VaultAccess
from vault.errors import InvalidInput, NotFound, TooLarge, VaultError
from vault.oauth import MAX_REGISTRATION_BYTES, check_redirect_uris
from vault.owner_sessions import OwnerSessions, PendingAuthorization

T = TypeVar("T")
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


def _token_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers={"Cache-Control": "no-store"})


def install(app: FastAPI, access: VaultAccess, issuer: str, fetch_metadata: MetadataFetcher = fetch_client_metadata) -> Console:
    """Add the authorization server's routes and the owner's console to ``app`` (before the /mcp mount)."""
    resource = f"{issuer}/mcp"
    sessions = OwnerSessions()
    cookies = Cookies.for_issuer(issuer)

    async def call(fn: Callable[[], T]) -> T:
        def locked() -> T:
            with access.lock:
                return fn()

        return await anyio.to_thread.run_sync(locked)

    console = console_routes.install(app, access, issuer, sessions, cookies, call)

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
        try:
            raw = await read_capped(request, MAX_REGISTRATION_BYTES)
        except TooLarge:
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
            waiting = sessions.pending_clients()  # never pruned: the owner may be about to approve one
            client = await call(lambda: access.service.oauth_register(name, uris, waiting))
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

    async def begin(request: Request, base: str | None) -> Response:
        """Check an authorization request and hold it for the owner; ``base``: the console of a logged-in owner."""
        q = request.query_params
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        if base is None and client_id.startswith("https://") and not await known_client(client_id):
            # An unknown client's metadata URL is fetched (and the client stored) only for
            # the logged-in owner, never for any page that merely links here.
            return console.login(request, f"authorize?{q}")
        try:
            _, name, uris = await resolve_client(client_id)
        except VaultError as exc:
            return page(error_page(f"Unknown or invalid client: {exc.message}"), 400)
        if redirect_uri not in uris:
            # Never redirect to an unregistered URI (open redirect).
            return page(error_page("The redirect_uri is not registered for this client."), 400)
        try:
            # A client stored before the rule (or a pre-registered app) may still name a URI under our cookie path.
            check_redirect_uris([redirect_uri])
        except VaultError as exc:
            return page(error_page(f"invalid_redirect_uri: {exc.message}"), 400)
        state = q.get("state")
        back = {"iss": issuer, **({"state": state} if state else {})}

        def to_client_with(params: dict[str, str]) -> Response:
            return console.to_client(redirect_uri, {**params, **back})

        if q.get("response_type") != "code":
            return to_client_with({"error": "unsupported_response_type"})
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return to_client_with({"error": "invalid_request", "error_description": "PKCE S256 is required"})
        if q.get("resource", resource).rstrip("/") != resource:
            return to_client_with({"error": "invalid_target", "error_description": f"resource must be {resource}"})
        try:
            # Malformed and owner-only scopes are refused here, with the reason, before any page is shown.
            offered, asked = access.service.oauth_offer(q.get("scope"))
        except InvalidInput as exc:
            return to_client_with({"error": "invalid_scope", "error_description": exc.message})
        pending = PendingAuthorization(
            client_id=client_id, client_name=name, redirect_uri=redirect_uri, code_challenge=q["code_challenge"],
            resource=resource, state=state, offered=offered, asked=asked,
        )  # fmt: skip
        # The decision form will name this server-side record, never the scopes or the client.
        pid = sessions.hold(pending)
        # A logged-out browser goes through the login door (/authorize never sees the session's cookie).
        return redirect(f"{base}/oauth/{pid}" if base is not None else f"/consent/oauth/{pid}")

    @app.get("/authorize")
    async def authorize(request: Request) -> Response:
        return await begin(request, None)

    @app.get("/o/{key}/authorize")
    async def authorize_logged_in(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, f"authorize?{request.query_params}")
        return await begin(request, owner.base)

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        try:
            field, _ = await read_form(request)
        except InvalidInput as exc:
            return _token_error("invalid_request", exc.message, exc.http_status)
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

    return console
