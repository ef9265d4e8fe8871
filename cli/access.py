"""Apps, grants, consent requests and the audit log: the owner's access controls."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from cli.context import JsonFlag, full_id, service
from cli.output import DataTable, console, data_table, print_json, render, shown, styled
from schemas.access import AccessSummary, App, ConsentRequest, Grant
from vault import OWNER
from vault.errors import InvalidInput

apps_app = typer.Typer(help="Registered apps: each starts with no access.", no_args_is_help=True)
grants_app = typer.Typer(help="Grants: scopes lent to apps.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent requests from apps, waiting for your decision.", no_args_is_help=True)
audit_app = typer.Typer(invoke_without_command=True)

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

ExpiresOpt = Annotated[
    str | None, typer.Option("--expires", help="When the grant ends: a duration (30m, 12h, 7d, 2w) or an ISO date/time.")
]


def register(app: typer.Typer) -> None:
    app.add_typer(apps_app, name="apps")
    app.command("grant")(grant)
    app.add_typer(grants_app, name="grants")
    app.add_typer(consent_app, name="consent")
    app.add_typer(audit_app, name="audit")


def _when(value: str | None, *, future: bool, option: str) -> datetime | None:
    """A duration from now (``7d``) or an ISO date/time, as an aware UTC datetime."""
    if value is None:
        return None
    now = datetime.now(UTC)
    if m := _DURATION.fullmatch(value.strip()):
        delta = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        return now + delta if future else now - delta
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option}: expected a duration such as 7d or an ISO date/time, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _short(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M") if dt else "-"


def _grants_table(grants: list[Grant]) -> DataTable:
    rows = []
    for g in grants:
        state = "active" if g.active else ("revoked" if g.revoked_at else "expired")
        rows.append([g.id, g.app_name or g.app_id, g.scopes, g.purpose or "", _short(g.expires_at), state])
    return data_table(("id", "app", "scopes", "purpose", "expires", "state"), rows)


def _requests_table(requests: list[ConsentRequest]) -> DataTable:
    rows = [[r.id, r.app_name or r.app_id, r.scopes, r.purpose, _short(r.created_at), r.status] for r in requests]
    return data_table(("id", "app", "scopes", "purpose", "asked", "status"), rows)


def _print_app(app: App, token: str | None = None) -> None:
    console.print(f"{shown(app.name)}  {app.id}  created {_short(app.created_at)}  last seen {_short(app.last_seen_at)}")
    if token is not None:
        console.print(f"token: {token}")
        console.print(styled(("Shown once; the vault keeps only its hash. Give it to the app as CTXVAULT_APP_TOKEN.", "dim")))


# -- apps ------------------------------------------------------------------------------------


@apps_app.command("add")
def apps_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A short name, e.g. claude-desktop.")],
    redirect_uri: Annotated[list[str] | None, typer.Option("--redirect-uri", help="OAuth redirect URI (repeatable).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Register an app; it can see nothing until you grant it scopes. Prints its token once.

    Example: ctxvault apps add claude-desktop --json
    """
    created = service(ctx).add_app(OWNER, name, redirect_uris=redirect_uri)
    if json_out:
        print_json(created)
    else:
        _print_app(created.app, created.token)


@apps_app.command("list")
def apps_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List registered apps.

    Example: ctxvault apps list --json
    """
    apps = service(ctx).list_apps(OWNER)
    if json_out:
        print_json(apps)
        return
    if not apps:
        console.print("no apps; register one with `ctxvault apps add NAME`")
    for a in apps:
        _print_app(a)


def _print_summary(summary: AccessSummary) -> None:
    if summary.app is not None:
        _print_app(summary.app)
    console.print("scopes: " + (shown(" ".join(summary.scopes)) if summary.scopes else "none"))
    if summary.grants:
        console.print(_grants_table(summary.grants))
    if summary.pending:
        console.print(_requests_table(summary.pending))


@apps_app.command("show")
def apps_show(ctx: typer.Context, name: str, json_out: JsonFlag = False) -> None:
    """Show an app with its live grants and pending consent requests.

    Example: ctxvault apps show claude-desktop
    """
    summary = service(ctx).show_app(OWNER, name)
    if json_out:
        print_json(summary)
    else:
        _print_summary(summary)


@apps_app.command("rotate-token")
def apps_rotate_token(ctx: typer.Context, name: str, json_out: JsonFlag = False) -> None:
    """Give an app a new token; the old one stops working at once.

    Example: ctxvault apps rotate-token claude-desktop --json
    """
    created = service(ctx).rotate_app_token(OWNER, name)
    if json_out:
        print_json(created)
    else:
        _print_app(created.app, created.token)


@apps_app.command("remove")
def apps_remove(ctx: typer.Context, name: str, json_out: JsonFlag = False) -> None:
    """Unregister an app: its token stops working and all its grants are revoked.

    Example: ctxvault apps remove old-agent
    """
    app = service(ctx).remove_app(OWNER, name)
    render(app, json_out, f"removed {app.name} ({app.id})")


# -- grants ----------------------------------------------------------------------------------


def grant(
    ctx: typer.Context,
    app: Annotated[str, typer.Argument(help="The app's name or id.")],
    scopes: Annotated[list[str], typer.Argument(help="Scopes such as read:memories#space=work (see docs/consent.md).")],
    purpose: Annotated[str | None, typer.Option("--purpose", help="Why the app gets this access.")] = None,
    expires: ExpiresOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Lend scopes to an app directly, without a consent request.

    Example: ctxvault grant claude-desktop "search:memories#space=work" "read:preferences" --expires 30d
    """
    created = service(ctx).grant(OWNER, app, scopes, purpose=purpose, expires_at=_when(expires, future=True, option="--expires"))
    render(created, json_out, f"granted {created.id}: " + shown(" ".join(created.scopes)))


