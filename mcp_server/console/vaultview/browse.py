"""The Vault list: filters and search in a GET form, paginated, the forgotten items, and the add forms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from html import escape
from typing import Literal, cast
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import Console, Owner, form_or_page, redirect
from mcp_server.console.html import alert, hidden, table
from mcp_server.console.vaultview.render import (
    KINDS,
    SENSITIVITIES,
    forbidden,
    item_label,
    item_url,
    notice_for,
    parse_date,
    parse_sensitivity,
    parse_space,
    parse_tags,
    refused,
    select,
    sensitivity_select,
    shown,
    space_input,
    tags_text,
    text_input,
    when,
)
from mcp_server.console.vaultview.upload import upload_form
from schemas.items import Item, Kind, MemoryIn, SearchHit, SearchQuery, Sensitivity
from schemas.limits import QUERY_CHARS
from vault import OWNER
from vault.errors import InvalidInput, VaultError
from vault.service import VaultService

PAGE_SIZE = 20
SEARCH_MAX = 200  # the core's largest search page: a query's results stop at page SEARCH_MAX / PAGE_SIZE
FORGOTTEN_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Filters:
    """The list's GET form, as read from the URL (each value checked; a bad one is an alert, not a 500)."""

    q: str = ""
    kind: str = ""
    space: str = ""
    tag: str = ""
    sensitivity: str = ""
    since: str = ""
    page: int = 1

    @classmethod
    def read(cls, query: dict[str, str]) -> tuple[Filters, str | None]:
        raw = {k: query.get(k, "").strip() for k in ("q", "kind", "space", "tag", "sensitivity", "since")}
        page = query.get("page", "1")
        problem = None
        if len(raw["q"]) > QUERY_CHARS:
            raw["q"], problem = raw["q"][:QUERY_CHARS], f"the search is cut to {QUERY_CHARS} characters"
        if raw["kind"] not in ("", *KINDS):
            raw["kind"], problem = "", "unknown kind: showing every kind"
        if raw["sensitivity"] not in ("", *SENSITIVITIES):
            raw["sensitivity"], problem = "", "unknown sensitivity: showing every level"
        for name, value in (("space", raw["space"]), ("tag", raw["tag"])):
            try:
                parse_tags(value) if name == "tag" else parse_space(value) if value else None
            except InvalidInput as exc:
                raw[name], problem = "", exc.message
        try:
            parse_date(raw["since"])
        except InvalidInput as exc:
            raw["since"], problem = "", exc.message
        number = int(page) if page.isdigit() and 0 < int(page) <= 10_000 else 1
        return cls(**raw, page=number), problem

    def params(self, **change: str | int) -> str:
        fields = {"q": self.q, "kind": self.kind, "space": self.space, "tag": self.tag, "sensitivity": self.sensitivity,
                  "since": self.since, "page": str(self.page)}  # fmt: skip
        fields.update({k: str(v) for k, v in change.items()})
        return urlencode({k: v for k, v in fields.items() if v and not (k == "page" and v == "1")})

    @property
    def since_at(self) -> datetime | None:
        day = parse_date(self.since)
        return None if day is None else datetime.combine(day, time(), UTC)


@dataclass(frozen=True, slots=True)
class Listing:
    rows: list[tuple[str, ...]]
    total: int | None  # None for a search: it has a next page or not
    has_next: bool


def _item_row(owner: Owner, item: Item) -> tuple[str, ...]:
    return (
        escape(item.kind),
        f'<a href="{escape(item_url(owner, item.id))}">{item_label(item)}</a>',
        shown(item.space),
        tags_text(item.tags),
        escape(item.sensitivity),
        when(item.provenance.updated_at),
    )


def _hit_row(owner: Owner, hit: SearchHit) -> tuple[str, ...]:
    if hit.kind == "document":
        words = f"{shown(hit.title or hit.text, 80)}<br><span class=hint>{shown(hit.snippet, 200)}</span>"
    elif hit.kind == "preference" and hit.key:
        words = shown(f"{hit.key}: {hit.text}", 160)
    else:
        words = shown(hit.text, 160)
    return (
        escape(hit.kind),
        f'<a href="{escape(item_url(owner, hit.item_id))}">{words}</a>',
        shown(hit.space),
        tags_text(hit.tags),
        escape(hit.sensitivity),
        when(hit.provenance.updated_at),
    )


