"""Apps: every registered app, its grants, and the owner's controls over it.

Revoke one grant or all, rotate the token (the new one is shown once, on the answer page,
never in a URL), remove the app (after a confirmation page), add an app and show the host
config that ``ctxvault connect`` writes (``vault.host_config.render_config``, one rendering
for both surfaces).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import Console, Owner, form_or_page, page, redirect
from mcp_server.console.html import alert, bdi, hidden, notice, post_button, scope_words, table
from mcp_server.console.pages import error_page
from schemas.access import App, AppCreated, Grant
from vault import OWNER
from vault.errors import NotFound, VaultError
from vault.host_config import Host, project_file, render_config

FORM = "apps"
DONE = {
    "revoked": "Revoked: the app loses that grant on its next call.",
    "revoked-all": "Every grant of that app is revoked.",
    "removed": "The app is removed: its token no longer works, its grants are revoked.",
}


def when(stamp: object) -> str:
    return f"{stamp:%Y-%m-%d %H:%M} UTC" if stamp is not None else "never"


def grants_html(base: str, token: str, grants: Sequence[Grant]) -> str:
    if not grants:
        return "<p>No live grant: it sees nothing.</p>"
    rows = [
        (
            "<ul>" + "".join(f"<li>{scope_words(s)}</li>" for s in g.scopes) + "</ul>",
            bdi(g.purpose or ""),
            escape(when(g.expires_at) if g.expires_at else "until revoked"),
            post_button(f"{base}/apps/revoke", token, "Revoke", {"grant": g.id}, danger=True),
        )
        for g in grants
    ]
    return table(["It may", "Purpose", "Expires", ""], rows, caption="Grants")


def app_html(base: str, token: str, app: App, grants: Sequence[Grant]) -> str:
    name = quote(app.name)
    uris = ", ".join(f"<code>{bdi(u)}</code>" for u in app.redirect_uris)
    return (
        f'<section class="card app" aria-label="App {escape(app.name)}"><h2>{bdi(app.name)}</h2>'
        f"<p>Last seen: {escape(when(app.last_seen_at))} · added {escape(when(app.created_at))}"
        f"{' · redirect ' + uris if uris else ''}</p>{grants_html(base, token, grants)}<div class=actions>"
        + (post_button(f"{base}/apps/revoke-all", token, "Revoke all", {"app": app.name}, danger=True) if grants else "")
        + post_button(f"{base}/apps/rotate", token, "Rotate token", {"app": app.name})
        + f'<a href="{escape(base)}/apps/config?app={escape(name)}">Host config</a> · '
        f'<a href="{escape(base)}/apps/remove?app={escape(name)}">Remove…</a></div></section>'
    )


def add_form(base: str, token: str) -> str:
    return (
        f'<section class=card aria-label="Add an app"><h2>Add an app</h2><form method=post action="{escape(base)}/apps/add">'
        f"{hidden({'token': token})}"
        "<label for=app-name>Name <span class=hint>(lowercase letters, digits, . _ -)</span></label>"
        "<input type=text id=app-name name=name required maxlength=64 autocomplete=off>"
        "<label for=app-redirect>Redirect URI <span class=hint>(optional, for an OAuth client)</span></label>"
        "<input type=text id=app-redirect name=redirect_uri maxlength=512 autocomplete=off>"
        "<p><button type=submit>Add</button></p></form></section>"
    )


def configs_html(app: str, home: str, token: str | None) -> str:
    """The config ``ctxvault connect HOST --app APP`` writes, for every host (a project file never gets the token)."""
    out = []
    for host in Host:
        note = " <span class=hint>(a project file: no token; run <code>ctxvault unlock</code> before the host starts)</span>"
        text = render_config(host, app, Path(home), token)
        out.append(
            f"<h3>{escape(host.value)}{note if project_file(host) else ''}</h3>"
            f'<pre tabindex=0 aria-label="{escape(host.value)} config">{escape(text)}</pre>'
            f"<p class=hint>Or run <code>ctxvault connect {escape(host.value)} --app {escape(app)}</code></p>"
        )
    return "".join(out)


def token_page_body(created: AppCreated, home: str, what: str) -> str:
    return (
        f"<p>{escape(what)}</p>"
        "<p role=alert class=warning><strong>Copy this token now: it is shown this once and stored only hashed.</strong> "
        "Anyone holding it acts as this app. It is in the configs below.</p>"
        f"<p><label for=new-token>Token of {bdi(created.app.name)}</label>"
        f'<input type=text id=new-token readonly value="{escape(created.token)}" size=60></p>'
        f"{configs_html(created.app.name, home, created.token)}"
    )


def install(app: FastAPI, console: Console) -> None:
    service, call = console.access.service, console.call
    home = str(service.settings.home)

    async def show(owner: Owner, message: str | None = None, error: str | None = None, status: int = 200) -> Response:
        apps, grants = await call(lambda: (service.list_apps(OWNER), service.list_grants(OWNER, active_only=True)))
        token = owner.token(FORM)
        by_app: dict[str, list[Grant]] = {}
        for g in grants:
            by_app.setdefault(g.app_id, []).append(g)
        listed = "".join(app_html(owner.base, token, a, by_app.get(a.id, [])) for a in apps) or "<p>No app is registered yet.</p>"
        body = notice(message) + alert(error) + listed + add_form(owner.base, token)
        return console.render(owner, "apps", "Apps", body, status)

    async def posted(request: Request, key: str) -> tuple[Owner, dict[str, str]] | Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        owner = console.owner(request, key)
        if owner is None or not owner.form_ok(FORM, form.get("token", "")):
            return page(error_page("Log in again to change apps."), 403)
        return owner, form

    @app.get("/o/{key}/apps")
    async def apps_page(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "apps")
        return await show(owner, DONE.get(request.query_params.get("done", "")))

    @app.post("/o/{key}/apps/revoke")
    async def revoke(request: Request, key: str) -> Response:
        got = await posted(request, key)
        if isinstance(got, Response):
            return got
        owner, form = got
        grant = form.get("grant", "")
        try:
            await call(lambda: service.revoke(OWNER, grant))
        except VaultError as exc:
            return await show(owner, error=exc.message, status=exc.http_status)
        return redirect(f"{owner.base}/apps?done=revoked")

    @app.post("/o/{key}/apps/revoke-all")
    async def revoke_all(request: Request, key: str) -> Response:
        got = await posted(request, key)
        if isinstance(got, Response):
            return got
        owner, form = got
        name = form.get("app", "")
        try:
            await call(lambda: service.revoke_app(OWNER, name))
        except VaultError as exc:
            return await show(owner, error=exc.message, status=exc.http_status)
        return redirect(f"{owner.base}/apps?done=revoked-all")

    @app.post("/o/{key}/apps/rotate")
    async def rotate(request: Request, key: str) -> Response:
        got = await posted(request, key)
        if isinstance(got, Response):
            return got
        owner, form = got
        name = form.get("app", "")
        try:
            created = await call(lambda: service.rotate_app_token(OWNER, name))
        except VaultError as exc:
            return await show(owner, error=exc.message, status=exc.http_status)
        body = token_page_body(created, home, "The old token stopped working now; give the app this one.")
        return console.render(owner, "apps", f"New token for {created.app.name}", body)

    @app.post("/o/{key}/apps/add")
    async def add(request: Request, key: str) -> Response:
        got = await posted(request, key)
        if isinstance(got, Response):
            return got
        owner, form = got
        name = form.get("name", "").strip()
        uri = form.get("redirect_uri", "").strip()
        try:
            created = await call(lambda: service.add_app(OWNER, name, [uri] if uri else None))
        except VaultError as exc:
            return await show(owner, error=exc.message, status=exc.http_status)
        body = token_page_body(created, home, "Added. It sees nothing until you grant it access (or approve what it asks).")
        return console.render(owner, "apps", f"App {created.app.name} added", body)

    @app.get("/o/{key}/apps/config")
    async def config(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "apps")
        name = request.query_params.get("app", "")
        try:
            found = await call(lambda: service.show_app(OWNER, name))
        except NotFound as exc:
            return console.render(owner, "apps", "No such app", alert(exc.message), 404)
        app_name = found.app.name if found.app else name
        body = (
            "<p>What <code>ctxvault connect</code> writes for this app. It holds no token (the vault keeps only its hash): "
            "rotate the token on the Apps page for a config with one, or run <code>ctxvault unlock</code> before the host starts.</p>"
            + configs_html(app_name, home, None)
        )
        return console.render(owner, "apps", f"Host config for {app_name}", body)

    @app.get("/o/{key}/apps/remove")
    async def confirm_remove(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "apps")
        name = request.query_params.get("app", "")
        try:
            found = await call(lambda: service.show_app(OWNER, name))
        except NotFound as exc:
            return console.render(owner, "apps", "No such app", alert(exc.message), 404)
        body = (
            f"<p>Remove <strong>{bdi(name)}</strong>? Its token stops working, its {len(found.grants)} live grant(s) are revoked "
            f"and its {len(found.pending)} waiting request(s) denied. What it wrote stays in the vault; the audit log keeps its history.</p>"
            + post_button(f"{owner.base}/apps/remove", owner.token(FORM), "Remove this app", {"app": name, "confirm": "yes"}, danger=True)
            + f' <a href="{escape(owner.base)}/apps">Cancel</a>'
        )
        return console.render(owner, "apps", f"Remove {name}?", body)

    @app.post("/o/{key}/apps/remove")
    async def remove(request: Request, key: str) -> Response:
        got = await posted(request, key)
        if isinstance(got, Response):
            return got
        owner, form = got
        if form.get("confirm") != "yes":
            return await show(owner, error="Removing an app needs its confirmation page.", status=400)
        name = form.get("app", "")
        try:
            await call(lambda: service.remove_app(OWNER, name))
        except VaultError as exc:
            return await show(owner, error=exc.message, status=exc.http_status)
        return redirect(f"{owner.base}/apps?done=removed")
