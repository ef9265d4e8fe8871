"""Item history, tombstones of purged items, and import conflicts (issue 24).

``item_versions`` keeps every earlier state of an item (memory, document, or a
preference's tags and space) when an edit, an update, a merge or a restore replaces
it; preferences' values keep their own chain of superseded rows as before. Existing
items start without history: only changes made from now on add versions.
``tombstones`` remembers that an id was purged, by id and content hash only (no
content), so an older bundle cannot bring it back. ``conflicts`` lists items that an
import found changed on both sides; both sides are kept, one as a version.
"""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE TABLE item_versions (
    item_id      TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,              -- 1, 2, ...: the current state is version count + 1
    text         TEXT NOT NULL,
    space        TEXT NOT NULL,
    tags         TEXT NOT NULL,                 -- JSON array of strings
    sensitivity  TEXT NOT NULL CHECK (sensitivity IN ('low', 'medium', 'high')),
    content_hash TEXT NOT NULL,
    saved_by     TEXT NOT NULL,                 -- who wrote this state
    saved_at     TEXT NOT NULL,                 -- when (the item's updated_at while it was current)
    replaced_by  TEXT NOT NULL,                 -- who replaced it
    replaced_at  TEXT NOT NULL,
    PRIMARY KEY (item_id, version)
) WITHOUT ROWID;

CREATE TABLE tombstones (
    id           TEXT PRIMARY KEY,              -- a purged item's id
    content_hash TEXT NOT NULL,
    purged_at    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE conflicts (
    id           INTEGER PRIMARY KEY,
    item_id      TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,              -- the version holding the side that is not current
    kept         TEXT NOT NULL CHECK (kept IN ('vault', 'source')),  -- whose side became current
    source       TEXT NOT NULL,                 -- the import it came from
    found_at     TEXT NOT NULL,
    resolved_at  TEXT
);
CREATE INDEX conflicts_open ON conflicts (item_id) WHERE resolved_at IS NULL;
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
