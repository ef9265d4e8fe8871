"""Status: what the vault holds, how big it is, which model and index serve it."""

from __future__ import annotations

from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import Console
from mcp_server.console.html import table
from vault import OWNER


def install(app: FastAPI, console: Console) -> None:
    service = console.access.service

    @app.get("/o/{key}/status")
    async def status(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "status")
        report = await console.call(lambda: service.status(OWNER))
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
        body = table(["", ""], [(escape(k), escape(v)) for k, v in rows], caption="Your vault")
        return console.render(owner, "status", "Status", body)
