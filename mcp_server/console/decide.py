"""Decisions inside the console: an OAuth authorization (narrowed) and a consent request made over MCP.

Every decision is a core call; this module parses the form, calls, and renders. The OAuth form
names a server-side pending authorization, never the scopes; a decision is taken once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, cast

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import Console, Owner, form_or_page, origin_of, page
from mcp_server.console.pages import consent_page, decided_page, error_page, request_page
from vault import OWNER
from vault.errors import InvalidInput, NotFound, VaultError
from vault.filters import SENSITIVITY_ORDER, Sensitivity
from vault.items import utcnow
from vault.owner_sessions import PendingAuthorization

EXPIRY = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "30d": timedelta(days=30)}
GONE = "This authorization expired or was decided; start again from the app."


def install(app: FastAPI, console: Console) -> None:
    access, sessions, call = console.access, console.sessions, console.call

    async def show_pending(owner: Owner, pid: str, pending: PendingAuthorization, error: str | None = None, status: int = 200) -> Response:
        spaces = await call(lambda: access.service.spaces(OWNER))
        html = consent_page(
            owner.base, owner.token(f"oauth:{pid}"), pid, pending.client_name, pending.client_id, pending.redirect_uri,
            pending.offered, pending.asked, spaces, error,
        )  # fmt: skip
        return page(html, status, [origin_of(pending.redirect_uri)])

    @app.get("/o/{key}/oauth/{pid}")
    async def oauth_page(request: Request, key: str, pid: str) -> Response:
        pending = sessions.pending(pid)
        if pending is None:
            return page(error_page(GONE), 404)
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, f"oauth/{pid}")
        return await show_pending(owner, pid, pending)

    @app.post("/o/{key}/oauth/{pid}")
    async def oauth_decide(request: Request, key: str, pid: str) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, multi = got
        owner = console.owner(request, key)
        if owner is None or not owner.form_ok(f"oauth:{pid}", form.get("token", "")):
            return page(error_page("Log in again to decide."), 403)
        # Taken before any await: a second decision posted meanwhile finds nothing (one grant, one code).
        pending = sessions.take(pid)
        if pending is None:
            return page(error_page(GONE), 404)
        back = {"iss": console.issuer, **({"state": pending.state} if pending.state else {})}
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
                return await show_pending(owner, pid, pending, exc.message, 400)
            except VaultError as exc:
                # The owner's browser gets a page, never the API's JSON (e.g. a client that is gone).
                sessions.settle(pid)
                return page(error_page(f"{exc.message}; start again from the app."), exc.http_status)
            params = {"code": approved.code, **back}
        else:
            params = {"error": "access_denied", **back}
        sessions.settle(pid)
        return console.to_client(pending.redirect_uri, params)

    # A request made over MCP (request_access): the link the app shows leads here through the login door.
    @app.get("/o/{key}/consent/{request_id}")
    async def consent_request(request: Request, key: str, request_id: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, f"consent/{request_id}")
        try:
            asked = await call(lambda: access.service.consent_status(OWNER, request_id))
        except NotFound:
            return page(error_page("No such consent request."), 404)
        token = owner.token(f"consent:{request_id}")
        return page(request_page(token, asked.app_name or asked.app_id, asked.scopes, asked.purpose, asked.status))

    @app.post("/o/{key}/consent/{request_id}")
    async def consent_decide(request: Request, key: str, request_id: str) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        owner = console.owner(request, key)
        if owner is None or not owner.form_ok(f"consent:{request_id}", form.get("token", "")):
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
