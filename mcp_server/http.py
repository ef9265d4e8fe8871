"""The HTTP face: FastAPI with the MCP Streamable HTTP app mounted at /mcp.

Every /mcp request carries a bearer token in the Authorization header (never in the URL):
an app token, or an access token the vault's own authorization server issued. The token
says which app is calling; what that app may see is decided by the core on every call.
Host and Origin are checked on every route against the loopback names the server is
bound to (DNS rebinding): a foreign Host gets 421, a foreign Origin 403.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_server import oauth, rest
from mcp_server.oauth import MetadataFetcher, fetch_client_metadata
from mcp_server.server import VaultAccess, build_server
from mcp_server.stepup import StepUp, oauth_token_check
from vault.errors import VaultError, VaultLocked
from vault.principal import Principal
from vault.readers import READERS, ReaderPool
from vault.service import VaultService

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

TokenCheck = Callable[[VaultService, str], Principal | None]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def transport_security(base_url: str) -> TransportSecuritySettings:
    """Hosts and origins the server answers to: the names of its own base URL (plus loopback aliases)."""
    parts = urlsplit(base_url)
    port = f":{parts.port}" if parts.port else ""
    names = {parts.hostname or "127.0.0.1", *LOOPBACK_NAMES} if parts.hostname in ("127.0.0.1", "localhost", "::1") else {parts.hostname}
    hosts = [f"{n}{port}" for n in sorted(n for n in names if n)]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"{parts.scheme}://{h}" for h in hosts],
    )


class HostOriginGuard:
    """Reject requests addressed to a foreign Host (421) or sent from a foreign Origin (403), on every route."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self.app = app
        self.hosts = set(security.allowed_hosts)
        self.origins = set(security.allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            if headers.get("host") not in self.hosts:
                await JSONResponse({"error": "misdirected_request"}, status_code=421)(scope, receive, send)
                return
            origin = headers.get("origin")
            if origin is not None and origin not in self.origins:
                await JSONResponse({"error": "forbidden_origin"}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class VaultTokenVerifier(TokenVerifier):
    """Bearer token → the app it belongs to, checked against the vault on every request."""

    def __init__(self, access: VaultAccess, resource: str, checks: list[TokenCheck]) -> None:
        self._access = access
        self._resource = resource
        self._checks = checks

    async def verify_token(self, token: str) -> AccessToken | None:
        def lookup(svc: VaultService) -> Principal | None:
            for check in self._checks:
                principal = check(svc, token)
                if principal is not None:
                    return principal
            return None

        principal = await anyio.to_thread.run_sync(lambda: self._access.read(lookup))
        if principal is None or principal.name is None:
            return None
        # Scopes are not carried in the token: the core checks live grants on every call (BRIEF §4).
        return AccessToken(token=token, client_id=principal.name, scopes=[], resource=self._resource, subject=principal.app_id)


def app_token_check() -> TokenCheck:
    def check(svc: VaultService, token: str) -> Principal | None:
        try:
            return svc.authenticate_app(token)
        except VaultError:
            # An unknown token is simply not this kind of token; the verifier answers 401 if none match.
            return None

    return check


def _identify(svc: VaultService) -> Principal:
    token = get_access_token()
    if token is None:
        raise VaultLocked("no bearer token on this request")
    return svc.principal_for_app(token.client_id)


def create_app(
    svc: VaultService,
    base_url: str = "http://127.0.0.1:8765",
    *,
    harness_principal: Principal | None = None,
    fetch_metadata: MetadataFetcher = fetch_client_metadata,
    readers: int = READERS,
) -> FastAPI:
    """The vault's HTTP app. ``harness_principal`` serves /mcp without auth as that principal (tests only);
    ``readers``: reader connections for read calls (0: every call takes the writer's turn)."""
    base_url = base_url.rstrip("/")
    resource = f"{base_url}/mcp"
    security = transport_security(base_url)
    lock = threading.Lock()
    # Read calls run on reader connections beside the writer's calls (vault/readers.py).
    pool = ReaderPool(svc, lock, readers) if readers else None
    if harness_principal is not None:
        fixed = harness_principal
        access = VaultAccess(svc, lambda _: fixed, consent_base=base_url, lock=lock, readers=pool)
        server = build_server(access)
    else:
        access = VaultAccess(svc, _identify, consent_base=base_url, lock=lock, readers=pool)
        checks = [app_token_check(), oauth_token_check(resource)]
        verifier = VaultTokenVerifier(access, resource, checks)
        # Built from strings: AnyHttpUrl(...) would add a trailing "/" to the issuer, and RFC 8414 compares issuers exactly.
        auth = AuthSettings.model_validate({"issuer_url": base_url, "resource_server_url": resource, "validate_token_resource": True})
        server = build_server(access, token_verifier=verifier, auth=auth)
    mcp_app = server.streamable_http_app(transport_security=security)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # A mounted app's lifespan never runs: the host app must run the session manager.
        try:
            async with server.session_manager.run():
                yield
        finally:
            access.close()

    app = FastAPI(title="Context Vault", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.access = access
    app.state.mcp_server = server

    @app.exception_handler(VaultError)
    async def vault_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VaultError)
        return rest.error_response(exc)

    if harness_principal is None:
        app.state.console = console = oauth.install(app, access, base_url, fetch_metadata)
        rest.install(app, console, resource)
        app.add_middleware(rest.BodyCap)

        app.add_middleware(
            StepUp, access=access, resource=resource, resource_metadata=f"{base_url}/.well-known/oauth-protected-resource/mcp"
        )
    # Our own routes go before the mount: Mount("/") matches every path.
    app.mount("/", mcp_app)
    # Added last, so it runs first: nothing is answered for a foreign Host or Origin.
    app.add_middleware(HostOriginGuard, security=security)
    return app
