"""Schema migrations: named, append-only, each applied in one transaction with its record.

A merged migration is never edited: add the next ``m00NN_…`` module and list it here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlcipher3

from vault.errors import SchemaTooNew, VaultReadOnly
from vault.migrations import (
    m0001_items,
    m0002_vectors,
    m0003_access,
    m0004_oauth,
    m0005_vectors_f16,
    m0006_history,
    m0007_consent,
    m0008_doc_versions,
    m0009_warm,
    m0010_scope,
    m0011_model,
    m0012_content,
)


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    up: Callable[[sqlcipher3.Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration("m0001_items", m0001_items.up),
    Migration("m0002_vectors", m0002_vectors.up),
    Migration("m0003_access", m0003_access.up),
    Migration("m0004_oauth", m0004_oauth.up),
    Migration("m0005_vectors_f16", m0005_vectors_f16.up),
    Migration("m0006_history", m0006_history.up),
    Migration("m0007_consent", m0007_consent.up),
    Migration("m0008_doc_versions", m0008_doc_versions.up),
    Migration("m0009_warm", m0009_warm.up),
    Migration("m0010_scope", m0010_scope.up),
    Migration("m0011_model", m0011_model.up),
    Migration("m0012_content", m0012_content.up),
)

SCHEMA_VERSION = len(MIGRATIONS)


def applied(conn: sqlcipher3.Connection) -> list[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]


def migrate(conn: sqlcipher3.Connection, now: datetime | None = None) -> list[str]:
    """Bring the schema up to date in one transaction; return the names applied.

    Raises:
        SchemaTooNew: the vault holds migrations this version does not know.
    """
    known = {m.name for m in MIGRATIONS}
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = applied(conn)
        unknown = [name for name in done if name not in known]
        if unknown:
            raise SchemaTooNew(
                f"this vault has schema changes from a newer Context Vault ({', '.join(unknown)}); upgrade ctxvault to open it"
            )
        stamp = (now or datetime.now(UTC)).isoformat()
        new = [m for m in MIGRATIONS if m.name not in done]
        for m in new:
            m.up(conn)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (m.name, stamp))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return [m.name for m in new]


def check_current(conn: sqlcipher3.Connection, where: str) -> None:
    """Migrate nothing, for a read-only vault: it must already be at this version's schema.

    Raises:
        SchemaTooNew: the vault holds migrations this version does not know.
        VaultReadOnly: it lacks some, which cannot be applied to a read-only vault.
    """
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").fetchone()
    done = [row[0] for row in conn.execute("SELECT name FROM _migrations")] if has_table else []
    known = {m.name for m in MIGRATIONS}
    if unknown := sorted(name for name in done if name not in known):
        raise SchemaTooNew(f"this vault has schema changes from a newer Context Vault ({', '.join(unknown)}); upgrade ctxvault to open it")
    if missing := [m.name for m in MIGRATIONS if m.name not in done]:
        raise VaultReadOnly(
            f"the vault is read-only ({where}) and was written by an older Context Vault: it needs {len(missing)} schema "
            f"upgrade(s) ({', '.join(missing)}); copy it somewhere writable and open it there"
        )


def version(conn: sqlcipher3.Connection) -> int:
    return len(applied(conn))
