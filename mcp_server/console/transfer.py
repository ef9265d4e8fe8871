"""Export / import: download an encrypted export; upload a file, preview what importing it would change, then import it.

Export (``POST /o/<key>/transfer/export``): the passphrase or age recipient travels in the POST body
only; the bundle is written to a private file in the vault's ``transfer/`` folder, streamed as an
attachment, and deleted once sent. Import (``POST /o/<key>/transfer/import``, multipart): the session
is checked before the body is read; the file is streamed with a cap (``mcp_server/forms.py`` ``read_upload``) to that
folder under a random name, dry-run imported, and kept server-side under a random id bound to this
session (with the passphrase or identity needed to open it, in memory only) for the confirm step,
which imports that SAME file; confirm, cancel, expiry (``STAGE_TTL``) or a restart delete it.
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Literal, cast

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from mcp_server.console.context import Console, Owner, form_or_page, page, redirect
from mcp_server.console.html import alert, bdi, hidden, notice, security_headers, table
from mcp_server.console.pages import error_page
from mcp_server.forms import Upload, read_upload, staged_name
from schemas.items import SpaceCount
from schemas.limits import IMPORT_UPLOAD_BYTES
from schemas.portable import ImportSummary, Selection
from vault import OWNER
from vault.errors import InvalidInput, VaultError

STAGE_TTL = 30 * 60.0
MAX_STAGED = 4  # uploads kept for a decision at once (the oldest goes first)
NOTICES = {"imported": "Imported.", "cancelled": "The upload was discarded; nothing was imported."}
KIND_LABELS = {"memory": "memories", "preference": "preferences", "document": "documents"}
KINDS = tuple(KIND_LABELS)
SENSITIVITIES = ("low", "medium", "high")


@dataclass(slots=True)
class Staged:
    """An uploaded file waiting for the owner's confirmation, with what opens it and what the dry run said."""

    sid: str
    path: Path
    filename: str
    size: int
    passphrase: str | None
    identity: str | None
    preview: ImportSummary
    until: float


@dataclass(slots=True)
class Stage:
    """The uploads of this server waiting for a decision, and each session's last import result."""

    directory: Path
    held: dict[str, Staged] = field(default_factory=dict)
    results: dict[str, ImportSummary] = field(default_factory=dict)

    def clear_leftovers(self) -> None:
        """At start: what servers killed mid-decision left (folders untouched for two ``STAGE_TTL``) is deleted.

        Each server process stages under its own random folder, so two servers of one vault never
        delete each other's uploads."""
        if not self.directory.parent.is_dir():
            return
        for old in self.directory.parent.iterdir():
            if old != self.directory and time.time() - old.stat().st_mtime > 2 * STAGE_TTL:
                shutil.rmtree(old, ignore_errors=True)

    def ensure(self) -> Path:
        """The staging folder, private (0700) at each level under the vault's home."""
        self.directory.parent.mkdir(mode=0o700, exist_ok=True)
        self.directory.mkdir(mode=0o700, exist_ok=True)
        return self.directory

    def prune(self) -> None:
        now = time.monotonic()
        for sid in [k for k, s in self.held.items() if s.until <= now]:
            self.drop(sid)
        while len(self.held) > MAX_STAGED:
            self.drop(next(iter(self.held)))

    def put(self, staged: Staged) -> str:
        ref = secrets.token_urlsafe(18)
        self.held[ref] = staged
        self.prune()
        return ref

    def get(self, ref: str, sid: str) -> Staged | None:
        self.prune()
        found = self.held.get(ref)
        return found if found is not None and secrets.compare_digest(found.sid, sid) else None

    def drop(self, ref: str) -> None:
        staged = self.held.pop(ref, None)
        if staged is not None:
            staged.path.unlink(missing_ok=True)


def _summary_rows(s: ImportSummary) -> list[tuple[str, str]]:
    rows = [
        ("Format", escape(s.detected)),
        ("New items", f"{s.new:,}" + (f" ({escape(', '.join(f'{n} {k}' for k, n in sorted(s.by_kind.items())))})" if s.by_kind else "")),
        ("Updated items", f"{s.updated:,}"),
        ("Unchanged", f"{s.unchanged:,}"),
    ]
    if s.forgotten:
        rows.append(("Forgotten here too", f"{s.forgotten:,} (the source had forgotten or purged them)"))
    if s.conflicts:
        rows.append(("Changed on both sides", f"{len(s.conflicts):,}: both versions are kept (see ctxvault conflicts)"))
    if s.vectors_reused:
        rows.append(("Embeddings reused", f"{s.vectors_reused:,}"))
    if s.skipped:
        rows.append(("Skipped", f"{len(s.skipped):,}"))
    return rows


def _skipped(s: ImportSummary) -> str:
    if not s.skipped:
        return ""
    rows = [(bdi(k.ref), bdi(k.reason)) for k in s.skipped[:50]]
    more = f"<p class=hint>… and {len(s.skipped) - 50} more.</p>" if len(s.skipped) > 50 else ""
    return table(["Entry", "Why it is skipped"], rows, caption="Skipped") + more


