"""A counter of changes to items and units that any connection sees: the key of every scope cache (issue 27).

The caches of a search (the units a scope allows, its BM25 statistics, a profile's vectors) were kept
until ``PRAGMA data_version`` moved, i.e. until any other connection wrote anything: in `ctxvault serve`
each reader's audited search emptied every other reader's caches, so an app's search re-read its whole
scope every time. Now they are kept until an item or a unit changes. Updates and deletes count here (one
row, bumped by these triggers); inserts show in the largest rowids of ``items`` and ``units`` (vault/search.py
``_data_version``), so a bulk import pays no trigger per row.
"""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE TABLE content_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO content_version (id, n) VALUES (1, 0);
CREATE TRIGGER content_items_au AFTER UPDATE ON items BEGIN
    UPDATE content_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER content_items_ad AFTER DELETE ON items BEGIN
    UPDATE content_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER content_units_au AFTER UPDATE ON units BEGIN
    UPDATE content_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER content_units_ad AFTER DELETE ON units BEGIN
    UPDATE content_version SET n = n + 1 WHERE id = 1;
END;
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
