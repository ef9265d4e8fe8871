"""Logging in and out: the passphrase form, the one-time link of ``ctxvault ui``, and the doors.

A door is a fixed URL an app or the CLI can hand out (``/consent/<id>``, ``/consent/oauth/<pid>``):
it never sees the session (whose cookie lives under the secret ``/o/<key>/``), so it shows the
login form, which continues to the same decision inside the console.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import NEXT, Console, form_or_page, page, redirect
from mcp_server.console.pages import error_page, link_page, logged_out_page
from vault.errors import InvalidToken, LoginThrottled, WrongPassphrase
from vault.unlock import unlock_key


def install(app: FastAPI, console: Console) -> None:
    sessions, cookies = console.sessions, console.cookies

    @app.get("/")
    async def front(request: Request) -> Response:
        return console.login(request)

    @app.get("/login")
    async def login_form(request: Request) -> Response:
        return console.login(request, request.query_params.get("next", ""))

    @app.post("/login")
    async def login(request: Request) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        next_url = form.get("next", "")
        device = request.cookies.get(cookies.device)
        if not sessions.login_ok(device, form.get("token", "")) or device is None:
            return page(error_page("The form expired; reload the page."), 403)
        if not NEXT.fullmatch(next_url):
            return page(error_page("Nothing to continue to."), 400)
        try:
            # Counted before the (slow) passphrase check, refunded by a successful login: no parallel bypass.
            sessions.attempt(device)
            await anyio.to_thread.run_sync(lambda: unlock_key(console.access.service.settings, form.get("passphrase", "")))
        except LoginThrottled as exc:
            throttled = console.login(request, next_url, exc.message, 429)
            throttled.headers["Retry-After"] = str(int(exc.retry_after) + 1)
            return throttled
        except WrongPassphrase:
            return console.login(request, next_url, "Wrong passphrase.", 401)
        response = redirect("/")
        response.headers["Location"] = f"{console.start(response, device)}/{next_url}"
        return response

    @app.get("/login/link")
    async def link(request: Request) -> Response:
        return page(link_page(request.query_params.get("token", "")))

    @app.post("/login/link")
    async def link_login(request: Request) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        try:
            # The link logs in without the passphrase and without the back-off: the owner minted it in the CLI.
            await console.call(lambda: console.access.service.redeem_owner_login(form.get("link", "")))
        except InvalidToken as exc:
            return page(error_page(exc.message), 401)
        response = redirect("/")
        device = request.cookies.get(cookies.device)
        known = device if device is not None and sessions.device(device) == device else None
        response.headers["Location"] = f"{console.start(response, known)}/"
        return response

    @app.post("/o/{key}/logout")
    async def logout(request: Request, key: str) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        owner = console.owner(request, key)
        if owner is None or not owner.form_ok("logout", form.get("token", "")):
            return page(error_page("Log in again to continue."), 403)
        sessions.end(owner.sid)
        response = page(logged_out_page())
        cookies.drop_session(response, key)
        return response

    @app.get("/consent/oauth/{pid}")
    async def oauth_door(request: Request, pid: str) -> Response:
        if sessions.pending(pid) is None:
            return page(error_page("This authorization expired or was decided; start again from the app."), 404)
        return console.login(request, f"oauth/{pid}")

    @app.get("/consent/{request_id}")
    async def request_door(request: Request, request_id: str) -> Response:
        return console.login(request, f"consent/{request_id}")
