"""Inbox: what apps are waiting for the owner to decide (consent requests and OAuth authorizations).

Each request shows the app, each scope in plain words, the purpose, and what the grant would
reach (``VaultService.scope_reach``: counts per space, kind and sensitivity, and the newest items
as the app would see them). Identical requests (same app, scopes and purpose) are one row with a
count; a decision on it settles them all (the core's ``approve_consent``/``deny_consent``).
Approve as asked, narrow (drop scopes, pick spaces, cap sensitivity, set expiry) or deny;
deny in bulk (everything, or one app). OAuth authorizations are decided on their own page
(their answer goes back to the client's browser); the Inbox lists and links them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import cast

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import Console, Owner, form_or_page, page, redirect
from mcp_server.console.decide import EXPIRY
from mcp_server.console.html import alert, bdi, hidden, notice, post_button, scope_words, table
from mcp_server.console.pages import error_page
from schemas.access import ConsentRequest
from schemas.items import SpaceCount
from schemas.reach import ScopeReach
from vault import OWNER
from vault.errors import InvalidInput, VaultError
from vault.filters import SENSITIVITY_ORDER, Sensitivity
from vault.items import utcnow
from vault.owner_sessions import PendingAuthorization

FORM = "inbox"
DONE = {
    "approved": "Approved: the app has this grant from its next call.",
    "denied": "Denied: the app gets nothing new.",
    "denied-all": "Every waiting request was denied.",
    "denied-app": "Every waiting request of that app was denied.",
}
KIND_WORDS = {"memory": "memories", "preference": "preferences", "document": "documents"}


@dataclass(frozen=True, slots=True)
class Group:
    """Identical consent requests (same app, scopes, purpose): one row."""

    requests: tuple[ConsentRequest, ...]
    reach: ScopeReach

    @property
    def first(self) -> ConsentRequest:
        return self.requests[0]


@dataclass(frozen=True, slots=True)
class Waiting:
    """Identical OAuth authorizations (same client and scopes): one row linking the newest."""

    pids: tuple[str, ...]
    pending: PendingAuthorization
    reach: ScopeReach | None


def group_requests(requests: Sequence[ConsentRequest]) -> list[tuple[ConsentRequest, ...]]:
    """Identical requests together, in the order of the oldest of each."""
    groups: dict[tuple[str, tuple[str, ...], str], list[ConsentRequest]] = {}
    for r in requests:
        groups.setdefault((r.app_id, tuple(sorted(r.scopes)), r.purpose), []).append(r)
    return [tuple(g) for g in groups.values()]


def reach_html(reach: ScopeReach) -> str:
    """What the grant would reach: totals, counts per space/kind/sensitivity, and the preview."""
    totals = f"<p>It could see <strong>{reach.seen:,}</strong> item{'s' * (reach.seen != 1)}"
    if reach.changed:
        totals += f", change <strong>{reach.changed:,}</strong>"
    if reach.forgotten:
        totals += f", forget <strong>{reach.forgotten:,}</strong>"
    totals += ".</p>"
    counts = (
        table(
            ["Space", "Kind", "Sensitivity", "Items"],
            [(bdi(c.space), escape(KIND_WORDS[c.kind]), escape(c.sensitivity), f"{c.count:,}") for c in reach.counts],
            caption="What it could see",
        )
        if reach.counts
        else ""
    )
    shown = "".join(
        f"<li><strong>{bdi(p.title)}</strong> <span class=hint>({escape(p.kind)}, {bdi(p.space)}, {escape(p.sensitivity)})</span>"
        f"{'<br>' + bdi(p.snippet) if p.snippet != p.title else ''}</li>"
        for p in reach.preview
    )
    preview = (
        f"<details class=preview><summary>Preview as the app: the newest {len(reach.preview)}</summary><ol>{shown}</ol></details>"
        if shown
        else ""
    )
    return f"<div class=reach>{totals}{counts}{preview}</div>"


def narrow_form(base: str, token: str, group: Group, spaces: Sequence[SpaceCount]) -> str:
    """Approve narrowed: untick scopes, tick spaces, cap sensitivity, set an expiry."""
    r = group.first
    rid = escape(r.id)
    boxes = "".join(f'<label><input type=checkbox name=scope value="{escape(s)}" checked> {scope_words(s)}</label>' for s in r.scopes)
    space_boxes = "".join(f'<label><input type=checkbox name=space value="{escape(s.space)}"> {bdi(s.space)}</label>' for s in spaces)
    sens = "".join(f'<option value="{s}">up to {s}</option>' for s in SENSITIVITY_ORDER)
    asked_expiry = f"as asked (until {r.grant_expires_at:%Y-%m-%d %H:%M} UTC)" if r.grant_expires_at else "until revoked"
    expiry = "".join(f'<option value="{k}">{escape(k)}</option>' for k in EXPIRY)
    return (
        f'<details class=narrow><summary>Narrow, then approve</summary><form method=post action="{escape(base)}/inbox/approve">'
        f"{hidden({'token': token, 'id': r.id, 'mode': 'narrow'})}"
        f"<fieldset><legend>What it may do</legend>{boxes}</fieldset>"
        + (
            f"<fieldset><legend>Only these spaces</legend><p class=hint>None ticked: every space the scopes allow.</p>{space_boxes}</fieldset>"
            if spaces
            else ""
        )
        + f'<label for="sens-{rid}">Sensitivity</label><select id="sens-{rid}" name=sens><option value="">as asked</option>{sens}</select>'
        f'<label for="exp-{rid}">Expires</label><select id="exp-{rid}" name=expires><option value="">{escape(asked_expiry)}</option>{expiry}</select>'
        "<p><button type=submit>Approve narrowed</button></p></form></details>"
    )


def group_html(base: str, token: str, group: Group, spaces: Sequence[SpaceCount]) -> str:
    r = group.first
    name = r.app_name or r.app_id
    count = len(group.requests)
    times = f" <span class=count>asked {count} times</span>" if count > 1 else ""
    scopes = "".join(f"<li>{scope_words(s)}</li>" for s in r.scopes)
    expiry = f"<p>It asks until {r.grant_expires_at:%Y-%m-%d %H:%M} UTC.</p>" if r.grant_expires_at else ""
    actions = (
        post_button(f"{base}/inbox/approve", token, "Approve as asked", {"id": r.id, "mode": "asked"})
        + post_button(f"{base}/inbox/deny", token, "Deny", {"id": r.id}, danger=True)
        + (
            post_button(f"{base}/inbox/deny-all", token, "Deny everything from this app", {"app": r.app_name}, danger=True)
            if r.app_name
            else ""
        )
    )
    return (
        f'<section class="card request" aria-label="Request from {escape(name)}"><h2>{bdi(name)}{times}</h2>'
        f"<p>asks to:</p><ul>{scopes}</ul><p>Purpose: {bdi(r.purpose)}</p>{expiry}"
        f"{reach_html(group.reach)}<div class=actions>{actions}</div>{narrow_form(base, token, group, spaces)}</section>"
    )


def waiting_html(base: str, token: str, w: Waiting) -> str:
    p = w.pending
    count = len(w.pids)
    times = f" <span class=count>asked {count} times</span>" if count > 1 else ""
    if p.asked:
        scopes = "<p>asks to:</p><ul>" + "".join(f"<li>{scope_words(s)}</li>" for s in p.offered) + "</ul>"
    else:
        scopes = "<p>named no scope: it gets <strong>nothing</strong> unless you tick what it may do on its page.</p>"
    return (
        f'<section class="card oauth" aria-label="Authorization for {escape(p.client_name)}"><h2>{bdi(p.client_name)}{times}</h2>'
        f"<p class=hint>OAuth client <code>{bdi(p.client_id)}</code>, answer sent to <code>{bdi(p.redirect_uri)}</code></p>{scopes}"
        f"{reach_html(w.reach) if w.reach is not None else ''}"
        f'<p><a href="{escape(base)}/oauth/{escape(w.pids[-1])}">Decide on its page</a></p>'
        + post_button(f"{base}/inbox/deny-oauth", token, "Deny", {"client": p.client_id}, danger=True)
        + "</section>"
    )


def install(app: FastAPI, console: Console) -> None:
    service, sessions, call = console.access.service, console.sessions, console.call

    def gather(held: list[tuple[str, PendingAuthorization]]) -> tuple[list[Group], list[Waiting], list[SpaceCount]]:
        """One core round: pending requests grouped with their reach, the ``held`` authorizations with theirs, spaces."""
        groups = [Group(g, service.scope_reach(OWNER, list(g[0].scopes))) for g in group_requests(service.list_consent(OWNER))]
        by_client: dict[tuple[str, tuple[str, ...], bool], list[tuple[str, PendingAuthorization]]] = {}
        for pid, p in held:
            by_client.setdefault((p.client_id, p.offered, p.asked), []).append((pid, p))
        waiting = [
            Waiting(
                tuple(pid for pid, _ in ws), ws[-1][1], service.scope_reach(OWNER, list(ws[-1][1].offered)) if ws[-1][1].asked else None
            )
            for ws in by_client.values()
        ]
        return groups, waiting, service.spaces(OWNER)

    async def show(owner: Owner, message: str | None = None, error: str | None = None, status: int = 200) -> Response:
        held = sessions.waiting()  # read on the event loop, where the sessions live
        groups, waiting, spaces = await call(lambda: gather(held))
        token = owner.token(FORM)
        parts = [notice(message), alert(error)]
        if groups or waiting:
            total = sum(len(g.requests) for g in groups) + sum(len(w.pids) for w in waiting)
            parts.append(
                f"<p>{total} request{'s' * (total != 1)} waiting for your decision. Nothing is lent until you approve.</p>"
                + post_button(f"{owner.base}/inbox/deny-all", token, "Deny all", danger=True)
            )
        else:
            parts.append("<p>No app is waiting for your decision.</p>")
        parts += [group_html(owner.base, token, g, spaces) for g in groups]
        if waiting:
            parts.append("<h2 class=section>OAuth authorizations</h2>")
            parts += [waiting_html(owner.base, token, w) for w in waiting]
        return console.render(owner, "", "Inbox", "".join(parts), status)

    @app.get("/o/{key}/")
    async def inbox(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "")
        return await show(owner, DONE.get(request.query_params.get("done", "")))

    async def posted(request: Request, key: str) -> tuple[Owner, dict[str, str], dict[str, list[str]]] | Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, multi = got
        owner = console.owner(request, key)
        if owner is None or not owner.form_ok(FORM, form.get("token", "")):
            return page(error_page("Log in again to decide."), 403)
        return owner, form, multi

    @app.post("/o/{key}/inbox/approve")
    async def approve(request: Request, key: str) -> Response:
        got = await posted(request, key)
        if isinstance(got, Response):
            return got
        owner, form, multi = got
        rid = form.get("id", "")
        try:
            if form.get("mode") == "narrow":
                chosen = multi.get("scope", [])
                sens = form.get("sens") or None
                expiry = form.get("expires", "")
                if not chosen:
                    raise InvalidInput("tick at least one scope to allow, or deny")
                if sens is not None and sens not in SENSITIVITY_ORDER:
                    raise InvalidInput("sensitivity must be low, medium or high")
                if expiry and expiry not in EXPIRY:
                    raise InvalidInput(f"expires must be one of {', '.join(EXPIRY)}, or empty as asked")
                stamp = utcnow()
                expires_at = stamp + EXPIRY[expiry] if expiry else None
                await call(
                    lambda: service.approve_consent(
                        OWNER, rid, scopes=chosen, spaces=multi.get("space") or None,
                        max_sensitivity=cast(Sensitivity | None, sens), expires_at=expires_at, now=stamp,
                    )
                )  # fmt: skip
            else:
                await call(lambda: service.approve_consent(OWNER, rid))
        except VaultError as exc:
            return await show(owner, error=exc.message, status=exc.http_status)
        return redirect(f"{owner.base}/?done=approved")

    @app.post("/o/{key}/inbox/deny")
    async def deny(request: Request, key: str) -> Response:
        got = await posted(request, key)
        if isinstance(got, Response):
            return got
        owner, form, _ = got
        rid = form.get("id", "")
        try:
            await call(lambda: service.deny_consent(OWNER, rid))
        except VaultError as exc:
            return await show(owner, error=exc.message, status=exc.http_status)
        return redirect(f"{owner.base}/?done=denied")

    @app.post("/o/{key}/inbox/deny-all")
    async def deny_all(request: Request, key: str) -> Response:
        got = await posted(request, key)
        if isinstance(got, Response):
            return got
        owner, form, _ = got
        app_name = form.get("app") or None
        try:
            await call(lambda: service.deny_all_consent(OWNER, app_name))
        except VaultError as exc:
            return await show(owner, error=exc.message, status=exc.http_status)
        if app_name is None:
            sessions.drop()
        return redirect(f"{owner.base}/?done={'denied-app' if app_name else 'denied-all'}")

    @app.post("/o/{key}/inbox/deny-oauth")
    async def deny_oauth(request: Request, key: str) -> Response:
        got = await posted(request, key)
        if isinstance(got, Response):
            return got
        owner, form, _ = got
        client = form.get("client", "")
        if client:
            sessions.drop(client)
        return redirect(f"{owner.base}/?done=denied")
