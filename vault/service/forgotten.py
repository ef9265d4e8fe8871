"""Forgotten items: what ``forget`` set aside and ``purge`` has not erased yet, listed, read and brought back (owner only)."""

from __future__ import annotations

from pathlib import PurePosixPath

from schemas.items import Item, ItemPage
from vault.chunking import chunk_text
from vault.documents import extract
from vault.errors import InvalidInput, NotFound
from vault.items import ITEM_COLUMNS, row_to_item, unit_text
from vault.principal import Principal
from vault.service.items import ItemsPart


class ForgottenPart(ItemsPart):
    """Forgotten items: list, read and unforget them (owner only); ``purge`` erases them."""

    def forgotten_items(self, principal: Principal, limit: int = 50, offset: int = 0) -> ItemPage:
        """Forgotten items, most recently forgotten first (owner only)."""
        self._policy.require_owner(principal, "list forgotten items")
        total = self.store.one("SELECT count(*) FROM items WHERE deleted_at IS NOT NULL")
        rows = self.store.query(
            f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.deleted_at IS NOT NULL ORDER BY i.deleted_at DESC, i.id DESC LIMIT ? OFFSET ?",
            [limit, offset],
        )
        items = [row_to_item(r) for r in rows]
        self._audit.record(principal, "disclose", item_ids=[i.id for i in items], detail={"via": "forgotten_items"})
        return ItemPage(items=items, total=int(total[0]) if total else 0)

    def forgotten_item(self, principal: Principal, item_id: str) -> Item:
        """One forgotten item (owner only).

        Raises:
            NotFound: no such item, or it is not forgotten.
        """
        self._policy.require_owner(principal, "read a forgotten item")
        item = self._forgotten(item_id)
        self._audit.record(principal, "disclose", item_ids=[item.id], detail={"via": "forgotten_item"})
        return item

    def unforget(self, principal: Principal, item_id: str) -> Item:
        """Bring a forgotten item back: live again, searchable again (its units rebuilt) (owner only).

        Raises:
            NotFound: no such forgotten item. InvalidInput: a preference whose key has a live value again.
        """
        self._policy.require_owner(principal, "unforget an item")
        item = self._forgotten(item_id)
        with self.store.transaction():
            if item.kind == "preference":
                live = self.store.one(
                    "SELECT id FROM items WHERE kind = 'preference' AND pref_key = ? AND deleted_at IS NULL AND superseded_at IS NULL",
                    [item.key],
                )
                if live is not None:
                    raise InvalidInput(f"preference {item.key!r} has a value again ({live[0]}): set it instead of unforgetting this one")
            self.store.execute("UPDATE items SET deleted_at = NULL WHERE id = ?", [item.id])
            self._rebuild_units(item)
            self._audit.record(principal, "write", item_ids=[item.id], detail={"action": "unforget"})
        self._index_written()
        return self._fetch_any(item.id)

    def _forgotten(self, item_id: str) -> Item:
        row = self.store.one(f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.id = ? AND i.deleted_at IS NOT NULL", [item_id])
        if row is None:
            raise NotFound(f"no forgotten item {item_id!r}")
        return row_to_item(row)

    def _fetch_any(self, item_id: str) -> Item:
        row = self.store.one(f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.id = ?", [item_id])
        if row is None:
            raise NotFound(f"no item {item_id!r}")
        return row_to_item(row)

    def _rebuild_units(self, item: Item) -> None:
        """The searchable units ``forget`` deleted, made again from what the item still holds."""
        self.store.execute("DELETE FROM units WHERE item_id = ?", [item.id])
        if item.kind == "memory":
            self._insert_unit(item.id, 0, unit_text("memory", item.text, at=item.valid_from or item.provenance.created_at))
        elif item.kind == "preference":
            self._insert_unit(item.id, 0, unit_text("preference", item.text, item.key))
        else:
            f = self.store.one("SELECT filename, mime, data FROM doc_files WHERE item_id = ?", [item.id])
            if f is None:
                raise NotFound(f"document {item.id!r} has no stored file")
            title, text = extract(bytes(f["data"]), f["mime"], PurePosixPath(f["filename"]).stem)
            for c in chunk_text(text, self.settings.chunk_chars, self.settings.chunk_overlap):
                self._insert_unit(item.id, c.seq, unit_text("document", c.text, title=title), c.start, c.end)