def _listing(service: VaultService, owner: Owner, f: Filters) -> Listing:
    kinds = [cast(Kind, f.kind)] if f.kind else None
    spaces = [f.space] if f.space else None
    tags = parse_tags(f.tag) or None
    level = cast(Sensitivity, f.sensitivity) if f.sensitivity else None
    start = (f.page - 1) * PAGE_SIZE
    if f.q:
        if start >= SEARCH_MAX:
            return Listing([], None, False)
        want = min(SEARCH_MAX, start + PAGE_SIZE + 1)
        query = SearchQuery(text=f.q, limit=want, kinds=kinds, spaces=spaces, tags=tags, max_sensitivity=level, since=f.since_at)
        hits = service.search(OWNER, query).hits
        # A document may match in several chunks: one row per item, its best chunk.
        seen: dict[str, SearchHit] = {}
        for hit in hits:
            seen.setdefault(hit.item_id, hit)
        unique = list(seen.values())
        page = unique[start : start + PAGE_SIZE]
        return Listing([_hit_row(owner, h) for h in page], None, len(unique) > start + PAGE_SIZE)
    found = service.list_items(
        OWNER, kinds=kinds, spaces=spaces, tags=tags, max_sensitivity=level, since=f.since_at, limit=PAGE_SIZE, offset=start
    )
    return Listing([_item_row(owner, i) for i in found.items], found.total, start + PAGE_SIZE < found.total)


def _filter_form(owner: Owner, f: Filters, spaces: list[str]) -> str:
    kinds = [("", "any"), *((k, k) for k in KINDS)]
    levels = [("", "any"), *((s, f"{s} or lower") for s in SENSITIVITIES)]
    space_opts = [("", "any"), *((s, s) for s in spaces)]
    if f.space and f.space not in spaces:
        space_opts.append((f.space, f.space))
    return (
        f'<form method=get action="{escape(owner.base)}/vault" role=search class="card filters" aria-label="Find in the vault">'
        + text_input("q", "Search", f.q, kind="search", extra=f" maxlength={QUERY_CHARS}")
        + select("kind", "Kind", kinds, f.kind)
        + select("space", "Space", space_opts, f.space)
        + text_input("tag", "Tag", f.tag)
        + select("sensitivity", "Sensitivity", levels, f.sensitivity)
        + text_input("since", "Since", f.since, kind="date")
        + "<button type=submit>Show</button>"
        + f'<a href="{escape(owner.base)}/vault">Clear</a></form>'
    )


