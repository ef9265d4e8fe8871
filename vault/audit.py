"""The audit log: append-only, hash-chained, inside the encrypted store.

Each entry's hash is sha256 over its canonical JSON, which includes its sequence
number and the previous entry's hash; ``audit_head`` keeps the newest (seq, hash).
Editing, removing, inserting or reordering any entry, or cutting the tail, breaks
the chain, and ``verify`` names the first sequence number where it breaks.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.access import AuditEntry, AuditReport
from vault.access import live_scopes
from vault.errors import AuditTampered
from vault.items import utcnow
from vault.principal import Principal
from vault.store import Row, Store

# Which action an app's event used: by event, and for disclosures by the method that made it.
_EVENT_ACTION = {"disclose": "read", "write": "write", "forget": "delete"}
_VIA_ACTION = {"search": "search"}

# Refused bearer tokens (HTTP 401) from one client are counted for this long after the
# first, which is written at once: a flood of guesses costs one entry a minute, and none
# is dropped. The counts are held in memory until the window closes, the log is read or
# verified, or the vault closes (a killed server loses the count of its last minute).
REFUSAL_WINDOW = timedelta(minutes=1)
# Clients counted at once; past it every open count is written (memory stays bounded).
MAX_OPEN_REFUSALS = 1024
REFUSED_TOKEN = "invalid, expired or revoked bearer token"


@dataclass(frozen=True, slots=True)
class _Pending:
    at: datetime
    principal: Principal
    event: str
    scope: str | None
    detail: dict[str, object]


@dataclass(slots=True)
class _Refusals:
    """Refused tokens from one client since ``opened``; ``more`` of them not yet written."""

    opened: datetime
    last: datetime
    app_id: str | None
    client: str
    more: int = 0


@dataclass(slots=True)
class _Ledger:
    """Open refusal windows by (app id, client), shared by the audit logs of one server's connections."""

    open: dict[tuple[str | None, str], _Refusals] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self, now: datetime, *, close_all: bool, counted_only: bool = True) -> list[_Refusals]:
        """Take the counts to write: with ``counted_only`` every count not yet written, else only those of
        windows that are over; close the windows that are over (all with ``close_all``). Call with ``lock`` held."""
        due = []
        for key, open_ in list(self.open.items()):
            over = close_all or now - open_.opened >= REFUSAL_WINDOW
            if open_.more and (counted_only or over):
                due.append(_Refusals(open_.opened, open_.last, open_.app_id, open_.client, open_.more))
                open_.more = 0
            if over:
                del self.open[key]
        return due


