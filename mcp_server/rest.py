"""The REST API (/v1): everything the console does, over the same core calls, for the owner and for apps.

Two doors, one router: apps at ``/v1/…`` with their bearer token (an app token or an OAuth
access token), checked against their live grants by the core on every call; the owner at
``/o/<key>/v1/…`` with the console session (its cookie lives under that secret path; the
Host/Origin guard refuses foreign origins). ``/openapi.json`` documents the ``/v1`` paths.
Routes parse, make one service call and answer; every refusal is a ``VaultError`` in the
one ``ErrorBody`` shape. Bodies are capped while they are read (``BodyCap``), before any check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server.console.context import Console
from schemas.access import AccessSummary, App, AuditEntry, AuditReport, ConsentRequest, Grant
from schemas.api import API_BODY_BYTES, AccessRequestIn, ApproveIn, EditIn, ErrorBody, PreferenceIn, Purged, RestoreIn
from schemas.items import (
    Item,
    ItemHistory,
    ItemPage,
    Kind,
    MemoryIn,
    PreferenceOut,
    RememberResult,
    SearchPage,
    SearchQuery,
    Sensitivity,
    SpaceCount,
    StatusReport,
)
from schemas.limits import ERROR_CHARS, ID_CHARS, NAME_CHARS
from vault import OWNER
from vault.errors import InvalidInput, InvalidToken, TooLarge, VaultError
from vault.principal import Principal

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": why}
    for status, why in [
        (400, "Malformed input"), (401, "No or unknown token"), (403, "Outside the caller's grants"), (404, "Not found or out of reach"),
        (409, "Conflict"), (413, "Body too large"), (423, "Vault locked"), (429, "Limit reached"), (503, "Busy"), (507, "Disk full"),
    ]
}  # fmt: skip


OPENAPI_DESCRIPTION = (
    "Apps call /v1 with `Authorization: Bearer <token>`; what each call returns is limited to the app's live grants. "
    "The owner's console calls the same operations under /o/<session key>/v1 with its session cookie. "
    "Every error has the ErrorBody shape."
)


def error_response(exc: VaultError) -> JSONResponse:
    body = ErrorBody.model_validate({"error": {"type": type(exc).__name__, "message": exc.message}, "status": exc.http_status})
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, InvalidToken) else None
    return JSONResponse(body.model_dump(), status_code=exc.http_status, headers=headers)


class BodyCap:
    """Refuse a request body past ``limit`` bytes on the API paths (413), counted while it streams in."""

    def __init__(self, app: ASGIApp, limit: int = API_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path.startswith("/v1/") or (path.startswith("/o/") and "/v1/" in path)):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = error_response(TooLarge(f"the body is larger than {self.limit} bytes"))
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(scope, receive, send)
            return
        seen, over, answered = 0, False, False

        async def counted() -> Message:
            # Past the cap the body ends here (the app gets a truncated body) and its answer is replaced.
            nonlocal seen, over
            if over:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                over = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def replaced(message: Message) -> None:
            nonlocal answered
            if not over:
                await send(message)
            elif not answered:
                answered = True
                await too_large(scope, receive, send)

        await self.app(scope, counted, replaced)


def _router(console: Console, who: Callable[..., Awaitable[Principal]], prefix: str) -> APIRouter:
    svc, call = console.access.service, console.call
    P = Depends(who)
    r = APIRouter(prefix=prefix, responses=ERRORS)

    @r.get("/status", response_model=StatusReport, summary="Counts and facts about the vault (owner only)")
    async def status(*, p: Principal = P) -> StatusReport:
        return await call(lambda: svc.status(p))

    @r.get("/access", response_model=AccessSummary, summary="What the caller may do")
    async def access(*, p: Principal = P) -> AccessSummary:
        return await call(lambda: svc.list_access(p))

    @r.get("/spaces", response_model=list[SpaceCount], summary="Spaces the caller may read, with counts")
    async def spaces(*, p: Principal = P) -> list[SpaceCount]:
        return await call(lambda: svc.spaces(p))

    @r.get("/items", response_model=ItemPage, summary="List items, newest first, with filters")
    async def items(
        kind: Annotated[list[Kind] | None, Query(max_length=3)] = None,
        space: Annotated[list[str] | None, Query(max_length=50)] = None,
        tag: Annotated[list[str] | None, Query(max_length=50)] = None,
        max_sensitivity: Sensitivity | None = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        *,
        p: Principal = P,
    ) -> ItemPage:
        return await call(lambda: svc.list_items(p, kind, space, tag, max_sensitivity, since, limit, offset))

    @r.get("/items/{item_id}", response_model=Item, summary="One item (with its versions on request)")
    async def item(item_id: str, versions: bool = False, *, p: Principal = P) -> Item:
        return await call(lambda: svc.get_item(p, _id(item_id), versions=versions))

    @r.get("/items/{item_id}/history", response_model=ItemHistory, summary="An item's earlier versions")
    async def history(item_id: str, *, p: Principal = P) -> ItemHistory:
        return await call(lambda: svc.item_history(p, _id(item_id)))

    @r.post("/items/{item_id}/restore", response_model=Item, summary="Make an earlier version current again")
    async def restore(item_id: str, body: RestoreIn, *, p: Principal = P) -> Item:
        return await call(lambda: svc.restore(p, _id(item_id), body.version))

    @r.patch("/items/{item_id}", response_model=Item, summary="Edit an item (the previous version is kept)")
    async def edit(item_id: str, body: EditIn, *, p: Principal = P) -> Item:
        return await call(lambda: svc.edit(p, _id(item_id), text=body.text, space=body.space, tags=body.tags, sensitivity=body.sensitivity))

    @r.delete("/items/{item_id}", response_model=Item, summary="Forget an item (restorable until purged)")
    async def forget(item_id: str, *, p: Principal = P) -> Item:
        return await call(lambda: svc.forget(p, _id(item_id)))

    @r.post("/items/{item_id}/purge", response_model=Purged, summary="Erase an item and its history for good (owner only)")
    async def purge(item_id: str, *, p: Principal = P) -> Purged:
        return Purged(purged=await call(lambda: svc.purge(p, _id(item_id))))

    @r.post("/memories", response_model=RememberResult, status_code=201, summary="Remember a fact")
    async def remember(body: MemoryIn, *, p: Principal = P) -> RememberResult:
        return await call(lambda: svc.remember(p, body))

    @r.post("/search", response_model=SearchPage, summary="Search what the caller may read")
    async def search(body: SearchQuery, *, p: Principal = P) -> SearchPage:
        return await call(lambda: svc.search(p, body))

    @r.get("/preferences", response_model=list[PreferenceOut], summary="Current preferences the caller may read")
    async def preferences(*, p: Principal = P) -> list[PreferenceOut]:
        return await call(lambda: svc.list_preferences(p))

    @r.get("/preferences/{key}", response_model=PreferenceOut, summary="One preference")
    async def preference(key: str, *, p: Principal = P) -> PreferenceOut:
        return await call(lambda: svc.get_preference(p, _name(key)))

    @r.put("/preferences/{key}", response_model=PreferenceOut, summary="Set a preference (the previous value is kept)")
    async def set_preference(key: str, body: PreferenceIn, *, p: Principal = P) -> PreferenceOut:
        return await call(lambda: svc.set_preference(p, _name(key), body.value, space=body.space, sensitivity=body.sensitivity))

    @r.get("/apps", response_model=list[App], summary="Every app (owner only)")
    async def apps(*, p: Principal = P) -> list[App]:
        return await call(lambda: svc.list_apps(p))

    @r.get("/grants", response_model=list[Grant], summary="Grants, optionally of one app (owner only)")
    async def grants(
        app: Annotated[str | None, Query(max_length=NAME_CHARS)] = None, active: bool = False, *, p: Principal = P
    ) -> list[Grant]:
        return await call(lambda: svc.list_grants(p, app, active_only=active))

    @r.post("/grants/{grant_id}/revoke", response_model=Grant, summary="Revoke a grant (owner only)")
    async def revoke(grant_id: str, *, p: Principal = P) -> Grant:
        return await call(lambda: svc.revoke(p, _id(grant_id)))

    @r.get("/consent", response_model=list[ConsentRequest], summary="Pending consent requests (owner only)")
    async def consent(*, p: Principal = P) -> list[ConsentRequest]:
        return await call(lambda: svc.list_consent(p))

    @r.post("/consent", response_model=ConsentRequest, status_code=201, summary="Ask the owner for scopes (apps)")
    async def request_access(body: AccessRequestIn, *, p: Principal = P) -> ConsentRequest:
        return await call(lambda: svc.request_access(p, body.scopes, body.purpose, body.expires_at))

    @r.post("/consent/{request_id}/approve", response_model=Grant, summary="Approve, optionally narrowed (owner only)")
    async def approve(request_id: str, body: ApproveIn, *, p: Principal = P) -> Grant:
        return await call(lambda: svc.approve_consent(p, _id(request_id), scopes=body.scopes, expires_at=body.expires_at))

    @r.post("/consent/{request_id}/deny", response_model=ConsentRequest, summary="Deny (owner only)")
    async def deny(request_id: str, *, p: Principal = P) -> ConsentRequest:
        return await call(lambda: svc.deny_consent(p, _id(request_id)))

    @r.get("/audit", response_model=list[AuditEntry], summary="The audit log, newest last (owner only)")
    async def audit(
        app: Annotated[str | None, Query(max_length=NAME_CHARS)] = None,
        event: Annotated[str | None, Query(max_length=NAME_CHARS)] = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
        *,
        p: Principal = P,
    ) -> list[AuditEntry]:
        return await call(lambda: svc.audit_entries(p, app=app, since=since, event=event, limit=limit))

    @r.get("/audit/verify", response_model=AuditReport, summary="Verify the audit hash chain (owner only)")
    async def verify(*, p: Principal = P) -> AuditReport:
        return await call(lambda: svc.verify_audit(p))

    return r


def _id(value: str) -> str:
    if not 0 < len(value) <= ID_CHARS:
        raise InvalidInput(f"an id has 1 to {ID_CHARS} characters")
    return value


def _name(value: str) -> str:
    if not 0 < len(value) <= NAME_CHARS:
        raise InvalidInput(f"a name has 1 to {NAME_CHARS} characters")
    return value


def install(app: FastAPI, console: Console, resource: str) -> None:
    """Add /v1 (apps, bearer) and /o/{key}/v1 (the owner's console session) to ``app``."""
    svc = console.access.service

    async def app_principal(request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("send an app token or an OAuth access token: Authorization: Bearer …")
        client = request.client.host if request.client else "unknown"
        return await console.call(lambda: svc.authenticate_bearer(token.strip(), resource, client))

    async def owner_principal(request: Request) -> Principal:
        if console.owner(request, request.path_params.get("session_key", "")) is None:
            raise InvalidToken("log in to the console first (the session ended or this is not its address)")
        return OWNER

    for_apps = _router(console, app_principal, "/v1")
    app.include_router(for_apps)
    app.include_router(_router(console, owner_principal, "/o/{session_key}/v1"), include_in_schema=False)
    schema = get_openapi(title="Context Vault", version="1", routes=for_apps.routes, description=OPENAPI_DESCRIPTION)
    schema.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An app token or an OAuth access token of this vault."}
    }
    schema["security"] = [{"bearer": []}]

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(schema)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(InvalidInput(f"{where}: {first.get('msg', 'invalid')}"[:ERROR_CHARS]))