def _export_form(owner: Owner, spaces: list[SpaceCount]) -> str:
    space_boxes = "".join(
        f'<label><input type=checkbox name=space value="{escape(s.space)}"> {bdi(s.space)} '
        f"<span class=hint>({s.memories} memories, {s.preferences} preferences, {s.documents} documents)</span></label>"
        for s in spaces
    )
    kind_boxes = "".join(f'<label><input type=checkbox name=kind value="{k}"> {label}</label>' for k, label in KIND_LABELS.items())
    sens = "".join(f'<option value="{s}">up to {s}</option>' for s in SENSITIVITIES[:2])
    return (
        f'<form method=post action="{escape(owner.base)}/transfer/export">{hidden({"token": owner.token("export")})}'
        "<fieldset><legend>Encrypt it</legend>"
        "<label><input type=radio name=protect value=passphrase checked> with a passphrase (opens with <code>age -d</code>)</label>"
        "<label for=x-pass>Passphrase (12 characters or more)</label>"
        "<input id=x-pass type=password name=passphrase autocomplete=new-password minlength=12>"
        "<label><input type=radio name=protect value=recipient> to an age recipient or SSH public key</label>"
        "<label for=x-rcpt>Recipient</label>"
        '<input id=x-rcpt type=text name=recipient placeholder="age1… or ssh-ed25519 …" autocomplete=off spellcheck=false size=64>'
        "</fieldset>"
        "<fieldset><legend>What to export</legend><p class=hint>Nothing ticked: everything.</p>"
        f"{space_boxes}{kind_boxes}"
        f"<label for=x-sens>Sensitivity</label><select id=x-sens name=max_sensitivity><option value=''>any</option>{sens}</select>"
        "</fieldset><button type=submit>Download the export</button></form>"
        "<p class=hint>The file is a PAM bundle sealed with age: any age tool opens it, no Context Vault needed. "
        "The passphrase is sent in this form's body only, never in a link.</p>"
    )


def _import_form(owner: Owner, error: str | None) -> str:
    return (
        f'<form method=post action="{escape(owner.base)}/transfer/import" enctype=multipart/form-data data-progress>'
        f"{hidden({'token': owner.token('import')})}{alert(error)}"
        f"<label for=i-file>File (at most {IMPORT_UPLOAD_BYTES >> 20} MiB)</label><input id=i-file type=file name=file required>"
        "<p class=hint>A Context Vault bundle (.age), a PAM memory-store.json, an MCP memory.jsonl, a mem0 export, "
        "a Markdown or text note.</p>"
        "<fieldset><legend>To open an encrypted bundle</legend>"
        "<label for=i-pass>Its passphrase</label><input id=i-pass type=password name=passphrase autocomplete=off>"
        "<label for=i-id>or its age identity (AGE-SECRET-KEY-…)</label>"
        "<textarea id=i-id name=identity autocomplete=off spellcheck=false></textarea></fieldset>"
        "<progress value=0 max=1 aria-label=Upload></progress><p data-error role=alert></p>"
        "<button type=submit>Upload and preview</button></form>"
        "<p class=hint>Nothing is imported until you confirm on the next page.</p>"
    )


