"""The audit log: append-only, hash-chained, inside the encrypted store.

Each entry's hash is sha256 over its canonical JSON, which includes its sequence
number and the previous entry's hash; ``audit_head`` keeps the newest (seq, hash).
Editing, removing, inserting or reordering any entry, or cutting the tail, breaks
the chain, and ``verify`` names the first sequence number where it breaks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas.access import AuditEntry, AuditReport
from vault.access import live_scopes
from vault.errors import AuditTampered
from vault.items import utcnow
from vault.principal import Principal
from vault.store import Row, Store

# Which action an app's event used: by event, and for disclosures by the method that made it.
_EVENT_ACTION = {"disclose": "read", "write": "write", "forget": "delete"}
_VIA_ACTION = {"search": "search"}


@dataclass(frozen=True, slots=True)
class _Pending:
    at: datetime
    principal: Principal
    event: str
    scope: str | None
    detail: dict[str, object]


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

    def _flush(self) -> None:
        while self._deferred:
            p = self._deferred.pop(0)
            self._append(p.at, p.principal, p.event, [], p.scope, None, p.detail)

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
        head = self._store.one("SELECT seq, hash FROM audit_head WHERE id = 1")
        seq, prev = (int(head["seq"]) + 1, str(head["hash"])) if head else (1, "")
        fields: dict[str, object] = {
            "seq": seq,
            "at": at.isoformat(),
            "principal": principal.label,
            # An owner's act on an app (grant, revoke, consent) is filed under that app too.
            "app_id": principal.app_id or detail.get("app_id"),
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
                seq, fields["at"], principal.label, fields["app_id"], event, json.dumps(item_ids), scope, purpose,
                json.dumps(fields["detail"], ensure_ascii=False), prev, digest,
            ],
        )  # fmt: skip
        self._store.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", [seq, digest])

    def flush(self) -> None:
        """Write any denial that was raised inside a rolled-back transaction."""
        if self._deferred and not self._store.conn.in_transaction:
            with self._store.transaction():
                self._flush()

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
