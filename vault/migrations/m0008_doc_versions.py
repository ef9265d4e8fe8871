"""A document's earlier files, and purged tombstones without content hashes (issue 24).

``doc_versions`` holds the file (bytes, name, type) of a document version kept in
``item_versions``, so a re-added file or an import conflict keeps the previous
content, not just its title; a version's text and chunks are extracted from it again
on restore. Rows go with their item (ON DELETE CASCADE): purge erases them.

Tombstones written before purge kept the id only still hold the purged item's content
hash; they are blanked here (a hash would confirm a guess at what was erased).
"""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE TABLE doc_versions (
    item_id   TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    version   INTEGER NOT NULL,                  -- the item_versions row this file belongs to
    path      TEXT NOT NULL,
    filename  TEXT NOT NULL,
    mime      TEXT NOT NULL,
    size      INTEGER NOT NULL,
    sha256    TEXT NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (item_id, version),
    FOREIGN KEY (item_id, version) REFERENCES item_versions (item_id, version) ON DELETE CASCADE
) WITHOUT ROWID;

UPDATE tombstones SET content_hash = '' WHERE content_hash != '';
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
