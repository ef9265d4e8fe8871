"""Export and import of bundles, PAM files and other providers' exports."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from schemas.items import (
    MemoryIn,
)
from schemas.portable import ExportSummary, ImportFormat, ImportSummary
from schemas.portable import Selection as PortableSelection
from vault.errors import InvalidInput, StoreCorrupt
from vault.filters import Clause, ItemFilter
from vault.items import ITEM_COLUMNS, new_id, row_to_item, utcnow
from vault.portable.records import ImportBatch, within_limits
from vault.principal import Principal
from vault.service.core import Progress, ServiceCore
from vault.store import Store


class PortablePart(ServiceCore):
    """Export and import of bundles, PAM files and other providers' exports."""

    def export_bundle(
        self,
        principal: Principal,
        selection: PortableSelection,
        target: Path,
        *,
        recipients: list[str] | None = None,
        passphrase: str | None = None,
        plaintext: bool = False,
        progress: Progress | None = None,
        now: datetime | None = None,
        salvage: bool = False,
    ) -> ExportSummary:
        """Write the selected items as an age-sealed bundle (or, if asked, a plain folder) (owner only).

        ``salvage``: the vault is damaged (StoreCorrupt). Export every row that can still be read,
        list what could not be in ``unreadable``, and record the export in the audit log only if the
        log can still be written (``audited``).

        Raises:
            ScopeDenied: not the owner. InvalidInput: bad recipient or target. TooLarge: passphrase bundle over its limit.
        """
        from vault.portable import bundle
        from vault.portable.export import Salvage, build_bundle

        self._policy.require_owner(principal, "export the vault")
        stamp = now or utcnow()
        keys = [bundle.parse_recipient(r) for r in recipients or []]
        if not plaintext and not keys and passphrase is None:
            raise InvalidInput("an export is encrypted: give --recipient or --passphrase-file (or --plaintext DIR)")
        scope = _selection_filter(selection)
        reader = Salvage(lambda: Store(self.settings.db_path, self._key)) if salvage else None
        try:
            files, counts = build_bundle(
                self.store, scope, selection, now=stamp, export_id=new_id(), model=self.settings.model, progress=progress, salvage=reader
            )
        finally:
            if reader is not None:
                reader.close()
        if plaintext:
            size, mode = bundle.write_directory(files, target), "none"
        elif keys:
            size, mode = bundle.write_encrypted(files, target, recipients=keys, mtime=stamp.timestamp()), "recipients"
        else:
            size, mode = bundle.write_encrypted(files, target, passphrase=passphrase, mtime=stamp.timestamp()), "passphrase"
        held = counts.memories + counts.preferences + counts.documents
        detail: dict[str, object] = {"encryption": mode, "items": held, **({"salvage": True} if salvage else {})}
        audited = True
        try:
            self._audit.record(principal, "export", detail=detail)
        except StoreCorrupt:
            if not salvage:
                raise
            audited = False  # the damaged page may be the log's own: the bundle is written all the same
        return ExportSummary(
            path=str(target), format="bundle", encryption=mode, counts=counts, bytes=size, files=len(files),
            unreadable=reader.unreadable if reader else [], audited=audited,
        )  # fmt: skip

    def export_profile(self, principal: Principal, selection: PortableSelection, now: datetime | None = None) -> str:
        """A readable Markdown profile of the selected preferences and memories (owner only)."""
        from vault.portable.markdown import render_profile

        self._policy.require_owner(principal, "export a profile")
        where, params = _selection_filter(selection).where("i")
        rows = self.store.query(f"SELECT {ITEM_COLUMNS} FROM items i WHERE {where} ORDER BY i.space, i.created_at, i.id", params)
        items = [row_to_item(r) for r in rows]
        self._audit.record(principal, "export", item_ids=[i.id for i in items], detail={"format": "markdown"})
        return render_profile(items, now or utcnow())

    def import_items(
        self, principal: Principal, batch: ImportBatch, *, dry_run: bool = False, progress: Progress | None = None
    ) -> ImportSummary:
        """Merge parsed records by id, then content hash; all in one transaction (owner only).

        Raises:
            ScopeDenied: not the owner. BadBundle: records that break the vault's rules.
        """
        from vault.portable.merge import apply

        self._policy.require_owner(principal, "import into the vault")
        batch = within_limits(batch)  # the limits `add` obeys; what breaks them is skipped with the reason
        if not dry_run:
            self._retriever.prepare()
        summary = apply(
            self.store, batch, self.settings, actor=principal.label, dry_run=dry_run, progress=progress, stage=self._retriever.stage
        )
        if not dry_run and (summary.new or summary.updated or summary.forgotten):
            detail: dict[str, object] = {"action": "import", "format": batch.format, "new": summary.new, "updated": summary.updated}
            if summary.forgotten or summary.conflicts:
                detail |= {"forgotten": summary.forgotten, "conflicts": len(summary.conflicts)}
            self._audit.record(principal, "write", detail=detail)
            # Units whose vectors the source did not carry (or carried for another model) are embedded here if
            # they are few; more join the backlog, embedded by the unlock agent or `ctxvault reindex`.
            self._index_written((lambda done, total: progress(done, total, "embedding")) if progress else None)
        return summary

    def import_source(
        self,
        principal: Principal,
        path: Path,
        fmt: ImportFormat | None = None,
        *,
        identity_file: Path | None = None,
        passphrase: str | None = None,
        space: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
        identity: str | None = None,
    ) -> ImportSummary:
        """Read a bundle, PAM file or provider export at ``path`` and import it (owner only).

        ``identity``: the text of an identity file (the console's pasted key), instead of ``identity_file``.

        Raises:
            ScopeDenied, InvalidInput, BadBundle: nothing is written on any of them.
        """
        from vault.portable import bundle
        from vault.portable.importers import read_source
        from vault.portable.spool import Spool

        self._policy.require_owner(principal, "import into the vault")
        if space is not None:
            MemoryIn(text="x", space=space)  # validates the space name
        identities = bundle.load_identities(identity_file) if identity_file else None
        if identity is not None:
            identities = bundle.identities_from(identity.encode(), "the identity given")
        # A bundle's documents wait in a sealed spool (one unlinked file, a key in memory), read back one at a time
        # as their rows are written: memory holds one document, not the bundle (issue 27).
        spool = Spool()
        try:
            batch = read_source(path, fmt, identities=identities, passphrase=passphrase, space=space, progress=progress, spool=spool)
            return self.import_items(principal, batch, dry_run=dry_run, progress=progress)
        finally:
            spool.close()

    # -- retrieval (issue 13) ---------------------------------------------------------------
    # Embeddings and the vector index are derived from the units table; these methods
    # let the owner rebuild and inspect them. Search itself is `search` above.


def _selection_filter(selection: PortableSelection) -> ItemFilter:
    """The export scope: the same selectors as a grant's clause (portable, issue 11)."""
    request = Clause(
        kinds=frozenset(selection.kinds) if selection.kinds else None,
        spaces=frozenset(selection.spaces) if selection.spaces else None,
        tags=frozenset(selection.tags) if selection.tags else None,
        max_sensitivity=selection.max_sensitivity,
    )
    return ItemFilter(request=request, since=selection.since, until=selection.until)
