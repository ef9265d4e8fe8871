"""Items in general and memories: read, list, search, remember, edit, forget, purge."""

from __future__ import annotations

import json
from datetime import datetime

from schemas.items import (
    Item,
    ItemPage,
    ItemVersion,
    Kind,
    MemoryIn,
    RememberResult,
    SearchPage,
    SearchQuery,
    Sensitivity,
    SimilarItem,
    SpaceCount,
    StatusReport,
    limit_problem,
)
from vault import history
from vault.dates import date_context
from vault.dedup import MERGE_FLOOR, merges
from vault.errors import InvalidInput, NotFound
from vault.filters import Clause, ItemFilter
from vault.history import keep_version
from vault.items import ITEM_COLUMNS, content_hash, row_to_item, unit_text, utcnow
from vault.migrations import version
from vault.principal import Principal
from vault.service.core import ServiceCore

SIMILAR_LIMIT = 5  # neighbours compared and reported per remember
SNIPPET_CHARS = 200


class ItemsPart(ServiceCore):
    """Items in general and memories: read, list, search, remember, edit, forget, purge."""

    def get_item(self, principal: Principal, item_id: str, *, versions: bool = False) -> Item:
        """One live item the principal may read; with ``versions``, its earlier versions that the principal may read too.

        Raises:
            NotFound: no such item, forgotten, or outside the principal's reach.
        """
        scope = self._policy.read_filter(principal, "read")
        item = self._fetch(scope, item_id)
        detail: dict[str, object] = {"via": "get_item"}
        if versions:
            kept = self._numbered_for(principal, self._readable_versions(scope, item))
            item = item.model_copy(update={"versions": kept})
            detail["versions"] = len(kept)
        self._audit.record(principal, "disclose", item_ids=[item.id], detail=detail)
        return item

    def _readable_versions(self, scope: ItemFilter, item: Item) -> list[ItemVersion]:
        """The item's kept versions inside ``scope``'s reach, oldest first: each is checked like an item, so an
        earlier state in another space or at a higher sensitivity stays hidden from an app whose grant does not reach it."""
        return [v for v in history.versions(self.store, item.id) if scope.allows(item.kind, v.space, v.tags, v.sensitivity)]

    @staticmethod
    def _numbered_for(principal: Principal, readable: list[ItemVersion]) -> list[ItemVersion]:
        """The versions as ``principal`` sees them: the owner by the vault's numbers, anyone else numbered
        1..n among the versions it may read, so neither a gap nor the current number reveals a hidden version.
        A non-owner's ``restore`` takes these numbers."""
        if principal.is_owner:
            return readable
        return [v.model_copy(update={"version": n}) for n, v in enumerate(readable, 1)]

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
        # Newest first from the index in that order (m0009), so a page reads its rows only; a kind filter is
        # selective enough for the planner's own choice (the kind index, then a sort of the few it finds).
        order = "INDEXED BY items_live_new" if not scope.include_superseded and not kinds else ""
        rows = self.store.query(
            f"SELECT {ITEM_COLUMNS} FROM items i {order} WHERE {where} ORDER BY i.created_at DESC, i.id DESC LIMIT ? OFFSET ?",
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
        # Each from a partial index (m0009): one pass over the live items' (space, kind) entries, not their rows.
        counts = dict.fromkeys(("memory", "preference", "document"), 0)
        spaces: list[str] = []
        for space, kind, n in self.store.query(
            f"SELECT space, kind, count(*) FROM items INDEXED BY items_live_space WHERE {live} GROUP BY space, kind ORDER BY space"
        ):
            if kind in counts:
                counts[kind] += int(n)
            if not spaces or spaces[-1] != space:
                spaces.append(space)
        forgotten = self.store.one("SELECT count(*) FROM items WHERE deleted_at IS NOT NULL")
        chunks = self.store.one("SELECT count(*) FROM units u JOIN items i ON i.id = u.item_id WHERE i.kind = 'document'")
        size = sum(p.stat().st_size for p in self.settings.home.glob("vault.db*"))
        waiting_items, waiting_units = self._retriever.backlog()
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
            waiting_items=waiting_items,
            waiting_units=waiting_units,
        )

    def remember(
        self,
        principal: Principal,
        memory: MemoryIn,
        *,
        merge: bool | None = None,
        update_id: str | None = None,
        now: datetime | None = None,
    ) -> RememberResult:
        """Store a memory: an exact duplicate stays one item, the same fact said again updates it, and
        near-duplicates that may state another fact are kept apart and returned in ``similar``.

        ``merge=True`` updates the most similar memory even when it may be another fact, ``merge=False``
        never updates one; ``update_id`` names the memory to update (one of a previous result's ``similar``).

        Raises:
            ScopeDenied: the principal may not write in that space. NotFound: ``update_id`` is not a
            memory the principal may read. InvalidInput: it is in another space or sensitivity.
        """
        self._check_text(memory.text)
        self._policy.check_write(principal, "memory", memory.space, memory.tags, memory.sensitivity)
        now = now or utcnow()  # one stamp for the row and for resolving the text's relative dates
        # Dedup only against what the app may read: a match elsewhere would reveal that item.
        reach = self._policy.reach(principal, "read")
        same_space = ItemFilter(request=Clause(kinds=frozenset({"memory"}), spaces=frozenset({memory.space})), reach=reach)
        if update_id is not None:
            target = self._fetch(ItemFilter(request=Clause(kinds=frozenset({"memory"})), reach=reach), update_id)
            if (target.space, target.sensitivity) != (memory.space, memory.sensitivity):
                raise InvalidInput(
                    f"memory {target.id} is in space {target.space!r} at sensitivity {target.sensitivity!r}: "
                    "remember with the same space and sensitivity to update it"
                )
            self._policy.check_write(principal, "memory", target.space, target.tags, target.sensitivity)
            return self._merge_into(principal, target.id, memory, None, [], now)
        where, params = same_space.where("i")
        # A twin must match in sensitivity, or merging would move the text to another level;
        # an app merges only into its own memories, so provenance stays true.
        where += " AND i.sensitivity = ?" + ("" if principal.is_owner else " AND i.created_by = ?")
        params = [*params, memory.sensitivity, *([] if principal.is_owner else [principal.label])]
        # items_hash by name: on an equality of kind and space the planner takes a partial index of
        # live items instead, and reads every memory of the space (0.25 s at 100k) to find one hash.
        twin = self.store.one(
            f"SELECT i.id FROM items i INDEXED BY items_hash WHERE i.content_hash = ? AND {where}", [content_hash(memory.text), *params]
        )
        if twin is not None and _same_dates(item := self._fetch(same_space, twin[0]), memory, now):
            self._audit.record(principal, "write", item_ids=[item.id], detail={"action": "unchanged"})
            return RememberResult(item=item, action="unchanged", duplicate_of=item.id, similarity=1.0)
        # Neighbours come from the vectors in the caller's reach only (scope first, then ranking).
        found = self._retriever.similar(memory.text, same_space, k=SIMILAR_LIMIT, floor=min(MERGE_FLOOR, self.settings.dedup_threshold))
        neighbours = [(self._fetch(same_space, item_id), score) for item_id, score in found]
        mergeable = [
            (item, score) for item, score in neighbours if self._may_merge(principal, item, memory) and _same_dates(item, memory, now)
        ]
        into: tuple[Item, float] | None = None
        if merge is None:
            into = next(((i, sc) for i, sc in mergeable if merges(i.text, memory.text, sc)), None)
        elif merge:
            into = next(((i, sc) for i, sc in mergeable if sc >= self.settings.dedup_threshold or merges(i.text, memory.text, sc)), None)
        similar = [
            SimilarItem(id=item.id, score=round(score, 4), snippet=item.text[:SNIPPET_CHARS])
            for item, score in neighbours
            if (into is None or item.id != into[0].id) and (score >= self.settings.dedup_threshold or merges(item.text, memory.text, score))
        ]
        if similar:  # their ids and snippets are handed to the caller
            self._audit.record(principal, "disclose", item_ids=[x.id for x in similar], detail={"via": "remember"})
        if into is not None:
            return self._merge_into(principal, into[0].id, memory, into[1], similar, now)
        with self.store.transaction():
            item_id = self._insert_item(
                principal, "memory", memory.text, space=memory.space, tags=memory.tags, sensitivity=memory.sensitivity,
                source=memory.source, valid_from=memory.valid_from, valid_until=memory.valid_until, now=now,
            )  # fmt: skip
            self._insert_unit(item_id, 0, unit_text("memory", memory.text, at=memory.valid_from or now))
            self._audit.record(principal, "write", item_ids=[item_id], detail={"action": "added"})
        self._index_written()
        return RememberResult(item=self._fetch(ItemFilter(), item_id), action="added", similar=similar)

    def _may_merge(self, principal: Principal, item: Item, memory: MemoryIn) -> bool:
        """Whether remember may fold ``memory`` into ``item``: same level, and for an app its own writable memory."""
        if item.sensitivity != memory.sensitivity:
            return False
        return principal.is_owner or (
            item.provenance.created_by == principal.label
            and self._policy.allows(principal, "write", "memory", item.space, item.tags, item.sensitivity)
        )

    def _merge_into(
        self, principal: Principal, item_id: str, memory: MemoryIn, similarity: float | None, similar: list[SimilarItem], now: datetime
    ) -> RememberResult:
        """Update memory ``item_id`` with the remembered text and its tags (the core's update path)."""
        with self.store.transaction():
            self._update_text(item_id, "memory", memory.text, now=now, by=principal.label)
            self._merge_tags(item_id, memory.tags)
            self._audit.record(principal, "write", item_ids=[item_id], detail={"action": "updated"})
        self._index_written()
        return RememberResult(
            item=self._fetch(ItemFilter(), item_id), action="updated", duplicate_of=item_id, similarity=similarity, similar=similar
        )

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
        if text is not None:
            self._check_text(text)
        if problem := limit_problem(tags=tags or (), space=space):  # the limits add and import obey
            raise InvalidInput(problem)
        self._policy.check_write(principal, item.kind, item.space, item.tags, item.sensitivity)
        new_space, new_tags = space or item.space, tags if tags is not None else item.tags
        new_sens = sensitivity or item.sensitivity
        self._policy.check_write(principal, item.kind, new_space, new_tags, new_sens)
        if text is not None and item.kind != "memory":
            raise InvalidInput("only a memory's text can be edited; use `pref set` or re-add the document")
        if space is not None:
            MemoryIn(text="x", space=space)  # validates the space name
        new_text = None if text is None else MemoryIn(text=text).text
        if (
            (new_text in (None, item.text))
            and new_space == item.space
            and sorted(set(new_tags)) == item.tags
            and new_sens == item.sensitivity
        ):
            return item  # nothing changes: no write, and no version that equals the current state
        stamp = now or utcnow()
        with self.store.transaction():
            # The previous state is kept once per edit, before any field changes.
            keep_version(self.store, item_id, replaced_by=principal.label, replaced_at=stamp)
            if new_text is not None and new_text != item.text:
                self._update_text(item_id, item.kind, new_text, now=stamp, keep=False)
            self.store.execute(
                "UPDATE items SET space = ?, tags = ?, sensitivity = ?, updated_at = ? WHERE id = ?",
                [new_space, json.dumps(sorted(set(new_tags))), new_sens, stamp.isoformat(), item_id],
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
            stamp = utcnow().isoformat()
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                marks = ",".join("?" * len(part))
                # A tombstone (the id only: no content, and no hash that would confirm a guess at it) keeps an older
                # bundle from bringing the item back; its history and conflicts go with the row (ON DELETE CASCADE).
                self.store.execute(
                    f"INSERT OR REPLACE INTO tombstones (id, content_hash, purged_at) SELECT id, '', ? FROM items WHERE id IN ({marks})",
                    [stamp, *part],
                )
                self.store.execute(f"UPDATE items SET supersedes = NULL WHERE supersedes IN ({marks})", part)
                self.store.execute(f"DELETE FROM items WHERE id IN ({marks})", part)
            self._audit.record(principal, "purge", item_ids=ids)
        # The sealed index goes first: it may hold purged vectors even if VACUUM is busy.
        self._retriever.discard_index()
        self._erase_free_space()
        return len(ids)

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


def _same_dates(item: Item, memory: MemoryIn, now: datetime) -> bool:
    """Whether the relative dates of both texts mean the same days: "I saw Bob yesterday" said on two days is two facts."""
    return date_context(item.text, item.valid_from or item.provenance.created_at) == date_context(memory.text, memory.valid_from or now)