def install(app: FastAPI, console: Console) -> None:
    service = console.access.service
    stage = Stage(service.settings.home / "transfer" / secrets.token_urlsafe(9))
    stage.clear_leftovers()

    async def transfer_page(owner: Owner, error: str | None = None, import_error: str | None = None, status: int = 200,
                            done: str | None = None) -> Response:  # fmt: skip
        spaces = await console.call(lambda: service.spaces(OWNER))
        result = stage.results.pop(owner.sid, None) if done == "imported" else None
        said = notice(NOTICES.get(done or ""))
        if result is not None:
            said += table(["", ""], _summary_rows(result), caption="What the import did")
        body = said + "<h2>Export</h2>" + alert(error) + _export_form(owner, spaces) + "<h2>Import</h2>" + _import_form(owner, import_error)
        return console.render(owner, "transfer", "Export / import", body, status)

    @app.get("/o/{key}/transfer")
    async def transfer(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "transfer")
        return await transfer_page(owner, done=request.query_params.get("done"))

    @app.post("/o/{key}/transfer/export")
    async def export(request: Request, key: str) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, multi = got
        owner = console.owner(request, key)
        if owner is None or not owner.form_ok("export", form.get("token", "")):
            return page(error_page("The form expired or this session ended; log in again."), 403)
        protect = form.get("protect", "passphrase")
        passphrase = form.get("passphrase", "") if protect == "passphrase" else None
        recipient = form.get("recipient", "").strip() if protect == "recipient" else ""
        if protect == "passphrase" and len(passphrase or "") < 12:
            return await transfer_page(owner, "Choose a passphrase of 12 characters or more.", status=400)
        if protect == "recipient" and not recipient:
            return await transfer_page(owner, "Give the age recipient (age1…) or SSH public key to encrypt to.", status=400)
        try:
            kinds = [k for k in multi.get("kind", []) if k in KINDS] or None
            selection = Selection(
                spaces=[s for s in multi.get("space", []) if s] or None,
                kinds=cast(list[Literal["memory", "preference", "document"]], kinds),
                max_sensitivity=form.get("max_sensitivity") or None,
            )
        except ValueError:
            return await transfer_page(owner, "That selection is not valid.", status=400)
        target = stage.ensure() / f"{secrets.token_urlsafe(16)}.age"
        try:
            await console.call(
                lambda: service.export_bundle(
                    OWNER, selection, target, recipients=[recipient] if recipient else None, passphrase=passphrase
                )
            )
        except VaultError as exc:
            target.unlink(missing_ok=True)
            return await transfer_page(owner, exc.message, status=exc.http_status)
        name = f"ctxvault-export-{datetime.now(UTC):%Y%m%d-%H%M%S}.age"
        return FileResponse(
            target, media_type="application/octet-stream", filename=name, headers=security_headers(),
            background=BackgroundTask(target.unlink, missing_ok=True),
        )  # fmt: skip

    @app.post("/o/{key}/transfer/import")
    async def upload(request: Request, key: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:  # before a byte of the body is read
            return page(error_page("This session ended; log in again."), 403)
        try:
            # The token (the form's first field) is checked before a byte of the file is read.
            got: Upload = await read_upload(
                request, "file", IMPORT_UPLOAD_BYTES, stage.ensure(), gate=lambda f: owner.form_ok("import", f.get("token", "")),
                name=staged_name,
            )  # fmt: skip
        except InvalidInput as exc:
            return await transfer_page(owner, import_error=exc.message, status=exc.http_status)
        if got.refused or not owner.form_ok("import", got.fields.get("token", "")):
            got.discard()
            return page(error_page("The form expired or this session ended; log in again."), 403)
        if got.path is None or got.size == 0:
            got.discard()
            return await transfer_page(owner, import_error="Choose a file to import.", status=400)
        path = got.path
        passphrase = got.fields.get("passphrase") or None
        identity = got.fields.get("identity", "").strip() or None
        try:
            preview = await console.call(lambda: service.import_source(OWNER, path, passphrase=passphrase, identity=identity, dry_run=True))
        except VaultError as exc:
            got.discard()
            return await transfer_page(owner, import_error=exc.message, status=exc.http_status)
        ref = stage.put(Staged(owner.sid, path, got.filename, got.size, passphrase, identity, preview, time.monotonic() + STAGE_TTL))
        return redirect(f"{owner.base}/transfer/import/{ref}")

    @app.get("/o/{key}/transfer/import/{ref}")
    async def preview(request: Request, key: str, ref: str) -> Response:
        owner = console.owner(request, key)
        if owner is None:
            return console.login(request, "transfer")
        staged = stage.get(ref, owner.sid)
        if staged is None:
            return await transfer_page(owner, import_error="This upload expired or was decided; upload it again.", status=404)
        s = staged.preview
        nothing = not (s.new or s.updated or s.forgotten)
        token = owner.token(f"import:{ref}")
        action = f"{owner.base}/transfer/import/{ref}"
        body = (
            f"<p>Uploaded <strong>{bdi(staged.filename or 'a file')}</strong> ({staged.size:,} bytes). "
            "This is what importing it <strong>would</strong> change; nothing is written yet.</p>"
            + table(["", ""], _summary_rows(s), caption="Preview (dry run)")
            + _skipped(s)
            + ("<p>Importing it would change nothing: this vault already holds all of it.</p>" if nothing else "")
            + f'<form method=post action="{escape(action)}">{hidden({"token": token})}'
            + "<button type=submit name=decision value=import>Import it</button> "
            + "<button type=submit name=decision value=cancel>Cancel</button></form>"
        )
        return console.render(owner, "transfer", "Import preview", body)

    @app.post("/o/{key}/transfer/import/{ref}")
    async def decide(request: Request, key: str, ref: str) -> Response:
        got = await form_or_page(request)
        if isinstance(got, Response):
            return got
        form, _ = got
        owner = console.owner(request, key)
        if owner is None or not owner.form_ok(f"import:{ref}", form.get("token", "")):
            return page(error_page("The form expired or this session ended; log in again."), 403)
        staged = stage.get(ref, owner.sid)
        if staged is None:
            return await transfer_page(owner, import_error="This upload expired or was decided; upload it again.", status=404)
        if form.get("decision") != "import":
            stage.drop(ref)
            return redirect(f"{owner.base}/transfer?done=cancelled")
        # Taken out first: a second confirm posted meanwhile finds nothing.
        stage.held.pop(ref, None)
        try:
            result = await console.call(
                lambda: service.import_source(OWNER, staged.path, passphrase=staged.passphrase, identity=staged.identity)
            )
        except VaultError as exc:
            return await transfer_page(owner, import_error=exc.message, status=exc.http_status)
        finally:
            staged.path.unlink(missing_ok=True)
        stage.results[owner.sid] = result
        return redirect(f"{owner.base}/transfer?done=imported")
