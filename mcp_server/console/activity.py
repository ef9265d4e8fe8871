"""Activity: the audit log as the owner's privacy report: per app what it saw and was refused, a filterable timeline.

GET only: the filters are a plain form (``?app=&event=&since=&until=``, dates in UTC), pages go back by
sequence number (``before``), downloads carry the same filters. Everything an entry holds came from an
app (names, purposes, what was refused) and is escaped; CSV cells are neutralised against formula
injection (``csv_cell``). The chain is verified on every view and its state shown at the top.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import ValidationError

from mcp_server.console.context import Console, Owner
from mcp_server.console.html import alert, bdi, security_headers, table
from schemas.access import AuditEntry
from schemas.activity import ActivityPage, ActivityQuery, AppActivity
from vault import OWNER
from vault.errors import AuditTampered, NotFound

# The event types in plain words; an unknown one is shown as written.
EVENT_WORDS = {
    "disclose": "saw items",
    "deny": "was refused",
    "write": "wrote",
    "forget": "forgot an item",
    "purge": "purged forgotten items",
    "grant": "access granted",
    "revoke": "access revoked",
    "consent_request": "asked for access",
    "consent_approve": "request approved",
    "consent_deny": "request denied",
    "app_add": "app added",
    "app_remove": "app removed",
    "app_rotate_token": "token rotated",
    "export": "export",
    "lock": "locked",
}
FILTERS = ("app", "event", "since", "until")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("seq", "at", "app_id", "app", "principal", "event", "scope", "purpose", "item_ids", "detail", "hash")
DETAIL_CHARS = 200


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet evaluates: text starting like a formula gets a leading ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _day(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: use a date such as 2026-01-31") from None


def parse_query(params: dict[str, str], paged: bool = True) -> ActivityQuery:
    """The filters of a request (``until`` is the last day included); ValueError names what is wrong."""
    since, until = _day(params.get("since", ""), "From"), _day(params.get("until", ""), "To")
    before = params.get("before", "") if paged else ""
    if before and not before.isdigit():
        raise ValueError("the page link is damaged; start from the newest entries")
    try:
        return ActivityQuery(
            app=params.get("app") or None,
            event=params.get("event") or None,
            since=datetime.combine(since, time(), UTC) if since else None,
            until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
            before=int(before) if before else None,
        )
    except ValidationError:
        raise ValueError("a filter is too long or out of range") from None


def when(at: datetime) -> str:
    return f'<time datetime="{escape(at.isoformat())}">{escape(at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))} UTC</time>'


def _names(report: list[AppActivity]) -> dict[str, str]:
    return {a.app_id: a.name for a in report}


def _who(entry: AuditEntry, names: dict[str, str]) -> str:
    if entry.principal == "owner":
        target = f" → {bdi(names.get(entry.app_id, entry.app_id))}" if entry.app_id else ""
        return f"You{target}"
    if entry.app_id:
        return bdi(names.get(entry.app_id, entry.app_id))
    return bdi(entry.principal)


def _detail(entry: AuditEntry) -> str:
    shown = {k: v for k, v in entry.detail.items() if k not in ("app_id",)}
    if entry.event == "deny" and "what" in shown:
        what = str(shown.pop("what"))
        rest = f" <span class=hint>{escape(_compact(shown))}</span>" if shown else ""
        return f"tried to {bdi(what)}{rest}"
    return f"<span class=hint>{bdi(_compact(shown))}</span>" if shown else ""


def _compact(detail: dict[str, object]) -> str:
    text = ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}" for k, v in detail.items())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def _items(owner: Owner, ids: list[str]) -> str:
    links = [f'<a href="{escape(owner.base)}/vault/item/{escape(i, quote=True)}"><code>{escape(i)}</code></a>' for i in ids[:10]]
    more = f" <span class=hint>and {len(ids) - 10} more</span>" if len(ids) > 10 else ""
    return " ".join(links) + more


def _chain(state: int | AuditTampered) -> str:
    if isinstance(state, AuditTampered):
        return (
            f"<p role=alert class=broken><strong>The audit log is broken at entry {state.seq}</strong>: {escape(state.message)}. "
            "Entries from there on cannot be trusted; run <code>ctxvault audit verify</code>.</p>"
        )
    return f"<p class=verified role=status>Chain verified: all {state:,} entries are intact and in order.</p>"


def _report(owner: Owner, report: list[AppActivity]) -> str:
    if not report:
        return "<p>No app has done anything yet.</p>"
    base = escape(owner.base)
    rows = [
        (
            f"<strong>{bdi(a.name)}</strong>" + (" <span class=hint>(removed)</span>" if a.removed else ""),
            when(a.last_access) if a.last_access else "never",
            f"{a.items_seen:,}",
            f"<strong class=denied>{a.denials:,}</strong>" if a.denials else "0",
            f"{a.writes:,}",
            f'<a href="{base}/activity/app/{escape(a.app_id, quote=True)}">What {bdi(a.name)} saw</a> · '
            f'<a href="{base}/activity?{escape(urlencode({"app": a.app_id}))}">Its timeline</a>',
        )
        for a in report
    ]
    return table(["App", "Last access", "Items seen", "Denials", "Writes", ""], rows, caption="Per app")


def _filters(owner: Owner, params: dict[str, str], report: list[AppActivity], events: list[str]) -> str:
    chosen = params.get("app", "")
    apps = "".join(
        f'<option value="{escape(a.app_id)}"{" selected" if chosen in (a.app_id, a.name) else ""}>{escape(a.name)}</option>' for a in report
    )
    kinds = "".join(
        f'<option value="{escape(e)}"{" selected" if params.get("event") == e else ""}>{escape(EVENT_WORDS.get(e, e))}</option>'
        for e in events
    )
    return (
        f'<form method=get action="{escape(owner.base)}/activity" class=filters role=search aria-label="Filter the timeline">'
        f"<label for=f-app>App<br><select id=f-app name=app><option value=''>every app</option>{apps}</select></label>"
        f"<label for=f-event>Event<br><select id=f-event name=event><option value=''>every event</option>{kinds}</select></label>"
        f'<label for=f-since>From (UTC)<br><input id=f-since type=date name=since value="{escape(params.get("since", ""))}"></label>'
        f'<label for=f-until>To (UTC)<br><input id=f-until type=date name=until value="{escape(params.get("until", ""))}"></label>'
        f'<button type=submit>Show</button> <a href="{escape(owner.base)}/activity">Clear</a></form>'
    )


def _timeline(owner: Owner, got: ActivityPage, names: dict[str, str], filters: dict[str, str], before: str) -> str:
    if not got.entries:
        return "<p>No entry matches these filters.</p>"
    rows = [
        (
            f"{e.seq}",
            when(e.at),
            _who(e, names),
            f"<span class=event-{escape(e.event)}>{escape(EVENT_WORDS.get(e.event, e.event))}</span>",
            f"<code>{bdi(e.scope)}</code>" if e.scope else "",
            _items(owner, e.item_ids),
            (f"purpose: {bdi(e.purpose)} " if e.purpose else "") + _detail(e),
        )
        for e in got.entries
    ]
    first, last = got.entries[0].seq, got.entries[-1].seq
    pages = []
    if before:
        pages.append(f'<a href="{escape(owner.base)}/activity?{escape(urlencode(filters))}">Newest entries</a>')
    if got.next_before is not None:
        older = urlencode({**filters, "before": str(got.next_before)})
        pages.append(f'<a href="{escape(owner.base)}/activity?{escape(older)}" rel=next>Older entries</a>')
    nav = f'<nav aria-label="Timeline pages" class=pages>{" · ".join(pages)}</nav>' if pages else ""
    caption = f"Timeline, newest first: entries {last}–{first} ({got.total:,} match)"
    return table(["#", "When", "Who", "What", "Scope", "Items", "Detail"], rows, caption=caption) + nav


def install(app: FastAPI, console: Console) -> None:
    service = console.access.service

    def chain_state() -> int | AuditTampered:
        try:
            return service.verify_audit(OWNER).entries
        except AuditTampered as exc:
            return exc

    @app.get("/o/{key}/activity")
    async def activity(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "activity")
        params = {k: v for k, v in request.query_params.items() if k in (*FILTERS, "before")}
        filters = {k: v for k, v in params.items() if k in FILTERS and v}
        error, status = None, 200
        try:
            query = parse_query(params)
        except ValueError as exc:
            error, status, query = str(exc), 400, ActivityQuery()

        def load() -> tuple[int | AuditTampered, list[AppActivity], ActivityPage | NotFound]:
            report = service.app_activity(OWNER)
            try:
                got: ActivityPage | NotFound = service.activity(OWNER, query)
            except NotFound as exc:
                got = exc
            return chain_state(), report, got

        chain, report, got = await console.call(load)
        if isinstance(got, NotFound):
            error, status, got = got.message, 404, await console.call(lambda: service.activity(OWNER, ActivityQuery()))
        downloads = urlencode(filters)
        body = (
            _chain(chain) + "<p class=hint>Like a phone's app privacy report: what each app saw, when, and what it was refused. "
            "Every disclosure, write, denial and change of access is in this log, hash-chained inside the encrypted vault.</p>"
            + "<h2>Apps</h2>"
            + _report(owner, report)
            + "<h2>Timeline</h2>"
            + alert(error)
            + _filters(owner, params, report, got.events)
            + f'<p>Download these entries: <a href="{escape(owner.base)}/activity/export.json?{escape(downloads)}" download>JSON</a> · '
            f'<a href="{escape(owner.base)}/activity/export.csv?{escape(downloads)}" download>CSV</a></p>'
            + _timeline(owner, got, _names(report), filters, params.get("before", ""))
        )
        return console.render(owner, "activity", "Activity", body, status)

    @app.get("/o/{key}/activity/app/{app_id}")
    async def saw(request: Request, key: str, app_id: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "activity")
        try:
            summary, seen = await console.call(lambda: service.app_disclosures(OWNER, app_id))
        except NotFound as exc:
            return console.render(owner, "activity", "Not found", alert(exc.message), 404)
        name = summary.name if summary else app_id
        base = escape(owner.base)
        rows = [
            (
                f'<a href="{base}/vault/item/{escape(d.item_id, quote=True)}">{bdi(d.title) if d.title else f"<code>{escape(d.item_id)}</code>"}</a>'
                + (" <span class=hint>(forgotten)</span>" if d.forgotten else "")
                + ("" if d.kind else " <span class=hint>(purged: no longer in the vault)</span>"),
                escape(d.kind or "—"),
                bdi(d.space or "—"),
                f"{d.times:,}",
                when(d.first),
                when(d.last),
            )
            for d in seen
        ]
        facts = (
            f"<p>Last access: {when(summary.last_access) if summary and summary.last_access else 'never'} · "
            f"{summary.items_seen if summary else 0:,} items seen · {summary.denials if summary else 0:,} denials</p>"
        )
        listing = (
            table(["Item", "Kind", "Space", "Times", "First seen", "Last seen"], rows, caption=f"Items disclosed to {name}")
            if rows
            else "<p>This app has not been shown any item.</p>"
        )
        links = (
            f'<p><a href="{base}/activity?{escape(urlencode({"app": summary.app_id if summary else app_id}))}">Its timeline</a> · '
            f'<a href="{base}/activity">All activity</a></p>'
        )
        return console.render(owner, "activity", f"What {name} saw", facts + listing + links)

    @app.get("/o/{key}/activity/export.{fmt}")
    async def export(request: Request, key: str, fmt: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "activity")
        if fmt not in ("json", "csv"):
            return console.render(owner, "activity", "Not found", alert("Downloads are JSON or CSV."), 404)
        params = {k: v for k, v in request.query_params.items() if k in FILTERS}
        try:
            query = parse_query(params, paged=False)
            entries, report = await console.call(lambda: (service.activity_export(OWNER, query), service.app_activity(OWNER)))
        except (ValueError, NotFound) as exc:
            message = exc.message if isinstance(exc, NotFound) else str(exc)
            return console.render(owner, "activity", "Cannot download", alert(message), 400)
        names = _names(report)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        headers = {**security_headers(), "Content-Disposition": f'attachment; filename="ctxvault-activity-{stamp}.{fmt}"'}
        if fmt == "json":
            data = json.dumps([e.model_dump(mode="json") for e in entries], ensure_ascii=False, indent=1)
            return Response(data, media_type="application/json", headers=headers)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for e in entries:
            row = (e.seq, e.at.isoformat(), e.app_id, names.get(e.app_id or "", ""), e.principal, e.event, e.scope, e.purpose,
                   " ".join(e.item_ids), json.dumps(e.detail, ensure_ascii=False), e.hash)  # fmt: skip
            writer.writerow([csv_cell(v) for v in row])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