def _pager(owner: Owner, f: Filters, listing: Listing) -> str:
    links = []
    if f.page > 1:
        links.append(f'<a rel=prev href="{escape(owner.base)}/vault?{escape(f.params(page=f.page - 1))}">Previous</a>')
    if listing.total is not None:
        pages = max(1, -(-listing.total // PAGE_SIZE))
        links.append(f"<span>Page {f.page} of {pages} ({listing.total:,} items)</span>")
    else:
        links.append(f"<span>Page {f.page} of the best matches</span>")
    if listing.has_next:
        links.append(f'<a rel=next href="{escape(owner.base)}/vault?{escape(f.params(page=f.page + 1))}">Next</a>')
    return f'<nav class=pager aria-label="Pages">{" ".join(links)}</nav>'


def _forgotten(owner: Owner, items: list[Item], total: int) -> str:
    if not items:
        return ""
    rows = [(escape(i.kind), f'<a href="{escape(item_url(owner, i.id))}">{item_label(i)}</a>', when(i.deleted_at)) for i in items]
    more = f"<p class=hint>Showing the {len(items)} most recent of {total:,}.</p>" if total > len(items) else ""
    return (
        f"<section aria-labelledby=forgotten><h2 id=forgotten>Forgotten ({total:,})</h2>"
        "<p class=hint>Out of search and of every app's reach; each can be unforgotten or purged for good from its page.</p>"
        + table(["Kind", "Item", "Forgotten"], rows, caption="Forgotten items")
        + more
        + "</section>"
    )


def _add_forms(owner: Owner, spaces: list[str], limit: int) -> str:
    base = escape(owner.base)
    memory = (
        f'<form method=post action="{base}/vault/add" class=card aria-labelledby=add-memory><h3 id=add-memory>Add a memory</h3>'
        + hidden({"token": owner.token("vault-add")})
        + "<label>Text <textarea name=text required maxlength=100000></textarea></label>"
        + space_input("personal", spaces, "spaces-memory")
        + text_input("tags", "Tags (separated by commas)")
        + sensitivity_select()
        + "<button type=submit>Add memory</button></form>"
    )
    preference = (
        f'<form method=post action="{base}/vault/preference" class=card aria-labelledby=add-pref><h3 id=add-pref>Set a preference</h3>'
        + hidden({"token": owner.token("vault-pref")})
        + text_input("key", "Key (e.g. diet or editor.theme)", extra=' required pattern="[a-z0-9][a-z0-9._-]*"')
        + text_input("value", "Value", extra=" required")
        + space_input("personal", spaces, "spaces-pref")
        + sensitivity_select()
        + "<p class=hint>Setting a key again replaces its value; the previous one is kept in its history.</p>"
        + "<button type=submit>Set preference</button></form>"
    )
    return f"<section aria-labelledby=add><h2 id=add>Add</h2>{memory}{preference}{upload_form(owner, spaces, limit)}</section>"


def install(app: FastAPI, console: Console) -> None:
    service = console.access.service

    @app.get("/o/{key}/vault")
    async def vault_list(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "vault")
        query = dict(request.query_params)
        f, problem = Filters.read(query)
        spaces = [s.space for s in await console.call(lambda: service.spaces(OWNER))]
        try:
            listing = await console.call(lambda: _listing(service, owner, f))
        except VaultError as exc:
            listing, problem = Listing([], 0, False), exc.message
        forgotten = await console.call(lambda: service.forgotten_items(OWNER, limit=FORGOTTEN_SHOWN))
        caption = "Best matches" if f.q else "Newest first"
        results = (
            table(["Kind", "Item", "Space", "Tags", "Sensitivity", "Updated"], listing.rows, caption=caption)
            if listing.rows
            else f"<p>{'Nothing matches.' if f.q or f.kind or f.space or f.tag or f.sensitivity or f.since else 'The vault is empty: add a memory, a preference or a document below.'}</p>"
        )
        body = (
            notice_for(query)
            + alert(problem)
            + _filter_form(owner, f, spaces)
            + f"<section aria-labelledby=found><h2 id=found>{'Search results' if f.q else 'Items'}</h2>{results}"
            + (_pager(owner, f, listing) if listing.rows or f.page > 1 else "")
            + "</section>"
            + _forgotten(owner, forgotten.items, forgotten.total)
            + _add_forms(owner, spaces, service.settings.max_document_bytes)
        )
        return console.render(owner, "vault", "Vault", body)

    @app.post("/o/{key}/vault/add")
    async def add_memory(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "vault")
        read = await form_or_page(request)
        if isinstance(read, Response):
            return read
        form, _ = read
        back = f"{owner.base}/vault"
        if not owner.form_ok("vault-add", form.get("token", "")):
            return forbidden(console, owner, back)
        try:
            text = form.get("text", "")
            if not text.strip():
                raise InvalidInput("a memory needs some text")
            memory = MemoryIn(
                text=text, space=parse_space(form.get("space", "")), tags=parse_tags(form.get("tags", "")),
                sensitivity=parse_sensitivity(form.get("sensitivity", "")), source="console",
            )  # fmt: skip
            result = await console.call(lambda: service.remember(OWNER, memory))
        except VaultError as exc:
            return refused(console, owner, exc, back)
        done: Literal["added", "updated", "unchanged"] = result.action
        return redirect(f"{item_url(owner, result.item.id)}?done={done}")

    @app.post("/o/{key}/vault/preference")
    async def set_preference(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "vault")
        read = await form_or_page(request)
        if isinstance(read, Response):
            return read
        form, _ = read
        back = f"{owner.base}/vault"
        if not owner.form_ok("vault-pref", form.get("token", "")):
            return forbidden(console, owner, back)
        try:
            value = form.get("value", "")
            if not value.strip():
                raise InvalidInput("a preference needs a value")
            space, level = parse_space(form.get("space", "")), parse_sensitivity(form.get("sensitivity", ""))
            pref_key = form.get("key", "").strip()
            result = await console.call(
                lambda: service.set_preference(OWNER, pref_key, value, space=space, sensitivity=level, source="console")
            )
        except VaultError as exc:
            return refused(console, owner, exc, back)
        return redirect(f"{item_url(owner, result.item.id)}?done=pref")