@grants_app.command("list")
def grants_list(
    ctx: typer.Context,
    app: Annotated[str | None, typer.Option("--app", help="Only this app's grants.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only grants that are neither revoked nor expired.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """List grants, oldest first.

    Example: ctxvault grants list --app claude-desktop --active
    """
    grants = service(ctx).list_grants(OWNER, app=app, active_only=active)
    if json_out:
        print_json(grants)
    elif not grants:
        console.print("no grants")
    else:
        console.print(_grants_table(grants))


@grants_app.command("revoke")
def grants_revoke(
    ctx: typer.Context,
    grant_id: Annotated[str | None, typer.Argument(help="The grant to revoke: its id or a unique prefix.")] = None,
    app: Annotated[str | None, typer.Option("--app", help="Revoke every grant of this app instead.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Revoke a grant (or all of an app's); the app loses the access on its next call.

    Example: ctxvault grants revoke --app claude-desktop
    """
    if (grant_id is None) == (app is None):
        raise typer.BadParameter("give either a GRANT_ID or --app APP")
    svc = service(ctx)
    revoked = [svc.revoke(OWNER, full_id(ctx, "grant", grant_id))] if grant_id is not None else svc.revoke_app(OWNER, app or "")
    render(revoked, json_out, f"revoked {len(revoked)} grant(s)" + "".join(f"\n  {g.id}" for g in revoked))


# -- consent ---------------------------------------------------------------------------------


@consent_app.command("list")
def consent_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include approved, denied and expired requests.")] = False,
    app: Annotated[str | None, typer.Option("--app", help="Only this app's requests.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List consent requests (pending ones unless --all).

    Example: ctxvault consent list --json
    """
    requests = service(ctx).list_consent(OWNER, status=None if all_ else "pending", app=app)
    if json_out:
        print_json(requests)
    elif not requests:
        console.print("no pending consent requests" if not all_ else "no consent requests")
    else:
        console.print(_requests_table(requests))


@consent_app.command("approve")
def consent_approve(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The consent request's id or a unique prefix (e.g. 01M8VYAR).")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="Approve only this scope (repeatable); each must be within the request.")
    ] = None,
    expires: ExpiresOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Approve a pending request, optionally narrowed to fewer scopes or a shorter time.

    Example: ctxvault consent approve 01JA0CQ3X4 --scope "read:memories#space=work" --expires 7d
    """
    created = service(ctx).approve_consent(
        OWNER, full_id(ctx, "consent request", request_id), scopes=scope, expires_at=_when(expires, future=True, option="--expires")
    )
    render(created, json_out, f"approved: grant {created.id}: " + shown(" ".join(created.scopes)))


@consent_app.command("deny")
def consent_deny(
    ctx: typer.Context,
    request_id: Annotated[str | None, typer.Argument(help="The consent request's id or a unique prefix (e.g. 01M8VYAR).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Deny every pending request (of --app, if given).")] = False,
    app: Annotated[str | None, typer.Option("--app", help="With --all: only this app's requests.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --all: do not ask for confirmation.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Deny a pending request, or all of them with --all; the app keeps only what it had before.

    Example: ctxvault consent deny --all --app flooding-agent --yes
    """
    if (request_id is None) == (not all_):
        raise typer.BadParameter("give either a REQUEST_ID or --all")
    if app is not None and not all_:
        raise typer.BadParameter("--app goes with --all")
    svc = service(ctx)
    if request_id is not None:
        decided = svc.deny_consent(OWNER, full_id(ctx, "consent request", request_id))
        render(decided, json_out, f"denied {decided.id}")
        return
    pending = svc.list_consent(OWNER, status="pending", app=app)
    whose = f" of {shown(app)}" if app else ""
    if pending and not yes and not typer.confirm(f"Deny {len(pending)} pending consent request(s){whose}?", default=False):
        raise typer.Exit(1)
    denied = svc.deny_all_consent(OWNER, app=app)
    render(denied, json_out, f"denied {len(denied)} pending consent request(s){whose}")


# -- audit -----------------------------------------------------------------------------------


@audit_app.callback()
def audit(
    ctx: typer.Context,
    app: Annotated[str | None, typer.Option("--app", help="Only entries about this app (name or id).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only entries since: a duration (24h, 7d) or an ISO date.")] = None,
    event: Annotated[str | None, typer.Option("--event", help="Only this event: disclose, write, deny, grant, revoke, …")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the newest N entries.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show the audit log: disclosures, writes, denials, consent decisions and grant changes.

    Example: ctxvault audit --app claude-desktop --since 7d --json
    """
    if ctx.invoked_subcommand is not None:
        return
    entries = service(ctx).audit_entries(OWNER, app=app, since=_when(since, future=False, option="--since"), event=event, limit=limit)
    if json_out:
        print_json(entries)
        return
    rows = [
        [
            str(e.seq),
            _short(e.at),
            e.principal,
            e.event,
            str(len(e.item_ids)),
            e.scope or "",
            ", ".join(f"{k}={v}" for k, v in e.detail.items()),
        ]
        for e in entries
    ]
    console.print(data_table(("seq", "at", "who", "event", "items", "scope", "detail"), rows))


@audit_app.command("verify")
def audit_verify(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Check the audit log's hash chain; exits 15 at the first edited, removed or reordered entry.

    Example: ctxvault audit verify
    """
    report = service(ctx).verify_audit(OWNER)
    render(report, json_out, f"audit log intact: {report.entries} entries, head {report.head[:16] or '-'}")
