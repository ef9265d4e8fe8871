"""One item at ``{base}/vault/item/<id>``: its text, provenance and history, and its actions
(edit, restore a version, forget, unforget, purge after a confirmation page naming what goes)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import Console, Owner, form_or_page, redirect
from mcp_server.console.html import hidden, post_button, table
from mcp_server.console.vaultview.render import (
    forbidden,
    item_label,
    item_url,
    notice_for,
    parse_sensitivity,
    parse_space,
    parse_tags,
    refused,
    sensitivity_select,
    shown,
    space_input,
    tags_text,
    text_input,
    when,
)
from schemas.items import DocumentDetail, Item, ItemHistory
from vault import OWNER
from vault.errors import InvalidInput, NotFound, VaultError
from vault.service import VaultService

KIND_TITLE = {"memory": "Memory", "preference": "Preference", "document": "Document"}


@dataclass(frozen=True, slots=True)
class Shown:
    """What the item page shows: a live item with its history (and file), or a forgotten one."""

    item: Item
    history: ItemHistory | None
    document: DocumentDetail | None

    @property
    def forgotten(self) -> bool:
        return self.item.deleted_at is not None


def _load(service: VaultService, item_id: str) -> Shown:
    """The item, live or forgotten (NotFound when neither)."""
    try:
        history = service.item_history(OWNER, item_id)
    except NotFound:
        return Shown(service.forgotten_item(OWNER, item_id), None, None)
    document = service.show_document(OWNER, item_id) if history.item.kind == "document" else None
    return Shown(history.item, history, document)


def _facts(item: Item, document: DocumentDetail | None) -> str:
    p = item.provenance
    rows = [
        ("Kind", escape(item.kind)),
        *([("Key", shown(item.key))] if item.key else []),
        ("Space", shown(item.space)),
        ("Tags", tags_text(item.tags)),
        ("Sensitivity", escape(item.sensitivity)),
        ("Source", shown(p.source)),
        ("Written by", shown(p.created_by)),
        ("Created", when(p.created_at)),
        ("Updated", when(p.updated_at)),
        *([("Valid from", when(item.valid_from))] if item.valid_from else []),
        *([("Valid until", when(item.valid_until))] if item.valid_until else []),
        *([("Forgotten", when(item.deleted_at))] if item.deleted_at else []),
        ("Id", f"<code>{escape(item.id)}</code>"),
        ("Content hash", f"<code>{escape(item.content_hash)}</code>"),
    ]
    if document is not None:
        rows += [
            ("File", shown(document.filename)),
            ("Type", escape(document.mime)),
            ("Size", f"{document.size:,} bytes"),
            ("Chunks", f"{len(document.chunks):,}"),
        ]
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f"<section aria-labelledby=prov><h2 id=prov>Provenance</h2><dl class=facts>{facts}</dl></section>"


def _edit_form(owner: Owner, item: Item, spaces: list[str]) -> str:
    text = (
        f"<label>Text <textarea name=text required maxlength=100000>{escape(item.text)}</textarea></label>"
        if item.kind == "memory"
        else "<p class=hint>Only a memory's text is edited here; set a preference again, or upload the document again, to change its words.</p>"
    )
    return (
        f'<form method=post action="{escape(item_url(owner, item.id))}/edit" class=card aria-labelledby=edit><h2 id=edit>Edit</h2>'
        + hidden({"token": owner.token(f"vault-edit:{item.id}")})
        + text
        + space_input(item.space, spaces, "spaces-edit")
        + text_input("tags", "Tags (separated by commas)", ", ".join(item.tags))
        + sensitivity_select(item.sensitivity)
        + "<button type=submit>Save</button> <span class=hint>The previous version is kept in the history.</span></form>"
    )


def _history(owner: Owner, history: ItemHistory) -> str:
    if not history.versions:
        return "<section aria-labelledby=hist><h2 id=hist>History</h2><p>No earlier version.</p></section>"
    token = owner.token(f"vault-restore:{history.item.id}")
    action = f"{item_url(owner, history.item.id)}/restore"
    rows = [
        (
            str(v.version),
            shown(v.text, 300),
            shown(v.space),
            tags_text(v.tags),
            escape(v.sensitivity),
            f"{shown(v.saved_by)}, {when(v.saved_at)}",
            f"{shown(v.replaced_by)}, {when(v.replaced_at)}",
            post_button(action, token, f"Restore version {v.version}", {"version": str(v.version)}),
        )
        for v in reversed(history.versions)
    ]
    return (
        f"<section aria-labelledby=hist><h2 id=hist>History</h2><p class=hint>The current state is version {history.current_version}; "
        "restoring an earlier one keeps the current state as a new version.</p>"
        + table(
            ["Version", "Text", "Space", "Tags", "Sensitivity", "Written", "Replaced", ""], rows, caption="Earlier versions, newest first"
        )
        + "</section>"
    )


def _actions(owner: Owner, item: Item) -> str:
    url = item_url(owner, item.id)
    if item.deleted_at is not None:
        first = post_button(f"{url}/unforget", owner.token(f"vault-unforget:{item.id}"), "Unforget")
        words = "Unforget brings it back into search. Purge erases it for good."
    else:
        first = post_button(f"{url}/forget", owner.token(f"vault-forget:{item.id}"), "Forget", danger=True)
        words = "Forget takes it out of search and of every app's reach at once; it can be unforgotten until it is purged."
    return (
        f"<section aria-labelledby=acts class=card><h2 id=acts>Forget or purge</h2><p class=hint>{words}</p>"
        f'{first} <a class=danger href="{escape(url)}/purge">Purge for good…</a></section>'
    )


def _item_page(owner: Owner, s: Shown, spaces: list[str], query: dict[str, str]) -> str:
    item = s.item
    state = (
        f"<p class=forgotten-note role=note><strong>Forgotten</strong> on {when(item.deleted_at)}: out of search and of every "
        "app's reach, kept until purged.</p>"
        if s.forgotten
        else ""
    )
    text = f"<section aria-labelledby=words><h2 id=words>{'Title' if item.kind == 'document' else 'Value' if item.kind == 'preference' else 'Text'}</h2><div class=itemtext>{shown(item.text)}</div></section>"
    chunks = ""
    if s.document is not None and s.document.chunks:
        first = "".join(f"<li>{shown(c, 400)}</li>" for c in s.document.chunks[:3])
        chunks = f"<details><summary>Text (first chunks of {len(s.document.chunks)})</summary><ol>{first}</ol></details>"
    back = f'<p><a href="{escape(owner.base)}/vault">← Back to the vault</a></p>'
    parts = [notice_for(query), state, text, chunks, _facts(item, s.document)]
    if not s.forgotten:
        parts.append(_edit_form(owner, item, spaces))
    if s.history is not None:
        parts.append(_history(owner, s.history))
    parts += [_actions(owner, item), back]
    return "".join(parts)


def _purge_page(owner: Owner, s: Shown) -> str:
    item = s.item
    versions = len(s.history.versions) if s.history is not None else None
    goes = [
        f"the {escape(item.kind)} <strong>{item_label(item, 300)}</strong> (<code>{escape(item.id)}</code>), in space {shown(item.space)}"
    ]
    if versions:
        goes.append(f"its {versions} earlier version{'s' if versions != 1 else ''}")
    elif versions is None:
        goes.append("its earlier versions")
    if item.kind == "preference":
        goes.append(f"the older values of preference {shown(item.key or '')}")
    if item.kind == "document":
        goes.append("the stored file and its chunks")
    goes.append("its entries in the search index and its vectors")
    items = "".join(f"<li>{g}</li>" for g in goes)
    url = item_url(owner, item.id)
    return (
        f"<p role=alert><strong>This cannot be undone.</strong></p><p>Purging erases for good:</p><ul>{items}</ul>"
        "<p class=hint>The audit log keeps that it was purged (its id only). An export made earlier still holds it.</p>"
        + post_button(f"{url}/purge", owner.token(f"vault-purge:{item.id}"), "Purge for good", danger=True)
        + f' <a href="{escape(url)}">Cancel</a>'
    )


def install(app: FastAPI, console: Console) -> None:
    service = console.access.service

    def not_found(owner: Owner) -> Response:
        gone = NotFound("No such item: it may have been purged (or, for a preference, replaced by a newer value).")
        return refused(console, owner, gone, f"{owner.base}/vault", "Back to the vault")

    @app.get("/o/{key}/vault/item/{item_id}")
    async def item_page(request: Request, key: str, item_id: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "vault")
        try:
            s = await console.call(lambda: _load(service, item_id))
        except NotFound:
            return not_found(owner)
        spaces = [c.space for c in await console.call(lambda: service.spaces(OWNER))]
        title = KIND_TITLE[s.item.kind] + (f" {s.item.key}" if s.item.key else "")
        return console.render(owner, "vault", title, _item_page(owner, s, spaces, dict(request.query_params)))

    @app.get("/o/{key}/vault/item/{item_id}/purge")
    async def purge_confirm(request: Request, key: str, item_id: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "vault")
        try:
            s = await console.call(lambda: _load(service, item_id))
        except NotFound:
            return not_found(owner)
        return console.render(owner, "vault", "Purge for good?", _purge_page(owner, s))

    async def posted(request: Request, key: str, item_id: str, action: str) -> tuple[Owner, dict[str, str]] | Response:
        """The owner and the form of an item action, or the answer refusing it (login, 413, 403)."""
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "vault")
        read = await form_or_page(request)
        if isinstance(read, Response):
            return read
        form, _ = read
        if not owner.form_ok(f"vault-{action}:{item_id}", form.get("token", "")):
            return forbidden(console, owner, item_url(owner, item_id))
        return owner, form

    @app.post("/o/{key}/vault/item/{item_id}/edit")
    async def edit(request: Request, key: str, item_id: str) -> Response:
        got = await posted(request, key, item_id, "edit")
        if isinstance(got, Response):
            return got
        owner, form = got
        try:
            text = form.get("text")
            if text is not None and not text.strip():
                raise InvalidInput("a memory needs some text: forget it instead")
            space, tags = parse_space(form.get("space", "")), parse_tags(form.get("tags", ""))
            level = parse_sensitivity(form.get("sensitivity", ""))
            before = await console.call(lambda: service.get_item(OWNER, item_id))
            after = await console.call(lambda: service.edit(OWNER, item_id, text=text, space=space, tags=tags, sensitivity=level))
        except VaultError as exc:
            return refused(console, owner, exc, item_url(owner, item_id))
        done = "same" if after.provenance.updated_at == before.provenance.updated_at else "edited"
        return redirect(f"{item_url(owner, item_id)}?done={done}")

    @app.post("/o/{key}/vault/item/{item_id}/restore")
    async def restore(request: Request, key: str, item_id: str) -> Response:
        got = await posted(request, key, item_id, "restore")
        if isinstance(got, Response):
            return got
        owner, form = got
        raw = form.get("version", "")
        try:
            if not raw.isdigit() or len(raw) > 9:
                raise InvalidInput("no such version")
            await console.call(lambda: service.restore(OWNER, item_id, int(raw)))
        except VaultError as exc:
            return refused(console, owner, exc, item_url(owner, item_id))
        return redirect(f"{item_url(owner, item_id)}?done=restored")

    @app.post("/o/{key}/vault/item/{item_id}/forget")
    async def forget(request: Request, key: str, item_id: str) -> Response:
        got = await posted(request, key, item_id, "forget")
        if isinstance(got, Response):
            return got
        owner, _ = got
        try:
            await console.call(lambda: service.forget(OWNER, item_id))
        except VaultError as exc:
            return refused(console, owner, exc, item_url(owner, item_id))
        return redirect(f"{item_url(owner, item_id)}?done=forgotten")

    @app.post("/o/{key}/vault/item/{item_id}/unforget")
    async def unforget(request: Request, key: str, item_id: str) -> Response:
        got = await posted(request, key, item_id, "unforget")
        if isinstance(got, Response):
            return got
        owner, _ = got
        try:
            await console.call(lambda: service.unforget(OWNER, item_id))
        except VaultError as exc:
            return refused(console, owner, exc, item_url(owner, item_id))
        return redirect(f"{item_url(owner, item_id)}?done=unforgotten")

    @app.post("/o/{key}/vault/item/{item_id}/purge")
    async def purge(request: Request, key: str, item_id: str) -> Response:
        got = await posted(request, key, item_id, "purge")
        if isinstance(got, Response):
            return got
        owner, _ = got
        try:
            await console.call(lambda: service.purge(OWNER, item_id))
        except VaultError as exc:
            return refused(console, owner, exc, item_url(owner, item_id))
        return redirect(f"{owner.base}/vault?done=purged")
