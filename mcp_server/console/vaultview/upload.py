"""Document upload: a multipart form streamed to a private temporary file, capped while it is read.

The cap is the vault's document limit (``Settings.max_document_bytes``, by default
``schemas.limits.DOCUMENT_BYTES``): past it the body is refused at once (its declared length
first, then every chunk), and nothing is stored. The temporary file lives in a fresh 0700
folder, in memory-backed ``/dev/shm`` when the system has it (the plain file would otherwise
touch the disk), and is removed once the core has read it. The form is marked ``data-progress``:
console.js shows the upload's progress and an error in place; without script it is a plain post.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mcp_server.console.context import Console, Owner, redirect
from mcp_server.console.html import hidden
from mcp_server.console.vaultview.render import (
    forbidden,
    item_url,
    parse_sensitivity,
    parse_space,
    parse_tags,
    refused,
    sensitivity_select,
    space_input,
    text_input,
)
from mcp_server.forms import read_upload
from vault import OWNER
from vault.documents import SUFFIX_MIME
from vault.errors import InvalidInput, VaultError

FILE_FIELD = "file"
MEMORY_TMP = Path("/dev/shm")
DONE = {"added": "uploaded", "replaced": "replaced", "unchanged": "doc-unchanged"}


def upload_folder() -> Path:
    """A fresh private folder for one upload: in RAM (/dev/shm) where the system offers it."""
    parent = MEMORY_TMP if MEMORY_TMP.is_dir() and os.access(MEMORY_TMP, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="ctxvault-upload-", dir=parent))


def size_words(limit: int) -> str:
    return f"{limit / 1_048_576:g} MiB" if limit >= 1_048_576 else f"{limit / 1024:g} KiB" if limit >= 1024 else f"{limit} bytes"


def upload_form(owner: Owner, spaces: Sequence[str], limit: int) -> str:
    """The upload form; ``limit`` is the running vault's document limit, named in its hint."""
    accept = ",".join(sorted(SUFFIX_MIME))
    return (
        f'<form method=post action="{escape(owner.base)}/vault/upload" enctype="multipart/form-data" data-progress class=card '
        "aria-labelledby=add-doc><h3 id=add-doc>Upload a document</h3>"
        + hidden({"token": owner.token("vault-upload")})
        + f'<label>File <input type=file name={FILE_FIELD} required accept="{escape(accept)}"></label>'
        + f"<p class=hint>Text, Markdown, HTML or PDF, at most {escape(size_words(limit))}. "
        "Uploading a file of the same name again replaces it.</p>"
        + space_input("personal", spaces, "spaces-doc")
        + text_input("tags", "Tags (separated by commas)")
        + sensitivity_select()
        + "<label>Progress <progress value=0 max=100></progress></label><p data-error role=alert aria-live=polite></p>"
        + "<button type=submit>Upload</button></form>"
    )


def install(app: FastAPI, console: Console) -> None:
    service = console.access.service

    @app.post("/o/{key}/vault/upload")
    async def upload(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "vault")
        back = f"{owner.base}/vault"
        limit = service.settings.max_document_bytes
        folder = upload_folder()
        try:
            try:
                # The token (the form's first field) is checked before a byte of the file is read.
                got = await read_upload(
                    request, FILE_FIELD, limit, folder, gate=lambda f: owner.form_ok("vault-upload", f.get("token", ""))
                )
            except InvalidInput as exc:
                return refused(console, owner, exc, back)
            if got.refused or not owner.form_ok("vault-upload", got.fields.get("token", "")):
                return forbidden(console, owner, back)
            try:
                if got.path is None or got.size == 0:
                    raise InvalidInput("choose a file to upload (an empty file has nothing to index)")
                path, origin = got.path, f"upload:{got.filename}"
                space, tags = parse_space(got.fields.get("space", "")), parse_tags(got.fields.get("tags", ""))
                level = parse_sensitivity(got.fields.get("sensitivity", ""))
                added = await console.call(
                    lambda: service.add_document(OWNER, path, space=space, tags=tags, sensitivity=level, origin=origin)
                )
            except VaultError as exc:
                return refused(console, owner, exc, back)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return redirect(f"{item_url(owner, added.item_id)}?done={DONE[added.action]}")
