"""The state every part of VaultService shares, and the row helpers they all use."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Literal, Self

from schemas.items import (
    Item,
    Kind,
    limit_problem,
)
from vault import vault_model
from vault.audit import AuditLog
from vault.crypto import DataKey
from vault.embed import Embedder
from vault.errors import EmbedderUnavailable, InvalidInput, NotFound, TooLarge
from vault.filters import ItemFilter
from vault.history import keep_version
from vault.items import ITEM_COLUMNS, content_hash, new_id, row_to_item, unit_text, utcnow
from vault.policy import Policy
from vault.principal import Principal
from vault.readers import ReaderRetriever
from vault.search import INLINE_EMBED, Retriever
from vault.settings import Settings
from vault.store import Store

PREF_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
IdKind = Literal["item", "consent request", "grant"]
_ID_TABLES: dict[IdKind, str] = {"item": "items", "consent request": "consent_requests", "grant": "grants"}
_ID_PREFIX = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4,25}$")  # a ULID's Crockford alphabet: 4 to 25 of its 26 characters
Progress = Callable[[int, int, str], None]


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


class ServiceCore:
    """An unlocked vault's shared state. Close it when done (or use it as a context manager)."""

    def __init__(
        self, store: Store, settings: Settings, key: DataKey, embedder: Embedder | None = None, *, retriever: Retriever | None = None
    ) -> None:
        """``embedder`` replaces the configured model, loaded lazily otherwise (benchmarks pass a caching one);
        ``retriever`` replaces the connection's own (a reader's, ``reader``)."""
        self.store = store
        self.settings = vault_model.for_vault(settings, store)  # the vault's own model, not the default for new vaults
        settings = self.settings
        if embedder is not None and embedder.model_id != settings.model:
            # Its vectors would be filed under another model than the one the vault searches with.
            raise EmbedderUnavailable(f"the embedder given encodes {embedder.model_id!r}; this vault's model is {settings.model!r}")
        self._key = key  # a salvage export opens its own connections (vault/portable/export.py Salvage)
        self._audit = AuditLog(store)
        self._policy = Policy(store, self._audit)
        self._retriever = retriever or Retriever(store, settings, key, embedder=embedder)

    def reader(self, writer_lock: threading.Lock) -> Self:
        """Another service on a connection of its own to this vault, for read calls beside this one's.

        It searches this service's in-memory index (never a copy of its own), brings that index in step
        with the database only while ``writer_lock`` (held around every call of this service) is free,
        and changes no item, unit or vector: its connection refuses those writes (vault/readers.py).
        Audit entries, denials and tokens seen it writes as any connection does.
        """
        store = Store(self.store.path, self._key, gate=self.store.gate)  # in-process writes take turns on one lock
        try:
            follower = ReaderRetriever(store, self.settings, self._key, keeper=self._retriever, writer_lock=writer_lock)
        except BaseException:
            store.close()
            raise
        twin = type(self)(store, self.settings, self._key, retriever=follower)
        twin._audit.shares_refusals_with(self._audit)
        return twin

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # A denial raised inside a rolled-back write is held until now; it must not be lost.
        self._audit.flush()
        self._retriever.close()
        self.store.close()

    def _fetch(self, scope: ItemFilter, item_id: str) -> Item:
        where, params = scope.where("i")
        row = self.store.one(f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.id = ? AND {where}", [item_id, *params])
        if row is None:
            # Out of scope and missing answer alike (BRIEF §4).
            raise NotFound(f"no item {item_id!r}")
        return row_to_item(row)

    def resolve_id(self, principal: Principal, kind: IdKind, ref: str) -> str:
        """The one id of ``kind`` that starts with ``ref`` (at least 4 characters, any case), else ``ref`` unchanged (owner only).

        An unmatched ``ref`` comes back as given, so the call it is passed to reports it missing
        in its own words. Apps name ids in full: a prefix would let one probe for ids it cannot read.

        Raises:
            InvalidInput: the prefix starts more than one id (the message lists them). ScopeDenied: not the owner.
        """
        self._policy.require_owner(principal, "look up ids by prefix")
        prefix = ref.strip().upper()
        if not _ID_PREFIX.fullmatch(prefix):
            return ref
        table = _ID_TABLES[kind]
        rows = self.store.query(f"SELECT id FROM {table} WHERE id >= ? AND id < ? ORDER BY id LIMIT 6", [prefix, prefix + "~"])
        found = [str(r[0]) for r in rows]
        if len(found) > 1:
            listed = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
            raise InvalidInput(f"ambiguous {kind} id prefix {ref!r}: it matches {listed}; give more characters")
        return found[0] if found else ref

    def _check_text(self, text: str) -> None:
        if problem := limit_problem(text=text):
            raise TooLarge(problem)

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

    def _update_text(
        self,
        item_id: str,
        kind: str,
        text: str,
        key: str | None = None,
        now: datetime | None = None,
        *,
        by: str = "owner",
        keep: bool = True,
    ) -> None:
        """Replace an item's text; its previous state is kept as a version (by ``by``) unless the caller kept it already."""
        if keep:
            keep_version(self.store, item_id, replaced_by=by, replaced_at=now or utcnow())
        stamp = (now or utcnow()).isoformat()
        self.store.execute(
            "UPDATE items SET text = ?, content_hash = ?, updated_at = ? WHERE id = ?", [text, content_hash(text), stamp, item_id]
        )
        # A memory's relative dates keep meaning what they meant at its own time.
        own = self.store.one("SELECT coalesce(valid_from, created_at) FROM items WHERE id = ?", [item_id])
        at = datetime.fromisoformat(own[0]) if own else None
        self.store.execute("UPDATE units SET text = ? WHERE item_id = ? AND seq = 0", [unit_text(kind, text, key, at=at), item_id])

    def _merge_tags(self, item_id: str, tags: list[str]) -> None:
        if tags:
            row = self.store.one("SELECT tags FROM items WHERE id = ?", [item_id])
            merged = sorted(set(json.loads(row[0]) if row else []) | set(tags))
            self.store.execute("UPDATE items SET tags = ? WHERE id = ?", [json.dumps(merged), item_id])

    def _index_written(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Embed what was just written if it is a few units (a remember: one); a larger write joins the backlog
        that the unlock agent's embedder or `ctxvault reindex` embeds (vault/search.py ``INLINE_EMBED``).
        The write is committed already and searchable lexically: if the model cannot load, its units
        simply stay in the backlog."""
        try:
            self._retriever.sync(progress, limit=INLINE_EMBED)
        except EmbedderUnavailable:
            pass

    def _live_pref(self, scope: ItemFilter, key: str) -> Item:
        where, params = scope.where("i")
        row = self.store.one(
            f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.kind = 'preference' AND i.pref_key = ? AND {where}", [key, *params]
        )
        if row is None:
            raise NotFound(f"no preference {key!r}")
        return row_to_item(row)

    def _chunk_count(self, item_id: str) -> int:
        row = self.store.one("SELECT count(*) FROM units WHERE item_id = ?", [item_id])
        return int(row[0]) if row else 0
