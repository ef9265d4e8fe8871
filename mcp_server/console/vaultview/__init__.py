"""Vault: browse and search the owner's memories, preferences and documents; one item with its
provenance and history; add, edit, forget, unforget, purge; upload documents.

``browse`` is the list (GET form with filters, paginated; the core's hybrid ``search`` when a
query is given, ``list_items`` otherwise) and the add forms, ``item`` the page of one item at
``{base}/vault/item/<id>`` and its actions, ``upload`` the streamed, capped document upload.
Every action is a POST form with a server-side token bound to the session and the form (for an
item's actions, to that item), answered by a redirect with a notice from ``render.NOTICES``.
"""

from __future__ import annotations

from fastapi import FastAPI

from mcp_server.console.context import Console
from mcp_server.console.vaultview import browse, item, upload


def install(app: FastAPI, console: Console) -> None:
    for module in (browse, item, upload):
        module.install(app, console)
