"""Item history and import conflicts: read an item's versions, restore one, list and resolve conflicts."""

from __future__ import annotations

import json
from datetime import datetime

from schemas.items import Conflict, Item, ItemHistory, limit_problem
from vault import history
from vault.blob import content
from vault.chunking import chunk_text
from vault.documents import extract
from vault.errors import InvalidInput, NotFound
from vault.filters import ItemFilter
from vault.items import content_hash, unit_text, utcnow
from vault.principal import Principal
from vault.service.items import ItemsPart


class HistoryPart(ItemsPart):
    """Item history and import conflicts: read an item's versions, restore one, list and resolve conflicts."""

    def item_history(self, principal: Principal, item_id: str) -> ItemHistory:
        """An item's current state and the earlier versions the principal may read, oldest first.

        Raises:
            NotFound: no such item, forgotten, or outside the principal's reach.
        """
        scope = self._policy.read_filter(principal, "read")
        item = self._fetch(scope, item_id)
        readable = self._numbered_for(principal, self._readable_versions(scope, item))
        open_ids = [int(r[0]) for r in self.store.query("SELECT id FROM conflicts WHERE item_id = ? AND resolved_at IS NULL", [item.id])]
        self._audit.record(principal, "disclose", item_ids=[item.id], detail={"via": "item_history", "versions": len(readable)})
        return ItemHistory(
            item=item,
            current_version=history.next_version(self.store, item.id) if principal.is_owner else len(readable) + 1,
            versions=readable,
            conflicts=open_ids if principal.is_owner else [],
        )

    def restore(self, principal: Principal, item_id: str, version: int, now: datetime | None = None) -> Item:
        """Make an earlier version current again; the state it replaces is kept as a new version.

        ``version`` is numbered as ``item_history`` and ``get_item`` show the principal its versions.

        Raises:
            NotFound: no such item or version, or outside the principal's reach. ScopeDenied: may not write it.
            TooLarge, InvalidInput: the version breaks the item limits (empty text, too long, too many tags).
        """
        scope = self._policy.read_filter(principal, "read")
        item = self._fetch(scope, item_id)
        # ``version`` as the principal sees it (_numbered_for); ``chosen.version`` is the vault's own number.
        readable = self._readable_versions(scope, item)
        numbered = zip(self._numbered_for(principal, readable), readable, strict=True)
        chosen = next((v for seen, v in numbered if seen.version == version), None)
        if chosen is None:
            raise NotFound(f"item {item_id!r} has no version {version}")
        self._policy.check_write(principal, item.kind, item.space, item.tags, item.sensitivity)
        self._policy.check_write(principal, item.kind, chosen.space, chosen.tags, chosen.sensitivity)
        # The limits every write obeys: a version may have arrived in a bundle (a document's text is its title).
        if not chosen.text.strip():
            raise InvalidInput(f"version {version} of item {item_id!r} has no text")
        self._check_text(chosen.text)
        if problem := limit_problem(tags=chosen.tags, space=chosen.space):
            raise InvalidInput(problem)
        stamp = now or utcnow()
        # A document version brings its file back: its text and chunks are extracted from it again.
        file = history.version_file(self.store, item.id, chosen.version) if item.kind == "document" else None
        with self.store.transaction():
            kept = history.keep_version(self.store, item.id, replaced_by=principal.label, replaced_at=stamp)
            if file is not None:
                self._restore_file(item.id, chosen.text, chosen.content_hash, file)
            elif chosen.text != item.text and item.kind != "document":
                self._update_text(item.id, item.kind, chosen.text, item.key, now=stamp, keep=False)
                if item.kind == "preference":  # a preference's hash covers its key (as set_preference stores it)
                    self.store.execute(
                        "UPDATE items SET content_hash = ? WHERE id = ?", [content_hash(f"{item.key}: {chosen.text}"), item.id]
                    )
            self.store.execute(
                "UPDATE items SET space = ?, tags = ?, sensitivity = ?, updated_at = ? WHERE id = ?",
                [chosen.space, json.dumps(sorted(set(chosen.tags))), chosen.sensitivity, stamp.isoformat(), item.id],
            )
            if principal.is_owner:  # choosing a version is how the owner resolves an item's conflicts
                self.store.execute(
                    "UPDATE conflicts SET resolved_at = ? WHERE item_id = ? AND resolved_at IS NULL", [stamp.isoformat(), item.id]
                )
            self._audit.record(
                principal, "write", item_ids=[item.id], detail={"action": "restore", "version": chosen.version, "kept_as": kept}
            )
        self._index_written()
        return self._fetch(ItemFilter(), item.id)

    def _restore_file(self, item_id: str, title: str, digest: str, file: history.DocFile) -> None:
        """Make a kept file a document's current one: its row, title, hash and chunks (inside the caller's transaction)."""
        data = content(file.data)
        _, text = extract(data, file.mime, title)
        self.store.execute("DELETE FROM units WHERE item_id = ?", [item_id])
        self.store.execute(
            "UPDATE doc_files SET path = ?, filename = ?, mime = ?, size = ?, sha256 = ?, data = ? WHERE item_id = ?",
            [file.path, file.filename, file.mime, len(data), file.sha256, data, item_id],
        )
        self.store.execute("UPDATE items SET text = ?, content_hash = ? WHERE id = ?", [title, digest, item_id])
        for c in chunk_text(text, self.settings.chunk_chars, self.settings.chunk_overlap):
            self._insert_unit(item_id, c.seq, unit_text("document", c.text, title=title), c.start, c.end)

    def conflicts(self, principal: Principal, include_resolved: bool = False) -> list[Conflict]:
        """Items an import found changed on both sides, oldest first (owner only)."""
        self._policy.require_owner(principal, "list import conflicts")
        rows = self.store.query(
            f"""SELECT c.id, c.item_id, i.kind, c.version, c.kept, c.source, c.found_at, i.updated_at, v.saved_at
                FROM conflicts c JOIN items i ON i.id = c.item_id
                JOIN item_versions v ON v.item_id = c.item_id AND v.version = c.version
                WHERE i.deleted_at IS NULL {"" if include_resolved else "AND c.resolved_at IS NULL"} ORDER BY c.id"""
        )
        return [
            Conflict(
                id=r["id"], item_id=r["item_id"], kind=r["kind"], version=r["version"], kept=r["kept"], source=r["source"],
                found_at=datetime.fromisoformat(r["found_at"]), current_updated_at=datetime.fromisoformat(r["updated_at"]),
                other_updated_at=datetime.fromisoformat(r["saved_at"]),
            )
            for r in rows
        ]  # fmt: skip

    def resolve_conflict(self, principal: Principal, conflict_id: int, version: int | None = None, now: datetime | None = None) -> Item:
        """Close a conflict by choosing a version of its item (``None``: keep the current one) (owner only).

        Raises:
            NotFound: no open conflict with that id, or no such version.
        """
        self._policy.require_owner(principal, "resolve an import conflict")
        row = self.store.one("SELECT item_id FROM conflicts WHERE id = ? AND resolved_at IS NULL", [conflict_id])
        if row is None:
            raise NotFound(f"no open conflict {conflict_id}")
        item_id = str(row[0])
        if version is not None and version != history.next_version(self.store, item_id):
            return self.restore(principal, item_id, version, now=now)  # resolves the item's open conflicts too
        stamp = (now or utcnow()).isoformat()
        with self.store.transaction():
            self.store.execute("UPDATE conflicts SET resolved_at = ? WHERE item_id = ? AND resolved_at IS NULL", [stamp, item_id])
            self._audit.record(principal, "write", item_ids=[item_id], detail={"action": "resolve_conflict", "kept": "current"})
        return self._fetch(ItemFilter(), item_id)
