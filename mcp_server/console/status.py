"""Status: what the vault holds, how big it is, which model and index serve it, and Lock now.

Lock now (``POST /o/<key>/status/lock``) means, for a running server: every owner session of this
server ends (every browser must log in again), unused one-time login links die, and this vault's
unlock session (``ctxvault lock``) ends with the programs it started. Apps served by this process
keep their grants, since the process holds the key until it stops: the page says so, and points
at Apps (revoke) and at stopping ``ctxvault serve``.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import Console, form_or_page, page
from mcp_server.console.html import document, post_button, table
from mcp_server.console.pages import error_page
from schemas.retrieval import RetrievalReport
from vault import OWNER


def index_rows(r: RetrievalReport) -> list[tuple[str, str]]:
    """The retrieval state in words: vectors, what is missing or stale, the index, the backlog if the core reports one."""
    kind = {"flat": "exact (flat)", "ivf": "approximate (IVF)", "hnsw": "approximate (HNSW)"}
    index = (
        f"{kind.get(r.index_kind, r.index_kind)}, {r.index_size:,} vectors"
        if r.index_kind
        else "not loaded yet (built on the first search)"
    )
    rows = [
        ("Searchable units", f"{r.units:,} (memories, preferences and document chunks)"),
        ("Vectors", f"{r.vectors:,} from {r.model}" + (f"; {r.missing_vectors:,} units have none yet" if r.missing_vectors else "")),
        ("Vector index", index),
    ]
    if r.stale_vectors:
        rows.append(("Stale vectors", f"{r.stale_vectors:,} made by another model: run ctxvault reindex"))
    waiting = r.waiting_units  # the embedding backlog (vault/backlog.py)
    rows.append(("Waiting to be embedded", f"{waiting:,} units (found by keywords until then)" if waiting else "nothing"))
    if r.backend:
        rows.append(("Embedder", f"{r.backend}, loaded"))
    return rows


def _cells(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(escape(k), escape(v)) for k, v in pairs]


def install(app: FastAPI, console: Console) -> None:
    service = console.access.service

    @app.get("/o/{key}/status")
    async def status(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "status")
        report, retrieval = await console.call(lambda: (service.status(OWNER), service.retrieval_stats(OWNER)))
        rows = [
            ("Memories", f"{report.memories:,}"),
            ("Preferences", f"{report.preferences:,}"),
            ("Documents", f"{report.documents:,} ({report.chunks:,} chunks)"),
            ("Forgotten (restorable until purged)", f"{report.forgotten:,}"),
            ("Spaces", ", ".join(report.spaces) or "none"),
            ("Size on disk", f"{report.db_bytes / 1_048_576:.1f} MiB"),
            ("Embedding model", report.model),
            ("Schema version", str(report.schema_version)),
            ("Location", report.home),
        ]
        lock = (
            "<h2>Lock now</h2><div class=card><p>Ends <strong>every</strong> owner session of this server (this browser and any "
            "other: each must log in again with the passphrase or a new <code>ctxvault ui</code> link), cancels login links not "
            "yet used, and ends the unlock session of your terminal (<code>ctxvault lock</code>) and the MCP servers it started.</p>"
            "<p class=hint>Apps connected to this server keep what you granted them: the server holds the key until it stops. "
            "To cut an app off, revoke it on the Apps page; to stop every app, stop <code>ctxvault serve</code>.</p>"
            f"{post_button(f'{owner.base}/status/lock', owner.token('lock'), 'Lock now', danger=True)}</div>"
        )
        body = (
            table(["", ""], _cells(rows), caption="Your vault")
            + table(["", ""], _cells(index_rows(retrieval)), caption="Search index")
            + lock
        )
        return console.render(owner, "status", "Status", body)

    @app.post("/o/{key}/status/lock")
    async def lock_now(request: Request, key: str) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        owner = console.owner(request, key)
        if owner is None or not owner.form_ok("lock", form.get("token", "")):
            return page(error_page("The form expired or this session ended; log in again."), 403)
        ended = await console.call(lambda: service.lock_owner(OWNER))
        sessions = console.sessions.end_all()
        agent = "Your terminal's unlock session has ended." if ended else "No terminal unlock session was running."
        response = page(
            document(
                "Locked",
                f"<p role=status>Every owner session has ended ({sessions} in all). {escape(agent)}</p>"
                "<p>Log in again with your passphrase, or run <code>ctxvault ui</code> for a one-time link.</p>"
                '<p><a href="/login">Log in</a></p>',
            )
        )
        console.cookies.drop_session(response, key)
        return response
