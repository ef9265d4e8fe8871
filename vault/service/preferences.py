"""Preferences: one live value per key with history, and the ones relevant to a task."""

from __future__ import annotations

import json
from datetime import datetime

from schemas.items import (
    Item,
    MemoryIn,
    PreferenceOut,
    SearchQuery,
    Sensitivity,
)
from schemas.mcp import PreferenceList, ProfileSummary, TaskContext
from vault.errors import InvalidInput, NotFound
from vault.filters import Clause, ItemFilter
from vault.items import ITEM_COLUMNS, row_to_item, unit_text, utcnow
from vault.pref_match import rank_preferences
from vault.principal import Principal
from vault.service.core import PREF_KEY
from vault.service.items import ItemsPart


class PreferencesPart(ItemsPart):
    """Preferences: one live value per key with history, and the ones relevant to a task."""

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
            # No key in the detail: the audit log outlives a purge, which leaves no text of the item.
            self._audit.record(principal, "write", item_ids=[item_id], detail={"action": "set_preference"})
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

    def preferences_for(
        self, principal: Principal, keys: list[str] | None = None, task: str | None = None, limit: int = 10
    ) -> PreferenceList:
        """Current preferences the principal may read: by key, the ones relevant to ``task``, or all."""
        if task is not None:
            return self._preferences_for_task(principal, task, limit)
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

    def _preferences_for_task(self, principal: Principal, task: str, limit: int) -> PreferenceList:
        """The preferences that would constrain ``task``, best first (vault/pref_match.py); one disclosure."""
        query = SearchQuery(text=task, kinds=["preference"], limit=limit)  # validates the task like a search
        scope = self._policy.read_filter(principal, "search", Clause(kinds=frozenset({"preference"})))
        ranked = rank_preferences(self._retriever, query.text, scope, query.limit)
        if ranked is None:  # no model: ordinary search, which records its own disclosure
            hits = self.search(principal, query).hits
            items = [self._fetch(ItemFilter(), h.item_id) for h in hits]
            return PreferenceList(preferences=[PreferenceOut(key=i.key or "", value=i.text, item=i) for i in items])
        where, params = scope.where("i")
        rows = self.store.query(
            f"SELECT u.uid, i.id FROM units u CROSS JOIN items i ON i.id = u.item_id WHERE u.uid IN (SELECT value FROM json_each(?)) AND {where}",
            [json.dumps([u for u, _ in ranked]), *params],
        )
        owner = {int(r[0]): str(r[1]) for r in rows}  # the SQL predicate has the last word on scope
        ids = list(dict.fromkeys(owner[u] for u, _ in ranked if u in owner))
        items = [self._fetch(ItemFilter(), i) for i in ids]
        self._audit.record(principal, "disclose", item_ids=ids, detail={"via": "preferences_for"})
        return PreferenceList(preferences=[PreferenceOut(key=i.key or "", value=i.text, item=i) for i in items])

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
