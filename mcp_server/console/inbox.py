"""Inbox: what apps are waiting for the owner to decide (consent requests and OAuth authorizations)."""

from __future__ import annotations

from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import Console
from mcp_server.console.html import bdi, table
from vault import OWNER
from vault.scopes import describe_scope, parse_scope


def install(app: FastAPI, console: Console) -> None:
    service = console.access.service

    @app.get("/o/{key}/")
    async def inbox(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "")
        pending = await console.call(lambda: service.list_consent(OWNER))
        rows = [
            (
                f'<a href="{escape(owner.base)}/consent/{escape(r.id)}">{bdi(r.app_name or r.app_id)}</a>',
                escape(", ".join(describe_scope(parse_scope(s)) for s in r.scopes)),
                bdi(r.purpose),
            )
            for r in pending
        ]
        body = (
            table(["App", "Asks to", "Purpose"], rows, caption="Waiting for your decision")
            if rows
            else "<p>No app is waiting for your decision.</p>"
        )
        return console.render(owner, "", "Inbox", body)
