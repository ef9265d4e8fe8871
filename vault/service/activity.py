"""The owner's view of the audit log: a filtered timeline, a privacy report per app, what each app saw.

Everything here reads the log the core wrote (vault/audit.py); nothing writes to it. Filters are
SQL predicates over the audit table, so a page costs one indexed query however long the log is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from schemas.access import AuditEntry
from schemas.activity import ActivityPage, ActivityQuery, AppActivity, Disclosure
from vault.apps import Apps
from vault.errors import NotFound
from vault.principal import Principal
from vault.service.core import ServiceCore
from vault.store import Row

# What counts as an app getting or changing something (its "last access").
ACCESS_EVENTS = ("disclose", "write", "forget")
TITLE_CHARS = 80


def _utc(dt: datetime) -> str:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _entry(r: Row) -> AuditEntry:
    return AuditEntry(
        seq=r["seq"], at=datetime.fromisoformat(r["at"]), principal=r["principal"], app_id=r["app_id"], event=r["event"],
        item_ids=json.loads(r["item_ids"]), scope=r["scope"], purpose=r["purpose"], detail=json.loads(r["detail"]), hash=r["hash"],
    )  # fmt: skip


class ActivityPart(ServiceCore):
    """The owner's view of the audit log: a filtered timeline, a privacy report per app, what each app saw."""

    def _app_id(self, app: str) -> str:
        """An app's id from its name or id; a removed app is found by its id (or its name) in the log.

        Raises:
            NotFound
        """
        apps = Apps(self.store)
        found = apps.find(app) or next((a for a in apps.all() if a.name == app), None)
        if found is not None:
            return found.id
        if self.store.one("SELECT 1 FROM audit WHERE app_id = ? LIMIT 1", [app]):
            return app
        named = self.store.one(
            "SELECT app_id FROM audit WHERE event = 'app_add' AND json_extract(detail, '$.name') = ? ORDER BY seq DESC LIMIT 1", [app]
        )
        if named is not None:
            return str(named["app_id"])
        raise NotFound(f"no app {app!r} in the vault or its audit log")

    def _where(self, query: ActivityQuery) -> tuple[str, list[object]]:
        where: list[str] = ["1"]
        params: list[object] = []
        if query.app is not None:
            where.append("app_id = ?")
            params.append(self._app_id(query.app))
        if query.event is not None:
            where.append("event = ?")
            params.append(query.event)
        if query.since is not None:
            where.append("at >= ?")
            params.append(_utc(query.since))
        if query.until is not None:
            where.append("at < ?")
            params.append(_utc(query.until))
        return " AND ".join(where), params

    def activity(self, principal: Principal, query: ActivityQuery) -> ActivityPage:
        """One page of the audit log, newest first, filtered by app, event and time (owner only).

        Raises:
            ScopeDenied: not the owner. NotFound: ``query.app`` names no app the vault or its log knows.
        """
        self._policy.require_owner(principal, "read the audit log")
        self._audit.flush()
        where, params = self._where(query)
        total = self.store.one(f"SELECT count(*) FROM audit WHERE {where}", params)
        paged, paged_params = where, list(params)
        if query.before is not None:
            paged += " AND seq < ?"
            paged_params.append(query.before)
        rows = self.store.query(f"SELECT * FROM audit WHERE {paged} ORDER BY seq DESC LIMIT ?", [*paged_params, query.limit + 1])
        entries = [_entry(r) for r in rows[: query.limit]]
        events = [str(r[0]) for r in self.store.query("SELECT DISTINCT event FROM audit ORDER BY event")]
        return ActivityPage(
            entries=entries,
            total=int(total[0]) if total else 0,
            next_before=entries[-1].seq if len(rows) > query.limit else None,
            events=events,
        )

    def activity_export(self, principal: Principal, query: ActivityQuery) -> list[AuditEntry]:
        """Every entry matching the filters (``before`` and ``limit`` ignored), oldest first (owner only)."""
        self._policy.require_owner(principal, "read the audit log")
        self._audit.flush()
        where, params = self._where(query)
        return [_entry(r) for r in self.store.query(f"SELECT * FROM audit WHERE {where} ORDER BY seq", params)]

    def app_activity(self, principal: Principal) -> list[AppActivity]:
        """The privacy report: per app in the log, its last access, items seen and denials; latest first (owner only)."""
        self._policy.require_owner(principal, "read the audit log")
        self._audit.flush()
        marks = ",".join("?" * len(ACCESS_EVENTS))
        rows = self.store.query(
            "SELECT app_id, max(at) AS last_event, "
            f"max(CASE WHEN event IN ({marks}) THEN at END) AS last_access, "
            "sum(event = 'disclose') AS disclosures, sum(event IN ('write', 'forget')) AS writes, sum(event = 'deny') AS denials "
            "FROM audit WHERE app_id IS NOT NULL GROUP BY app_id",
            list(ACCESS_EVENTS),
        )
        seen = {
            str(r["app_id"]): int(r["n"])
            for r in self.store.query(
                "SELECT a.app_id, count(DISTINCT j.value) AS n FROM audit a, json_each(a.item_ids) j "
                "WHERE a.event = 'disclose' AND a.app_id IS NOT NULL GROUP BY a.app_id"
            )
        }
        apps = Apps(self.store)
        report = []
        for r in rows:
            app_id = str(r["app_id"])
            live = apps.find(app_id)
            report.append(
                AppActivity(
                    app_id=app_id,
                    name=live.name if live else self._logged_name(app_id),
                    removed=live is None,
                    last_access=datetime.fromisoformat(r["last_access"]) if r["last_access"] else None,
                    last_event=datetime.fromisoformat(r["last_event"]),
                    items_seen=seen.get(app_id, 0),
                    disclosures=int(r["disclosures"] or 0),
                    writes=int(r["writes"] or 0),
                    denials=int(r["denials"] or 0),
                )
            )
        report.sort(key=lambda a: (a.last_access or a.last_event, a.app_id), reverse=True)
        return report

    def _logged_name(self, app_id: str) -> str:
        row = self.store.one(
            "SELECT json_extract(detail, '$.name') FROM audit WHERE app_id = ? AND event IN ('app_add', 'app_remove') "
            "AND json_extract(detail, '$.name') IS NOT NULL ORDER BY seq DESC LIMIT 1",
            [app_id],
        )
        return str(row[0]) if row and row[0] else app_id

    def app_disclosures(self, principal: Principal, app: str) -> tuple[AppActivity | None, list[Disclosure]]:
        """What one app saw: every item disclosed to it, most recent first, with the item as it is now (owner only).

        Raises:
            ScopeDenied: not the owner. NotFound: no such app in the vault or its log.
        """
        self._policy.require_owner(principal, "read the audit log")
        app_id = self._app_id(app)
        summary = next((a for a in self.app_activity(principal) if a.app_id == app_id), None)
        rows = self.store.query(
            "SELECT j.value AS item_id, count(*) AS times, min(a.at) AS first, max(a.at) AS last, "
            "i.kind, i.space, i.text, i.pref_key, i.deleted_at "
            "FROM audit a, json_each(a.item_ids) j LEFT JOIN items i ON i.id = j.value "
            "WHERE a.event = 'disclose' AND a.app_id = ? GROUP BY j.value ORDER BY last DESC, j.value",
            [app_id],
        )
        seen = []
        for r in rows:
            title = None
            if r["kind"] is not None:
                text = f"{r['pref_key']} = {r['text']}" if r["pref_key"] else str(r["text"])
                title = text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"
            seen.append(
                Disclosure(
                    item_id=str(r["item_id"]), times=int(r["times"]), first=datetime.fromisoformat(r["first"]),
                    last=datetime.fromisoformat(r["last"]), kind=r["kind"], space=r["space"], title=title,
                    forgotten=r["deleted_at"] is not None,
                )
            )  # fmt: skip
        return summary, seen
