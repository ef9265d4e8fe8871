"""VaultService: the one API that the CLI, MCP and HTTP adapters call.

Every public method takes the calling principal first, asks the policy what that
principal may do, does it, and records it in the audit log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from schemas.access import AccessSummary, App, AppCreated, AuditEntry, AuditReport, ConsentRequest, ConsentStatus, Grant
from schemas.items import (
    DocumentAdded,
    DocumentDetail,
    FolderReport,
    Item,
    ItemPage,
    Kind,
    MemoryIn,
    PreferenceOut,
    RememberResult,
    SearchPage,
    SearchQuery,
    Sensitivity,
    SpaceCount,
    StatusReport,
)
from schemas.mcp import AccessReport, Authorization, OAuthClient, OAuthTokens, PreferenceList, ProfileSummary, TaskContext
from schemas.portable import ExportSummary, ImportFormat, ImportSummary
from schemas.portable import Selection as PortableSelection
from schemas.retrieval import ReindexReport, RetrievalReport
from vault.access import ConsentRequests, Grants
from vault.apps import Apps, principal_of
from vault.audit import AuditLog
from vault.chunking import chunk_text
from vault.crypto import DataKey
from vault.documents import DocumentFile, is_supported, read_document
from vault.errors import EmbedderUnavailable, InvalidInput, InvalidToken, NotFound, TooLarge, VaultError
from vault.filters import Clause, ItemFilter
from vault.items import ITEM_COLUMNS, content_hash, new_id, row_to_item, unit_text, utcnow
from vault.migrations import version
from vault.oauth import OAuthState
from vault.policy import Policy
from vault.portable.records import ImportBatch
from vault.principal import Principal
from vault.scopes import ACTIONS, KINDS, Action, format_scope, parse_scopes
from vault.search import Retriever
from vault.settings import Settings
from vault.store import Store

PREF_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
Progress = Callable[[int, int, str], None]


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


class VaultService:
    """An unlocked vault. Close it when done (or use it as a context manager)."""

    def __init__(self, store: Store, settings: Settings, key: DataKey) -> None:
        self.store = store
        self.settings = settings
        self._audit = AuditLog(store)
        self._policy = Policy(store, self._audit)
        self._retriever = Retriever(store, settings, key)

    def __enter__(self) -> VaultService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # A denial raised inside a rolled-back write is held until now; it must not be lost.
        self._audit.flush()
        self._retriever.close()
        self.store.close()

    # -- reading ---------------------------------------------------------------------------

    def _fetch(self, scope: ItemFilter, item_id: str) -> Item:
        where, params = scope.where("i")
        row = self.store.one(f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.id = ? AND {where}", [item_id, *params])
        if row is None:
            # Out of scope and missing answer alike (BRIEF §4).
            raise NotFound(f"no item {item_id!r}")
        return row_to_item(row)

    def get_item(self, principal: Principal, item_id: str) -> Item:
        """One live item the principal may read.

        Raises:
            NotFound: no such item, forgotten, or outside the principal's reach.
        """
        scope = self._policy.read_filter(principal, "read")
        item = self._fetch(scope, item_id)
        self._audit.record(principal, "disclose", item_ids=[item.id], detail={"via": "get_item"})
        return item

    def list_items(
        self,
        principal: Principal,
        kinds: list[Kind] | None = None,
        spaces: list[str] | None = None,
        tags: list[str] | None = None,
        max_sensitivity: Sensitivity | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ItemPage:
        """Live items, newest first, inside the principal's reach."""
        request = Clause(
            kinds=frozenset(kinds) if kinds else None,
            spaces=frozenset(spaces) if spaces else None,
            tags=frozenset(tags) if tags else None,
            max_sensitivity=max_sensitivity,
        )
        scope = self._policy.read_filter(principal, "read", request, since=since)
        where, params = scope.where("i")
        total = self.store.one(f"SELECT count(*) FROM items i WHERE {where}", params)
        rows = self.store.query(
            f"SELECT {ITEM_COLUMNS} FROM items i WHERE {where} ORDER BY i.created_at DESC, i.id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        items = [row_to_item(r) for r in rows]
        self._audit.record(principal, "disclose", item_ids=[i.id for i in items], detail={"via": "list_items"})
        return ItemPage(items=items, total=int(total[0]) if total else 0)

    def search(self, principal: Principal, query: SearchQuery) -> SearchPage:
        """Search inside what ``principal`` may search; records one disclosure."""
        request = Clause(
            kinds=frozenset(query.kinds) if query.kinds else None,
            spaces=frozenset(query.spaces) if query.spaces else None,
            tags=frozenset(query.tags) if query.tags else None,
            max_sensitivity=query.max_sensitivity,
        )
        scope = self._policy.read_filter(principal, "search", request, since=query.since, until=query.until)
        hits = self._retriever.search(query, scope)
        self._audit.record(principal, "disclose", item_ids=[h.item_id for h in hits], purpose=query.purpose, detail={"via": "search"})
        return SearchPage(query=query.text, hits=hits)

    def spaces(self, principal: Principal) -> list[SpaceCount]:
        """Spaces with live item counts, inside the principal's reach."""
        where, params = self._policy.read_filter(principal, "read").where("i")
        rows = self.store.query(
            f"""SELECT i.space,
                   sum(i.kind = 'memory') AS m, sum(i.kind = 'preference') AS p, sum(i.kind = 'document') AS d
                FROM items i WHERE {where} GROUP BY i.space ORDER BY i.space""",
            params,
        )
        return [SpaceCount(space=r[0], memories=r[1], preferences=r[2], documents=r[3]) for r in rows]

    def status(self, principal: Principal) -> StatusReport:
        """Counts and facts about the vault (owner only)."""
        self._policy.require_owner(principal, "read the vault status")
        live = "deleted_at IS NULL AND superseded_at IS NULL"
        counts = {
            kind: self.store.one(f"SELECT count(*) FROM items WHERE kind = ? AND {live}", [kind])[0]  # type: ignore[index]
            for kind in ("memory", "preference", "document")
        }
        forgotten = self.store.one("SELECT count(*) FROM items WHERE deleted_at IS NOT NULL")
        chunks = self.store.one("SELECT count(*) FROM units u JOIN items i ON i.id = u.item_id WHERE i.kind = 'document'")
        spaces = [r[0] for r in self.store.query(f"SELECT DISTINCT space FROM items WHERE {live} ORDER BY space")]
        size = sum(p.stat().st_size for p in self.settings.home.glob("vault.db*"))
        return StatusReport(
            home=str(self.settings.home),
            schema_version=version(self.store.conn),
            items=sum(counts.values()),
            memories=counts["memory"],
            preferences=counts["preference"],
            documents=counts["document"],
            chunks=chunks[0] if chunks else 0,
            forgotten=forgotten[0] if forgotten else 0,
            spaces=spaces,
            model=self.settings.model,
            db_bytes=size,
        )

    # -- writing memories -------------------------------------------------------------------

    def _check_text(self, text: str) -> None:
        if len(text) > self.settings.max_text_chars:
            raise TooLarge(f"text is {len(text)} characters; the limit is {self.settings.max_text_chars}")

    def _insert_item(
        self,
        principal: Principal,
        kind: Kind,
        text: str,
        *,
        space: str,
        tags: list[str],
        sensitivity: str,
        source: str,
        key: str | None = None,
        hash_of: str | None = None,
        supersedes: str | None = None,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        meta: dict[str, object] | None = None,
        item_id: str | None = None,
        now: datetime | None = None,
    ) -> str:
        stamp = (now or utcnow()).isoformat()
        item_id = item_id or new_id()
        self.store.execute(
            f"INSERT INTO items ({ITEM_COLUMNS}) VALUES ({','.join('?' * 18)})",
            [
                item_id, kind, text, key, space, json.dumps(sorted(set(tags))), sensitivity, source, principal.label,
                stamp, stamp, _iso(valid_from), _iso(valid_until), content_hash(hash_of if hash_of is not None else text),
                supersedes, None, None, json.dumps(meta or {}),
            ],
        )  # fmt: skip
        return item_id

    def _insert_unit(self, item_id: str, seq: int, text: str, start: int = 0, end: int = 0) -> None:
        self.store.execute(
            "INSERT INTO units (item_id, seq, text, start, end) VALUES (?, ?, ?, ?, ?)", [item_id, seq, text, start, end or len(text)]
        )

    def remember(self, principal: Principal, memory: MemoryIn, now: datetime | None = None) -> RememberResult:
        """Store a memory; an identical or near-identical one is updated instead of copied.

        Raises:
            ScopeDenied: the principal may not write in that space.
        """
        self._check_text(memory.text)
        self._policy.check_write(principal, "memory", memory.space, memory.tags, memory.sensitivity)
        # Dedup only against what the app may read: a match elsewhere would reveal that item.
        write_scope = ItemFilter(reach=self._policy.reach(principal, "read"))
        same_space = ItemFilter(request=Clause(kinds=frozenset({"memory"}), spaces=frozenset({memory.space})), reach=write_scope.reach)
        where, params = same_space.where("i")
        # A twin must match in sensitivity, or merging would move the text to another level;
        # an app merges only into its own memories, so provenance stays true.
        where += " AND i.sensitivity = ?" + ("" if principal.is_owner else " AND i.created_by = ?")
        params = [*params, memory.sensitivity, *([] if principal.is_owner else [principal.label])]
        twin = self.store.one(f"SELECT i.id FROM items i WHERE i.content_hash = ? AND {where}", [content_hash(memory.text), *params])
        if twin is not None:
            item = self._fetch(same_space, twin[0])
            self._audit.record(principal, "write", item_ids=[item.id], detail={"action": "unchanged"})
            return RememberResult(item=item, action="unchanged", duplicate_of=item.id, similarity=1.0)
        near = self._retriever.near_duplicate(memory.text, same_space)
        if near is not None:
            twin_item = self._fetch(same_space, near[0])
            if twin_item.sensitivity != memory.sensitivity or (
                not principal.is_owner
                and (
                    twin_item.provenance.created_by != principal.label
                    or not self._policy.allows(principal, "write", "memory", twin_item.space, twin_item.tags, twin_item.sensitivity)
                )
            ):
                near = None
        with self.store.transaction():
            if near is not None:
                item_id, similarity = near
                self._update_text(item_id, "memory", memory.text, now=now)
                self._merge_tags(item_id, memory.tags)
                action = "updated"
            else:
                item_id = self._insert_item(
                    principal, "memory", memory.text, space=memory.space, tags=memory.tags, sensitivity=memory.sensitivity,
                    source=memory.source, valid_from=memory.valid_from, valid_until=memory.valid_until, now=now,
                )  # fmt: skip
                self._insert_unit(item_id, 0, memory.text)
                action, similarity = "added", None
            self._audit.record(principal, "write", item_ids=[item_id], detail={"action": action})
        self._index_written()
        return RememberResult(
            item=self._fetch(ItemFilter(), item_id), action=action, duplicate_of=item_id if near else None, similarity=similarity
        )

    def _update_text(self, item_id: str, kind: str, text: str, key: str | None = None, now: datetime | None = None) -> None:
        stamp = (now or utcnow()).isoformat()
        self.store.execute(
            "UPDATE items SET text = ?, content_hash = ?, updated_at = ? WHERE id = ?", [text, content_hash(text), stamp, item_id]
        )
        self.store.execute("UPDATE units SET text = ? WHERE item_id = ? AND seq = 0", [unit_text(kind, text, key), item_id])

    def _merge_tags(self, item_id: str, tags: list[str]) -> None:
        if tags:
            row = self.store.one("SELECT tags FROM items WHERE id = ?", [item_id])
            merged = sorted(set(json.loads(row[0]) if row else []) | set(tags))
            self.store.execute("UPDATE items SET tags = ? WHERE id = ?", [json.dumps(merged), item_id])

    def edit(
        self,
        principal: Principal,
        item_id: str,
        *,
        text: str | None = None,
        space: str | None = None,
        tags: list[str] | None = None,
        sensitivity: Sensitivity | None = None,
        now: datetime | None = None,
    ) -> Item:
        """Change a memory's text or any item's space, tags or sensitivity in place.

        Raises:
            NotFound, ScopeDenied, InvalidInput
        """
        item = self._fetch(self._policy.read_filter(principal, "read"), item_id)
        self._policy.check_write(principal, item.kind, item.space, item.tags, item.sensitivity)
        new_space, new_tags = space or item.space, tags if tags is not None else item.tags
        new_sens = sensitivity or item.sensitivity
        self._policy.check_write(principal, item.kind, new_space, new_tags, new_sens)
        if text is not None and item.kind != "memory":
            raise InvalidInput("only a memory's text can be edited; use `pref set` or re-add the document")
        if space is not None:
            MemoryIn(text="x", space=space)  # validates the space name
        with self.store.transaction():
            if text is not None:
                self._check_text(text)
                self._update_text(item_id, item.kind, MemoryIn(text=text).text, now=now)
            self.store.execute(
                "UPDATE items SET space = ?, tags = ?, sensitivity = ?, updated_at = ? WHERE id = ?",
                [new_space, json.dumps(sorted(set(new_tags))), new_sens, (now or utcnow()).isoformat(), item_id],
            )
            self._audit.record(principal, "write", item_ids=[item_id], detail={"action": "edit"})
        self._index_written()
        return self._fetch(ItemFilter(), item_id)

    def forget(self, principal: Principal, item_id: str, now: datetime | None = None) -> Item:
        """Soft-delete an item: it leaves search (FTS and vectors) at once; `purge` erases it.

        Raises:
            NotFound, ScopeDenied
        """
        # Looked up within the delete reach: a delete-only grant works, and an item outside
        # it is "not found" rather than revealed.
        item = self._fetch(self._policy.read_filter(principal, "delete"), item_id)
        self._policy.check_delete(principal, item.kind, item.space, item.tags, item.sensitivity)
        with self.store.transaction():
            self.store.execute("UPDATE items SET deleted_at = ? WHERE id = ?", [(now or utcnow()).isoformat(), item_id])
            self.store.execute("DELETE FROM units WHERE item_id = ?", [item_id])
            self._audit.record(principal, "forget", item_ids=[item_id])
        self._index_written()
        return item.model_copy(update={"deleted_at": now or utcnow()})

    def purge(self, principal: Principal, item_id: str | None = None) -> int:
        """Erase forgotten items (or one item) for good: rows, FTS, vectors, then VACUUM.

        Raises:
            ScopeDenied: only the owner can purge.
        """
        self._policy.require_owner(principal, "purge")
        with self.store.transaction():
            if item_id is not None:
                if self.store.one("SELECT 1 FROM items WHERE id = ?", [item_id]) is None:
                    raise NotFound(f"no item {item_id!r}")
                ids = [item_id, *self._older_versions([item_id])]
            else:
                forgotten = [r[0] for r in self.store.query("SELECT id FROM items WHERE deleted_at IS NOT NULL")]
                ids = list(dict.fromkeys([*forgotten, *self._older_versions(forgotten)]))
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                marks = ",".join("?" * len(part))
                self.store.execute(f"UPDATE items SET supersedes = NULL WHERE supersedes IN ({marks})", part)
                self.store.execute(f"DELETE FROM items WHERE id IN ({marks})", part)
            self._audit.record(principal, "purge", item_ids=ids)
        # The sealed index goes first: it may hold purged vectors even if VACUUM is busy.
        self._retriever.discard_index()
        self._erase_free_space()
        return len(ids)

    def _index_written(self) -> None:
        """Embed what was just written. The write is committed already: if the model cannot
        load, its units stay pending and the next sync (or `ctxvault reindex`) embeds them."""
        try:
            self._retriever.sync()
        except EmbedderUnavailable:
            pass

    def _older_versions(self, ids: list[str]) -> list[str]:
        """Superseded values of the preferences among ``ids`` that came before them (never a live or newer one)."""
        older: list[str] = []
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            older += [r[0] for r in self.store.query(
                f"""SELECT o.id FROM items p JOIN items o ON o.kind = 'preference' AND o.pref_key = p.pref_key AND o.id != p.id
                    WHERE p.kind = 'preference' AND p.id IN ({",".join("?" * len(part))})
                      AND o.superseded_at IS NOT NULL AND o.created_at <= p.created_at""",
                part,
            )]  # fmt: skip
        return older

    def _erase_free_space(self) -> None:
        # FTS5 keeps deleted terms in old segments until a merge: optimize rewrites them,
        # secure_delete zeroes freed pages, VACUUM rebuilds the file without them.
        self.store.execute("INSERT INTO units_fts (units_fts) VALUES ('optimize')")
        self.store.execute("VACUUM")
        self.store.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- preferences ------------------------------------------------------------------------

    def _live_pref(self, scope: ItemFilter, key: str) -> Item:
        where, params = scope.where("i")
        row = self.store.one(
            f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.kind = 'preference' AND i.pref_key = ? AND {where}", [key, *params]
        )
        if row is None:
            raise NotFound(f"no preference {key!r}")
        return row_to_item(row)

    def set_preference(
        self,
        principal: Principal,
        key: str,
        value: str,
        *,
        space: str = "personal",
        tags: list[str] | None = None,
        sensitivity: Sensitivity = "low",
        source: str = "cli",
        now: datetime | None = None,
    ) -> PreferenceOut:
        """Set a preference; the previous value stays in its history.

        Raises:
            InvalidInput: a malformed key or empty value. ScopeDenied.
        """
        if not PREF_KEY.fullmatch(key):
            raise InvalidInput(f"invalid preference key {key!r}: use lowercase letters, digits, '.', '_' or '-'")
        checked = MemoryIn(text=value, space=space, tags=tags or [], sensitivity=sensitivity)
        self._check_text(checked.text)
        self._policy.check_write(principal, "preference", space, checked.tags, sensitivity)
        stamp = now or utcnow()
        with self.store.transaction():
            old = self.store.one(
                "SELECT id, text, space, tags, sensitivity FROM items WHERE kind = 'preference' AND pref_key = ? "
                "AND deleted_at IS NULL AND superseded_at IS NULL",
                [key],
            )
            if old is not None and old["text"] == checked.text and old["space"] == space and old["sensitivity"] == sensitivity:
                return PreferenceOut(key=key, value=checked.text, item=self._fetch(ItemFilter(), old["id"]))
            if old is not None:
                self._policy.check_write(principal, "preference", old["space"], json.loads(old["tags"]), old["sensitivity"])
                self.store.execute(
                    "UPDATE items SET superseded_at = ?, valid_until = ? WHERE id = ?", [stamp.isoformat(), stamp.isoformat(), old["id"]]
                )
                self.store.execute("DELETE FROM units WHERE item_id = ?", [old["id"]])
            item_id = self._insert_item(
                principal, "preference", checked.text, key=key, space=space, tags=checked.tags, sensitivity=sensitivity,
                source=source, hash_of=f"{key}: {checked.text}", supersedes=old["id"] if old else None, valid_from=stamp, now=stamp,
            )  # fmt: skip
            self._insert_unit(item_id, 0, unit_text("preference", checked.text, key))
            self._audit.record(principal, "write", item_ids=[item_id], detail={"action": "set_preference", "key": key})
        self._index_written()
        item = self._fetch(ItemFilter(), item_id)
        return PreferenceOut(key=key, value=item.text, item=item)

    def get_preference(self, principal: Principal, key: str) -> PreferenceOut:
        """The current value of one preference.

        Raises:
            NotFound: unset, or outside the principal's reach.
        """
        scope = self._policy.read_filter(principal, "read", Clause(kinds=frozenset({"preference"})))
        item = self._live_pref(scope, key)
        self._audit.record(principal, "disclose", item_ids=[item.id], detail={"via": "get_preference"})
        return PreferenceOut(key=key, value=item.text, item=item)

    def list_preferences(self, principal: Principal, spaces: list[str] | None = None) -> list[PreferenceOut]:
        """All current preferences the principal may read, by key."""
        request = Clause(kinds=frozenset({"preference"}), spaces=frozenset(spaces) if spaces else None)
        where, params = self._policy.read_filter(principal, "read", request).where("i")
        rows = self.store.query(f"SELECT {ITEM_COLUMNS} FROM items i WHERE {where} ORDER BY i.pref_key", params)
        prefs = [PreferenceOut(key=r["pref_key"], value=r["text"], item=row_to_item(r)) for r in rows]
        self._audit.record(principal, "disclose", item_ids=[p.item.id for p in prefs], detail={"via": "list_preferences"})
        return prefs

    def preference_history(self, principal: Principal, key: str) -> list[Item]:
        """Every value a preference has had, newest first (forgotten ones excluded)."""
        scope = self._policy.read_filter(principal, "read", Clause(kinds=frozenset({"preference"})))
        history = ItemFilter(request=scope.request, reach=scope.reach, include_superseded=True)
        where, params = history.where("i")
        rows = self.store.query(
            f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.pref_key = ? AND {where} ORDER BY i.created_at DESC, i.id DESC", [key, *params]
        )
        if not rows:
            raise NotFound(f"no preference {key!r}")
        items = [row_to_item(r) for r in rows]
        self._audit.record(principal, "disclose", item_ids=[i.id for i in items], detail={"via": "preference_history"})
        return items

    def unset_preference(self, principal: Principal, key: str, now: datetime | None = None) -> Item:
        """Forget a preference's current value (its history stays until purge)."""
        item = self._live_pref(self._policy.read_filter(principal, "read", Clause(kinds=frozenset({"preference"}))), key)
        return self.forget(principal, item.id, now=now)

    # -- documents --------------------------------------------------------------------------

    def add_document(
        self,
        principal: Principal,
        path: Path,
        *,
        space: str = "personal",
        tags: list[str] | None = None,
        sensitivity: Sensitivity = "low",
        now: datetime | None = None,
    ) -> DocumentAdded:
        """Add a file: unchanged files are a no-op, a changed file replaces its chunks.

        Raises:
            InvalidInput: unsupported or unreadable file. TooLarge. ScopeDenied.
        """
        checked = MemoryIn(text="x", space=space, tags=tags or [], sensitivity=sensitivity)
        self._policy.check_write(principal, "document", space, checked.tags, sensitivity)
        doc = read_document(path, self.settings.max_document_bytes)
        result = self._store_document(principal, doc, space, checked.tags, sensitivity, now)
        self._index_written()
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
            stamp = (now or utcnow()).isoformat()
            if existing is not None:
                item_id, action = existing["item_id"], "replaced"
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

    def _chunk_count(self, item_id: str) -> int:
        row = self.store.one("SELECT count(*) FROM units WHERE item_id = ?", [item_id])
        return int(row[0]) if row else 0

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
        self._index_written()
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

    # -- mcp (issue 12) ---------------------------------------------------------------------

    def preferences_for(
        self, principal: Principal, keys: list[str] | None = None, task: str | None = None, limit: int = 10
    ) -> PreferenceList:
        """Current preferences the principal may read: by key, the ones relevant to ``task``, or all."""
        if task is not None:
            page = self.search(principal, SearchQuery(text=task, kinds=["preference"], limit=limit))
            # search() has already recorded the disclosure of these items.
            items = [self._fetch(ItemFilter(), h.item_id) for h in page.hits]
            return PreferenceList(preferences=[PreferenceOut(key=i.key or "", value=i.text, item=i) for i in items])
        if not keys:
            return PreferenceList(preferences=self.list_preferences(principal))
        scope = self._policy.read_filter(principal, "read", Clause(kinds=frozenset({"preference"})))
        where, params = scope.where("i")
        marks = ",".join("?" * len(keys))
        rows = self.store.query(
            f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.pref_key IN ({marks}) AND {where} ORDER BY i.pref_key", [*keys, *params]
        )
        prefs = [PreferenceOut(key=r["pref_key"], value=r["text"], item=row_to_item(r)) for r in rows]
        self._audit.record(principal, "disclose", item_ids=[p.item.id for p in prefs], detail={"via": "preferences_for"})
        found = {p.key for p in prefs}
        return PreferenceList(preferences=prefs, missing=[k for k in dict.fromkeys(keys) if k not in found])

    def profile(self, principal: Principal) -> ProfileSummary:
        """Spaces with counts and current preferences, inside the principal's reach."""
        return ProfileSummary(spaces=self.spaces(principal), preferences=self.list_preferences(principal))

    def task_context(self, principal: Principal, task: str, limit: int = 8) -> TaskContext:
        """The in-scope items and preferences most relevant to ``task`` (one search, one disclosure each)."""
        hits = self.search(principal, SearchQuery(text=task, limit=limit, purpose="personalize")).hits
        prefs = self.preferences_for(principal, task=task, limit=limit).preferences
        return TaskContext(task=task, hits=hits, preferences=prefs)

    # OAuth 2.1 (the vault's own authorization server). The protocol steps are authenticated by
    # codes and tokens, not by a principal; only the approval is an owner's act.

    def oauth_register(self, client_name: str, redirect_uris: list[str]) -> OAuthClient:
        """Dynamic client registration (RFC 7591): a client record with no app and no access.

        Raises:
            InvalidInput: a bad redirect URI.
        """
        with self.store.transaction():
            return OAuthState(self.store).add_client("dynamic", client_name or "MCP client", redirect_uris)

    def oauth_client(self, client_id: str, metadata: dict[str, object] | None = None) -> OAuthClient:
        """The client behind ``client_id``: stored, a registered app with redirect URIs, or (given its
        fetched Client ID Metadata Document) a metadata client.

        Raises:
            NotFound: unknown client. InvalidInput: a metadata document that does not match its URL.
        """
        oauth = OAuthState(self.store)
        if metadata is not None:
            if metadata.get("client_id") != client_id or not client_id.startswith("https://"):
                raise InvalidInput("the client metadata document must be served over https and name its own URL as client_id")
            uris = metadata.get("redirect_uris")
            if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
                raise InvalidInput("the client metadata document has no redirect_uris")
            name = metadata.get("client_name")
            with self.store.transaction():
                return oauth.add_client("metadata", name if isinstance(name, str) else client_id, [str(u) for u in uris], client_id)
        try:
            return oauth.client(client_id)
        except NotFound:
            app = Apps(self.store).get(client_id)
            if not app.redirect_uris:
                raise
            return OAuthClient(client_id=client_id, kind="registered", client_name=app.name, redirect_uris=app.redirect_uris, app_id=app.id)

    def oauth_approve(
        self,
        principal: Principal,
        client_id: str,
        scopes: list[str],
        *,
        redirect_uri: str,
        code_challenge: str,
        resource: str,
        now: datetime | None = None,
    ) -> Authorization:
        """The owner approves an OAuth client: its app gets the scopes as a grant, the client a one-time code.

        Raises:
            ScopeDenied: not the owner. InvalidInput: a bad scope or redirect URI. NotFound: unknown client.
        """
        self._policy.require_owner(principal, "approve OAuth clients")
        client = self.oauth_client(client_id)
        if redirect_uri not in client.redirect_uris:
            raise InvalidInput("redirect_uri is not registered for this client")
        parsed = parse_scopes(scopes)
        stamp = now or utcnow()
        oauth, apps = OAuthState(self.store), Apps(self.store)
        with self.store.transaction():
            app_id = client.app_id
            if app_id is None:
                base = re.sub(r"[^a-z0-9_.-]+", "-", client.client_name.lower()).strip("-._")[:50] or "oauth-client"
                name = next(
                    n
                    for n in (base if i == 0 else f"{base}-{i + 1}" for i in range(1000))
                    if self.store.one("SELECT 1 FROM apps WHERE name = ?", [n]) is None
                )
                app_id = apps.add(name, now=stamp).app.id
                oauth.bind_app(client.client_id, app_id)
                self._audit.record(
                    principal, "app_add", detail={"app_id": app_id, "name": name, "oauth_client": client.client_id}, now=stamp
                )
            grant = Grants(self.store).create(app_id, parsed, purpose=f"OAuth authorization of {client.client_name}", now=stamp)
            self._audit.record(
                principal, "grant", scope=" ".join(grant.scopes), purpose=grant.purpose,
                detail={"grant_id": grant.id, "app_id": app_id, "oauth_client": client.client_id}, now=stamp,
            )  # fmt: skip
            code = oauth.issue_code(client.client_id, app_id, redirect_uri, code_challenge, resource, grant.scopes, stamp)
        return Authorization(code=code, app_id=app_id, grant_id=grant.id)

    def oauth_exchange(
        self, client_id: str, code: str, redirect_uri: str, code_verifier: str, resource: str | None, now: datetime | None = None
    ) -> OAuthTokens:
        """Trade a one-time code (PKCE S256 verified) for an access and a refresh token.

        Raises:
            InvalidToken: any mismatch, reuse or expiry (one error for all).
        """
        stamp = now or utcnow()
        oauth = OAuthState(self.store)
        with self.store.transaction():
            row = oauth.redeem_code(code, client_id, redirect_uri, code_verifier, resource, stamp)
            issued = None
            if row is not None:
                scopes = json.loads(row["scopes"])
                issued = oauth.issue_tokens(row["code_hash"], client_id, row["app_id"], row["resource"], scopes, stamp)
        # Raised after the commit: refusing a reused code revokes what its first use issued.
        if issued is None:
            raise InvalidToken("invalid authorization code")
        return issued

    def oauth_refresh(self, client_id: str, refresh_token: str, resource: str | None, now: datetime | None = None) -> OAuthTokens:
        """Rotate a refresh token; presenting a used one revokes every token of its authorization.

        Raises:
            InvalidToken
        """
        with self.store.transaction():
            issued = OAuthState(self.store).rotate_refresh(refresh_token, client_id, resource, now or utcnow())
        # Raised after the commit: refusing a reused refresh token revokes its whole family.
        if issued is None:
            raise InvalidToken("invalid refresh token")
        return issued

    def authenticate_oauth(self, access_token: str, resource: str, now: datetime | None = None) -> Principal:
        """The app an access token was issued to, if it is live and meant for ``resource`` (RFC 8707 audience).

        Raises:
            InvalidToken
        """
        granted = OAuthState(self.store).authenticate(access_token, now or utcnow())
        app = Apps(self.store).find(granted.app_id)
        if app is None or granted.resource != resource:
            raise InvalidToken("invalid or expired access token")
        return principal_of(app)

    def missing_scope(self, principal: Principal, action: Action, kind: str | None = None) -> str | None:
        """The scope to ask for when ``principal`` holds nothing at all for ``action`` (HTTP step-up), else None."""
        if self._policy.reach(principal, action):
            return None
        return f"{action}:{kind or '*'}"

    def access_report(self, principal: Principal, now: datetime | None = None) -> AccessReport:
        """The principal's live access plus every scope form it could request (never which spaces exist)."""
        summary = self.list_access(principal, now=now)
        requestable = [f"{a}:{k}" for a in ACTIONS for k in KINDS if k != "profile" or a in ("search", "read")]
        return AccessReport(**summary.model_dump(), requestable=requestable)

    # -- access (issue 4) -------------------------------------------------------------------
    # Apps, grants, consent requests and the audit log. Owner-only operations call
    # require_owner; the consent decision has no app-callable path (BRIEF §4).

    def add_app(self, principal: Principal, name: str, redirect_uris: list[str] | None = None, now: datetime | None = None) -> AppCreated:
        """Register an app with no access; its token is in the result, shown this once.

        Raises:
            InvalidInput: a malformed or taken name. ScopeDenied: not the owner.
        """
        self._policy.require_owner(principal, "register apps")
        with self.store.transaction():
            created = Apps(self.store).add(name, redirect_uris, now=now)
            self._audit.record(principal, "app_add", detail={"app_id": created.app.id, "name": name}, now=now)
        return created

    def list_apps(self, principal: Principal) -> list[App]:
        """Every registered app (owner only)."""
        self._policy.require_owner(principal, "list apps")
        return Apps(self.store).all()

    def show_app(self, principal: Principal, name: str, now: datetime | None = None) -> AccessSummary:
        """One app with its grants and pending consent requests (owner only).

        Raises:
            NotFound
        """
        self._policy.require_owner(principal, "inspect apps")
        return self._access_summary(principal_of(Apps(self.store).get(name)), now)

    def rotate_app_token(self, principal: Principal, name: str, now: datetime | None = None) -> AppCreated:
        """Give an app a new token; the old one stops working at once."""
        self._policy.require_owner(principal, "rotate app tokens")
        with self.store.transaction():
            created = Apps(self.store).rotate_token(name)
            self._audit.record(principal, "app_rotate_token", detail={"app_id": created.app.id}, now=now)
        return created

    def remove_app(self, principal: Principal, name: str, now: datetime | None = None) -> App:
        """Unregister an app: its token stops working, its grants are revoked, its requests denied."""
        self._policy.require_owner(principal, "remove apps")
        with self.store.transaction():
            app = Apps(self.store).get(name)
            revoked = Grants(self.store).revoke_app(app.id, now=now)
            consents = ConsentRequests(self.store)
            for request in consents.query(status="pending", app_id=app.id, now=now):
                consents.decide(request.id, "denied", now=now)
            # OAuth tokens die with the app, and its clients must be approved afresh.
            OAuthState(self.store).revoke_app(app.id, now=now or utcnow())
            self.store.execute("UPDATE oauth_clients SET app_id = NULL WHERE app_id = ?", [app.id])
            Apps(self.store).remove(app.id)
            self._audit.record(
                principal, "app_remove", detail={"app_id": app.id, "name": app.name, "grants_revoked": [g.id for g in revoked]}, now=now
            )
        return app

    def authenticate_app(self, token: str, now: datetime | None = None) -> Principal:
        """The app principal holding ``token`` (MCP stdio: CTXVAULT_APP_TOKEN; HTTP: bearer).

        Raises:
            InvalidToken: unknown, rotated or removed token.
        """
        with self.store.transaction():
            return principal_of(Apps(self.store).authenticate(token, now=now))

    def principal_for_app(self, name: str) -> Principal:
        """The principal of a registered app, for the owner's `--as APP` preview.

        Raises:
            NotFound
        """
        return principal_of(Apps(self.store).get(name))

    def grant(
        self,
        principal: Principal,
        app: str,
        scopes: list[str],
        *,
        purpose: str | None = None,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Grant:
        """Lend scopes to an app directly (owner only).

        Raises:
            InvalidInput: a malformed, unknown or owner-only scope; a past expiry. NotFound: no such app.
        """
        self._policy.require_owner(principal, "grant access")
        parsed = parse_scopes(scopes)
        with self.store.transaction():
            target = Apps(self.store).get(app)
            created = Grants(self.store).create(target.id, parsed, purpose=purpose, expires_at=expires_at, now=now)
            self._audit.record(
                principal, "grant", scope=" ".join(created.scopes), purpose=purpose,
                detail={"grant_id": created.id, "app_id": target.id, "expires_at": _iso(expires_at)}, now=now,
            )  # fmt: skip
        return created

    def list_grants(
        self, principal: Principal, app: str | None = None, active_only: bool = False, now: datetime | None = None
    ) -> list[Grant]:
        """Grants, oldest first, for all apps or one (owner only)."""
        self._policy.require_owner(principal, "list grants")
        app_id = Apps(self.store).get(app).id if app else None
        return Grants(self.store).query(app_id=app_id, active_only=active_only, now=now)

    def revoke(self, principal: Principal, grant_id: str, now: datetime | None = None) -> Grant:
        """Revoke one grant; the app loses it on its next call.

        Raises:
            NotFound
        """
        self._policy.require_owner(principal, "revoke grants")
        with self.store.transaction():
            grant = Grants(self.store).revoke(grant_id, now=now)
            self._audit.record(
                principal, "revoke", scope=" ".join(grant.scopes), detail={"grant_id": grant.id, "app_id": grant.app_id}, now=now
            )
        return grant

    def revoke_app(self, principal: Principal, app: str, now: datetime | None = None) -> list[Grant]:
        """Revoke every grant of one app; return the grants revoked."""
        self._policy.require_owner(principal, "revoke grants")
        with self.store.transaction():
            target = Apps(self.store).get(app)
            revoked = Grants(self.store).revoke_app(target.id, now=now)
            self._audit.record(principal, "revoke", detail={"app_id": target.id, "grant_ids": [g.id for g in revoked]}, now=now)
        return revoked

    def request_access(
        self,
        principal: Principal,
        scopes: list[str],
        purpose: str,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> ConsentRequest:
        """An app asks for scopes; the owner decides out of band (``link`` is the consent page path).

        Raises:
            InvalidInput: a malformed or owner-only scope, or no purpose. ScopeDenied: the owner needs no consent.
        """
        if principal.app_id is None:
            raise InvalidInput("the owner needs no consent; use `ctxvault grant` to lend access to an app")
        parsed = parse_scopes(scopes)
        with self.store.transaction():
            request = ConsentRequests(self.store).create(principal.app_id, parsed, purpose, grant_expires_at=expires_at, now=now)
            self._audit.record(
                principal, "consent_request", scope=" ".join(request.scopes), purpose=request.purpose,
                detail={"consent_id": request.id}, now=now,
            )  # fmt: skip
        return request

    def consent_status(self, principal: Principal, request_id: str, now: datetime | None = None) -> ConsentRequest:
        """One consent request, for the owner or the app that made it.

        Raises:
            NotFound: no such request, or another app's.
        """
        request = ConsentRequests(self.store).get(request_id, now=now)
        if not principal.is_owner and request.app_id != principal.app_id:
            raise NotFound(f"no consent request {request_id!r}")
        return request

    def list_consent(
        self, principal: Principal, status: ConsentStatus | None = "pending", app: str | None = None, now: datetime | None = None
    ) -> list[ConsentRequest]:
        """Consent requests, oldest first; pending ones by default (owner only)."""
        self._policy.require_owner(principal, "list consent requests")
        app_id = Apps(self.store).get(app).id if app else None
        return ConsentRequests(self.store).query(status=status, app_id=app_id, now=now)

    def approve_consent(
        self,
        principal: Principal,
        request_id: str,
        *,
        scopes: list[str] | None = None,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Grant:
        """Approve a pending request, optionally narrowed (fewer or narrower scopes, earlier expiry).

        Raises:
            NotFound. InvalidInput: not pending, or the approval is wider than the request.
            ScopeDenied: only the owner can approve.
        """
        self._policy.require_owner(principal, "approve consent requests")
        consents = ConsentRequests(self.store)
        with self.store.transaction():
            request = consents.pending(request_id, now=now)
            asked = parse_scopes(request.scopes)
            approved = parse_scopes(scopes) if scopes is not None else asked
            wider = [s for s in approved if not any(a.covers(s) for a in asked)]
            if wider:
                raise InvalidInput(f"scope {format_scope(wider[0])} was not requested; an approval can only narrow the request")
            if request.grant_expires_at is not None and (expires_at is None or expires_at > request.grant_expires_at):
                expires_at = min(expires_at or request.grant_expires_at, request.grant_expires_at)
            created = Grants(self.store).create(
                request.app_id, approved, purpose=request.purpose, expires_at=expires_at, consent_id=request.id, now=now
            )
            consents.decide(request.id, "approved", grant_id=created.id, now=now)
            self._audit.record(
                principal, "consent_approve", scope=" ".join(created.scopes), purpose=request.purpose,
                detail={"consent_id": request.id, "grant_id": created.id, "app_id": request.app_id,
                        "narrowed": created.scopes != request.scopes, "expires_at": _iso(expires_at)},
                now=now,
            )  # fmt: skip
        return created

    def deny_consent(self, principal: Principal, request_id: str, now: datetime | None = None) -> ConsentRequest:
        """Deny a pending request; the app keeps whatever it had before.

        Raises:
            NotFound. InvalidInput: not pending. ScopeDenied: only the owner can deny.
        """
        self._policy.require_owner(principal, "deny consent requests")
        consents = ConsentRequests(self.store)
        with self.store.transaction():
            request = consents.pending(request_id, now=now)
            decided = consents.decide(request.id, "denied", now=now)
            self._audit.record(
                principal, "consent_deny", scope=" ".join(request.scopes), purpose=request.purpose,
                detail={"consent_id": request.id, "app_id": request.app_id}, now=now,
            )  # fmt: skip
        return decided

    def _access_summary(self, target: Principal, now: datetime | None) -> AccessSummary:
        if target.app_id is None:
            return AccessSummary(principal=target.label, scopes=["*"], grants=[], pending=[])
        grants = Grants(self.store).query(app_id=target.app_id, active_only=True, now=now)
        pending = ConsentRequests(self.store).query(status="pending", app_id=target.app_id, now=now)
        return AccessSummary(
            principal=target.label,
            app=Apps(self.store).find(target.app_id),
            scopes=list(dict.fromkeys(s for g in grants for s in g.scopes)),
            grants=grants,
            pending=pending,
        )

    def list_access(self, principal: Principal, now: datetime | None = None) -> AccessSummary:
        """What the calling principal may do right now: live grants, their scopes, pending requests."""
        return self._access_summary(principal, now)

    def audit_entries(
        self,
        principal: Principal,
        app: str | None = None,
        since: datetime | None = None,
        event: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Audit log entries, oldest first; ``limit`` keeps the newest (owner only).

        Raises:
            NotFound: ``app`` names no registered app (a removed app's id still works).
        """
        self._policy.require_owner(principal, "read the audit log")
        app_id = None
        if app is not None:
            found = Apps(self.store).find(app) or next((a for a in Apps(self.store).all() if a.name == app), None)
            app_id = found.id if found else app if self.store.one("SELECT 1 FROM audit WHERE app_id = ?", [app]) else None
            if app_id is None:
                raise NotFound(f"no app {app!r} in the vault or its audit log")
        return self._audit.entries(app_id=app_id, since=since, event=event, limit=limit)

    def verify_audit(self, principal: Principal) -> AuditReport:
        """Check the audit log's hash chain end to end (owner only).

        Raises:
            AuditTampered: with the sequence number of the first entry that fails.
        """
        self._policy.require_owner(principal, "verify the audit log")
        return self._audit.verify()

    # -- portable (issue 11) ----------------------------------------------------------------
    # Bundles, profiles and importers live in vault/portable/; these methods check who
    # asks, read or write the store, and record the event. Imported lazily: PAM's models
    # and pyrage stay out of commands that do not export or import.

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
    ) -> ExportSummary:
        """Write the selected items as an age-sealed bundle (or, if asked, a plain folder) (owner only).

        Raises:
            ScopeDenied: not the owner. InvalidInput: bad recipient or target. TooLarge: passphrase bundle over its limit.
        """
        from vault.portable import bundle
        from vault.portable.export import build_bundle

        self._policy.require_owner(principal, "export the vault")
        stamp = now or utcnow()
        keys = [bundle.parse_recipient(r) for r in recipients or []]
        if not plaintext and not keys and passphrase is None:
            raise InvalidInput("an export is encrypted: give --recipient or --passphrase-file (or --plaintext DIR)")
        scope = _selection_filter(selection)
        files, counts = build_bundle(
            self.store, scope, selection, now=stamp, export_id=new_id(), model=self.settings.model, progress=progress
        )
        if plaintext:
            size, mode = bundle.write_directory(files, target), "none"
        elif keys:
            size, mode = bundle.write_encrypted(files, target, recipients=keys, mtime=stamp.timestamp()), "recipients"
        else:
            size, mode = bundle.write_encrypted(files, target, passphrase=passphrase, mtime=stamp.timestamp()), "passphrase"
        held = counts.memories + counts.preferences + counts.documents
        self._audit.record(principal, "export", detail={"encryption": mode, "items": held})
        return ExportSummary(path=str(target), format="bundle", encryption=mode, counts=counts, bytes=size, files=len(files))

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
        summary = apply(self.store, batch, self.settings, actor=principal.label, dry_run=dry_run, progress=progress)
        if not dry_run and (summary.new or summary.updated):
            detail: dict[str, object] = {"action": "import", "format": batch.format, "new": summary.new, "updated": summary.updated}
            self._audit.record(principal, "write", detail=detail)
            # Units whose vectors the source did not carry (or carried for another model) are embedded here.
            self._retriever.sync((lambda done, total: progress(done, total, "embedding")) if progress else None)
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
    ) -> ImportSummary:
        """Read a bundle, PAM file or provider export at ``path`` and import it (owner only).

        Raises:
            ScopeDenied, InvalidInput, BadBundle: nothing is written on any of them.
        """
        from vault.portable import bundle
        from vault.portable.importers import read_source

        self._policy.require_owner(principal, "import into the vault")
        if space is not None:
            MemoryIn(text="x", space=space)  # validates the space name
        identities = bundle.load_identities(identity_file) if identity_file else None
        batch = read_source(path, fmt, identities=identities, passphrase=passphrase, space=space)
        return self.import_items(principal, batch, dry_run=dry_run, progress=progress)

    # -- retrieval (issue 13) ---------------------------------------------------------------
    # Embeddings and the vector index are derived from the units table; these methods
    # let the owner rebuild and inspect them. Search itself is `search` above.

    def reindex(self, principal: Principal, progress: Callable[[int, int], None] | None = None) -> ReindexReport:
        """Re-embed units lacking a vector of the configured model and rebuild the sealed index (owner only).

        Raises:
            ScopeDenied: not the owner. EmbedderUnavailable: the model cannot be loaded.
        """
        self._policy.require_owner(principal, "reindex the vault")
        embedded = self._retriever.reindex(progress)
        st = self._retriever.stats()
        return ReindexReport(embedded=embedded, model=st.model, index_kind=st.index_kind, index_size=st.index_size)

    def retrieval_stats(self, principal: Principal) -> RetrievalReport:
        """Model, backend, vector counts and index state (owner only)."""
        self._policy.require_owner(principal, "read the retrieval state")
        st = self._retriever.stats()
        return RetrievalReport(
            model=st.model, backend=st.backend, units=st.units, vectors=st.vectors, stale_vectors=st.stale_vectors,
            missing_vectors=st.missing_vectors, index_kind=st.index_kind, index_size=st.index_size, generation=st.generation,
        )  # fmt: skip


def _selection_filter(selection: PortableSelection) -> ItemFilter:
    """The export scope: the same selectors as a grant's clause (portable, issue 11)."""
    request = Clause(
        kinds=frozenset(selection.kinds) if selection.kinds else None,
        spaces=frozenset(selection.spaces) if selection.spaces else None,
        tags=frozenset(selection.tags) if selection.tags else None,
        max_sensitivity=selection.max_sensitivity,
    )
    return ItemFilter(request=request, since=selection.since, until=selection.until)


__all__ = ["Progress", "VaultError", "VaultService"]