def entry_hash(fields: dict[str, object]) -> str:
    """sha256 hex of the canonical JSON of an entry's fields (``prev`` included)."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def entry_fields(row: Row, prev: str) -> dict[str, object]:
    return {
        "seq": row["seq"],
        "at": row["at"],
        "principal": row["principal"],
        "app_id": row["app_id"],
        "event": row["event"],
        "item_ids": json.loads(row["item_ids"]),
        "scope": row["scope"],
        "purpose": row["purpose"],
        "detail": json.loads(row["detail"]),
        "prev": prev,
    }


class AuditLog:
    def __init__(self, store: Store) -> None:
        self._store = store
        # Denials raised inside a caller's transaction would roll back with it; they
        # wait here and are written by the next write the log makes on its own.
        self._deferred: list[_Pending] = []
        self._ledger = _Ledger()

    def record(
        self,
        principal: Principal,
        event: str,
        *,
        item_ids: Iterable[str] = (),
        scope: str | None = None,
        purpose: str | None = None,
        detail: dict[str, object] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Append one event inside the caller's transaction (or its own)."""
        detail = dict(detail or {})
        at = now or utcnow()
        if principal.is_owner and event == "disclose":
            # The owner reading their own vault is not a disclosure to anyone.
            return
        if principal.is_owner and self._store.read_only:
            # A read-only vault (a backup, a snapshot) records nothing: the owner's reads and exports
            # of it go unlogged; an app's disclosure is refused (VaultReadOnly) rather than unaudited.
            return
        if scope is None and principal.app_id is not None and event in _EVENT_ACTION:
            action = _VIA_ACTION.get(str(detail.get("via", "")), _EVENT_ACTION[event])
            scopes = [s for s in live_scopes(self._store, principal.app_id, at) if s.startswith(action + ":")]
            scope = " ".join(scopes) or None
        ids = list(item_ids)
        if self._store.conn.in_transaction:
            self._append(at, principal, event, ids, scope, purpose, detail)
            return
        with self._store.transaction():
            self._flush()
            self._append(at, principal, event, ids, scope, purpose, detail)

    def record_denial(self, principal: Principal, what: str, scope: str | None = None, now: datetime | None = None) -> None:
        """Record a refused call; it is kept even though the caller's operation fails."""
        pending = _Pending(now or utcnow(), principal, "deny", scope, {"what": what})
        if self._store.conn.in_transaction:
            self._deferred.append(pending)
            return
        with self._store.transaction():
            self._flush()
            self._append(pending.at, principal, "deny", [], scope, None, pending.detail)

    def record_refused_token(self, app_id: str | None, client: str, now: datetime | None = None) -> None:
        """Record a bearer token refused at the HTTP door, aggregated per client (``REFUSAL_WINDOW``).

        ``app_id`` is the app a revoked or expired token was issued to, when the vault still
        knows it; ``client`` is the caller's network address.
        """
        at = now or utcnow()
        key = (app_id, client)
        if self._count_refusal(key, at):
            # Counted in memory: a flood of guesses does not become a flood of writes.
            return
        with self._store.transaction():
            self._flush(at)
            with self._ledger.lock:
                due = self._ledger.due(at, close_all=True) if len(self._ledger.open) >= MAX_OPEN_REFUSALS else []
                # Another connection's thread may have opened this window meanwhile: then count into it.
                opened = key not in self._ledger.open or at - self._ledger.open[key].opened >= REFUSAL_WINDOW
                if opened:
                    self._ledger.open[key] = _Refusals(opened=at, last=at, app_id=app_id, client=client)
                else:
                    self._ledger.open[key].more += 1
            self._write_due(due)
            if opened:
                self._refusal_entry(at, app_id, client, 1, at)

    def _count_refusal(self, key: tuple[str | None, str], at: datetime) -> bool:
        with self._ledger.lock:
            open_ = self._ledger.open.get(key)
            if open_ is None or at - open_.opened >= REFUSAL_WINDOW:
                return False
            open_.more += 1
            open_.last = at
            return True

    def shares_refusals_with(self, other: AuditLog) -> None:
        """Count refused tokens in ``other``'s windows: one count per client for every connection of a server."""
        self._ledger = other._ledger

    def _refusal_entry(self, at: datetime, app_id: str | None, client: str, count: int, since: datetime) -> None:
        label = f"app:{app_id}" if app_id else "unknown"
        detail = {"what": REFUSED_TOKEN, "via": "http", "client": client, "count": count, "since": since.isoformat()}
        self._append_as(at, label, app_id, "deny", [], None, None, detail)

    def _write_due(self, due: list[_Refusals]) -> None:
        for r in due:
            self._refusal_entry(r.last, r.app_id, r.client, r.more, r.opened)

    def _flush(self, now: datetime | None = None) -> None:
        while self._deferred:
            p = self._deferred.pop(0)
            self._append(p.at, p.principal, p.event, [], p.scope, None, p.detail)
        with self._ledger.lock:
            due = self._ledger.due(now or utcnow(), close_all=False, counted_only=False)
        self._write_due(due)

    def _append(
        self,
        at: datetime,
        principal: Principal,
        event: str,
        item_ids: list[str],
        scope: str | None,
        purpose: str | None,
        detail: dict[str, object],
    ) -> None:
        # An owner's act on an app (grant, revoke, consent) is filed under that app too.
        app_id = principal.app_id or detail.get("app_id")
        self._append_as(at, principal.label, str(app_id) if app_id else None, event, item_ids, scope, purpose, detail)

    def _append_as(
        self,
        at: datetime,
        label: str,
        app_id: str | None,
        event: str,
        item_ids: list[str],
        scope: str | None,
        purpose: str | None,
        detail: dict[str, object],
    ) -> None:
        head = self._store.one("SELECT seq, hash FROM audit_head WHERE id = 1")
        seq, prev = (int(head["seq"]) + 1, str(head["hash"])) if head else (1, "")
        fields: dict[str, object] = {
            "seq": seq,
            "at": at.isoformat(),
            "principal": label,
            "app_id": app_id,
            "event": event,
            "item_ids": item_ids,
            "scope": scope,
            "purpose": purpose,
            "detail": json.loads(json.dumps(detail, default=str)),
            "prev": prev,
        }
        digest = entry_hash(fields)
        self._store.execute(
            "INSERT INTO audit (seq, at, principal, app_id, event, item_ids, scope, purpose, detail, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                seq, fields["at"], label, app_id, event, json.dumps(item_ids), scope, purpose,
                json.dumps(fields["detail"], ensure_ascii=False), prev, digest,
            ],
        )  # fmt: skip
        self._store.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", [seq, digest])

    def flush(self) -> None:
        """Write any denial raised inside a rolled-back transaction, and every refused-token count so far."""
        if (self._deferred or self._ledger.open) and not self._store.conn.in_transaction:
            with self._store.transaction():
                self._flush()
                with self._ledger.lock:
                    due = self._ledger.due(utcnow(), close_all=False)
                self._write_due(due)

    def entries(
        self,
        app_id: str | None = None,
        since: datetime | None = None,
        event: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Entries oldest first, optionally for one app, since a time, of one event type; ``limit`` keeps the newest."""
        self.flush()
        where, params = ["1"], []
        if app_id is not None:
            where.append("app_id = ?")
            params.append(app_id)
        if since is not None:
            where.append("at >= ?")
            params.append(since.isoformat())
        if event is not None:
            where.append("event = ?")
            params.append(event)
        sql = f"SELECT * FROM audit WHERE {' AND '.join(where)} ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._store.query(sql, params)
        return [
            AuditEntry(
                seq=r["seq"],
                at=datetime.fromisoformat(r["at"]),
                principal=r["principal"],
                app_id=r["app_id"],
                event=r["event"],
                item_ids=json.loads(r["item_ids"]),
                scope=r["scope"],
                purpose=r["purpose"],
                detail=json.loads(r["detail"]),
                hash=r["hash"],
            )
            for r in reversed(rows)
        ]

    def verify(self) -> AuditReport:
        """Walk the whole chain.

        Raises:
            AuditTampered: an entry was edited, removed, inserted or reordered, or the tail was cut.
        """
        self.flush()
        prev, expected = "", 1
        for row in self._store.query("SELECT * FROM audit ORDER BY seq"):
            if row["seq"] != expected:
                raise AuditTampered(f"audit entry {expected} is missing", seq=expected)
            if row["prev_hash"] != prev or entry_hash(entry_fields(row, prev)) != row["hash"]:
                raise AuditTampered(f"audit entry {expected} was altered or moved", seq=expected)
            prev, expected = row["hash"], expected + 1
        head = self._store.one("SELECT seq, hash FROM audit_head WHERE id = 1")
        if head is None or head["seq"] != expected - 1 or head["hash"] != prev:
            raise AuditTampered(f"audit entries after {expected - 1} were removed", seq=expected)
        return AuditReport(entries=expected - 1, head=prev)
