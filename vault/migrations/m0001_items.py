"""Items, their searchable units, the FTS5 index over units, and document files."""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE TABLE items (
    id            TEXT PRIMARY KEY,              -- ULID: stable and portable
    kind          TEXT NOT NULL CHECK (kind IN ('memory', 'preference', 'document')),
    text          TEXT NOT NULL,                 -- memory text, preference value, document title
    pref_key      TEXT,                          -- preferences only
    space         TEXT NOT NULL DEFAULT 'personal',
    tags          TEXT NOT NULL DEFAULT '[]',    -- JSON array of strings
    sensitivity   TEXT NOT NULL DEFAULT 'low' CHECK (sensitivity IN ('low', 'medium', 'high')),
    source        TEXT NOT NULL DEFAULT 'cli',
    created_by    TEXT NOT NULL DEFAULT 'owner',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    valid_from    TEXT,
    valid_until   TEXT,
    content_hash  TEXT NOT NULL,
    supersedes    TEXT REFERENCES items (id) ON DELETE SET NULL,
    superseded_at TEXT,                          -- set when a newer version replaced this one
    deleted_at    TEXT,                          -- tombstone set by forget
    meta          TEXT NOT NULL DEFAULT '{}'     -- JSON object
);
CREATE INDEX items_kind_space ON items (kind, space) WHERE deleted_at IS NULL;
CREATE INDEX items_hash ON items (content_hash);
CREATE UNIQUE INDEX items_live_pref ON items (pref_key)
    WHERE kind = 'preference' AND deleted_at IS NULL AND superseded_at IS NULL;

-- A unit is what search ranks: a memory, a preference, or one chunk of a document.
-- Its integer uid is the rowid of the FTS index and the id of its vector.
CREATE TABLE units (
    uid      INTEGER PRIMARY KEY,
    item_id  TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL DEFAULT 0,         -- chunk number within a document
    text     TEXT NOT NULL,                      -- the text that is indexed
    start    INTEGER NOT NULL DEFAULT 0,         -- character span in the document text
    end      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (item_id, seq)
);

CREATE VIRTUAL TABLE units_fts USING fts5 (
    text, content = 'units', content_rowid = 'uid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER units_ai AFTER INSERT ON units BEGIN
    INSERT INTO units_fts (rowid, text) VALUES (new.uid, new.text);
END;
CREATE TRIGGER units_ad AFTER DELETE ON units BEGIN
    INSERT INTO units_fts (units_fts, rowid, text) VALUES ('delete', old.uid, old.text);
END;
CREATE TRIGGER units_au AFTER UPDATE OF text ON units BEGIN
    INSERT INTO units_fts (units_fts, rowid, text) VALUES ('delete', old.uid, old.text);
    INSERT INTO units_fts (rowid, text) VALUES (new.uid, new.text);
END;

-- The original bytes of an added document, so export can hand them back.
CREATE TABLE doc_files (
    item_id   TEXT PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    path      TEXT NOT NULL,                     -- absolute path it was added from
    filename  TEXT NOT NULL,
    mime      TEXT NOT NULL,
    size      INTEGER NOT NULL,
    sha256    TEXT NOT NULL,
    data      BLOB NOT NULL
);
CREATE INDEX doc_files_path ON doc_files (path);

CREATE TABLE vault_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
