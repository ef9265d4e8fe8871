"""Documents: files and folders split into chunks."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from schemas.items import (
    DocumentAdded,
    DocumentDetail,
    FolderReport,
    Item,
    ItemPage,
    MemoryIn,
    Sensitivity,
)
from vault import history
from vault.chunking import chunk_text
from vault.documents import DocumentFile, is_supported, read_document
from vault.errors import InvalidInput, NotFound
from vault.filters import Clause
from vault.items import content_hash, unit_text, utcnow
from vault.principal import Principal
from vault.service.core import Progress
from vault.service.items import ItemsPart


class LibraryPart(ItemsPart):
    """Documents: files and folders split into chunks."""

    def add_document(
        self,
        principal: Principal,
        path: Path,
        *,
        space: str = "personal",
        tags: list[str] | None = None,
        sensitivity: Sensitivity = "low",
        progress: Progress | None = None,
        origin: str | None = None,
        now: datetime | None = None,
    ) -> DocumentAdded:
        """Add a file: unchanged files are a no-op, a changed file replaces its chunks.

        Its chunks are searchable by keywords at once; a few are embedded before this returns
        (``progress`` counts them), more join the embedding backlog.

        ``origin`` is recorded as the document's path instead of ``path`` (an upload read from a temporary
        file is ``upload:<its name>``): the same origin again is unchanged or replaced, never a second copy.

        Raises:
            InvalidInput: unsupported or unreadable file. TooLarge. ScopeDenied.
        """
        checked = MemoryIn(text="x", space=space, tags=tags or [], sensitivity=sensitivity)
        self._policy.check_write(principal, "document", space, checked.tags, sensitivity)
        doc = read_document(path, self.settings.max_document_bytes)
        if origin is not None:
            doc = replace(doc, path=Path(origin))
        result = self._store_document(principal, doc, space, checked.tags, sensitivity, now)
        self._index_written((lambda done, total: progress(done, total, "embedding chunks")) if progress else None)
        return result

    def _store_document(
        self, principal: Principal, doc: DocumentFile, space: str, tags: list[str], sensitivity: str, now: datetime | None
    ) -> DocumentAdded:
        with self.store.transaction():
            existing = self.store.one(
                "SELECT f.item_id, f.sha256 FROM doc_files f JOIN items i ON i.id = f.item_id WHERE f.path = ? AND i.deleted_at IS NULL",
                [str(doc.path)],
            )
            if existing is not None and existing["sha256"] == doc.sha256:
                return DocumentAdded(
                    item_id=existing["item_id"], path=str(doc.path), action="unchanged", chunks=self._chunk_count(existing["item_id"])
                )
            chunks = chunk_text(doc.text, self.settings.chunk_chars, self.settings.chunk_overlap)
            at = now or utcnow()
            stamp = at.isoformat()
            if existing is not None:
                item_id, action = existing["item_id"], "replaced"
                # The previous title, metadata and file become a version: its content stays restorable.
                history.keep_version(self.store, item_id, replaced_by=principal.label, replaced_at=at)
                self.store.execute("DELETE FROM units WHERE item_id = ?", [item_id])
                self.store.execute(
                    "UPDATE items SET text = ?, content_hash = ?, updated_at = ? WHERE id = ?",
                    [doc.title, content_hash(doc.text), stamp, item_id],
                )
                self.store.execute(
                    "UPDATE doc_files SET filename = ?, mime = ?, size = ?, sha256 = ?, data = ? WHERE item_id = ?",
                    [doc.filename, doc.mime, len(doc.data), doc.sha256, doc.data, item_id],
                )
            else:
                action = "added"
                item_id = self._insert_item(
                    principal, "document", doc.title, space=space, tags=tags, sensitivity=sensitivity,
                    source=f"document:{doc.path}", hash_of=doc.text, meta={"chars": len(doc.text)}, now=now,
                )  # fmt: skip
                self.store.execute(
                    "INSERT INTO doc_files (item_id, path, filename, mime, size, sha256, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [item_id, str(doc.path), doc.filename, doc.mime, len(doc.data), doc.sha256, doc.data],
                )
            for c in chunks:
                self._insert_unit(item_id, c.seq, unit_text("document", c.text, title=doc.title), c.start, c.end)
            self._audit.record(principal, "write", item_ids=[item_id], detail={"action": f"document_{action}"})
        return DocumentAdded(item_id=item_id, path=str(doc.path), action=action, chunks=len(chunks))

    def add_folder(
        self,
        principal: Principal,
        folder: Path,
        *,
        space: str = "personal",
        tags: list[str] | None = None,
        sensitivity: Sensitivity = "low",
        progress: Progress | None = None,
        now: datetime | None = None,
    ) -> FolderReport:
        """Add every supported file under ``folder``; unreadable files are skipped with a reason."""
        if not folder.is_dir():
            raise InvalidInput(f"{folder} is not a folder")
        checked = MemoryIn(text="x", space=space, tags=tags or [], sensitivity=sensitivity)
        self._policy.check_write(principal, "document", space, checked.tags, sensitivity)
        files = sorted(
            p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        report = FolderReport(added=0, replaced=0, unchanged=0)
        for n, path in enumerate(files, 1):
            if progress:
                progress(n, len(files), path.name)
            if not is_supported(path):
                report.skipped.append(f"{path}: unsupported type")
                continue
            try:
                doc = read_document(path, self.settings.max_document_bytes)
            except InvalidInput as exc:  # TooLarge is an InvalidInput
                report.skipped.append(f"{path}: {exc.message}")
                continue
            added = self._store_document(principal, doc, space, checked.tags, sensitivity, now)
            report.documents.append(added)
            setattr(report, added.action, getattr(report, added.action) + 1)
        self._index_written((lambda done, total: progress(done, total, "embedding chunks")) if progress else None)
        return report

    def list_documents(self, principal: Principal, limit: int = 100, offset: int = 0) -> ItemPage:
        """Documents the principal may read."""
        return self.list_items(principal, kinds=["document"], limit=limit, offset=offset)

    def show_document(self, principal: Principal, item_id: str) -> DocumentDetail:
        """A document with its file facts and chunk texts.

        Raises:
            NotFound
        """
        item = self._fetch(self._policy.read_filter(principal, "read", Clause(kinds=frozenset({"document"}))), item_id)
        f = self.store.one("SELECT path, filename, mime, size, sha256 FROM doc_files WHERE item_id = ?", [item_id])
        if f is None:
            raise NotFound(f"no document {item_id!r}")
        chunks = [r[0] for r in self.store.query("SELECT text FROM units WHERE item_id = ? ORDER BY seq", [item_id])]
        self._audit.record(principal, "disclose", item_ids=[item_id], detail={"via": "show_document"})
        return DocumentDetail(
            item=item, path=f["path"], filename=f["filename"], mime=f["mime"], size=f["size"], sha256=f["sha256"], chunks=chunks
        )

    def remove_document(self, principal: Principal, item_id: str) -> Item:
        """Forget a document and its chunks."""
        item = self._fetch(self._policy.read_filter(principal, "read", Clause(kinds=frozenset({"document"}))), item_id)
        return self.forget(principal, item.id)
