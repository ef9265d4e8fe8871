"""Vectors of units, kept inside the encrypted database, with the model that made them.

Embeddings can be inverted back to text, so they live only in SQLCipher pages
and in sealed index files, never in plaintext on disk.
"""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE TABLE vectors (
    uid    INTEGER PRIMARY KEY REFERENCES units (uid) ON DELETE CASCADE,
    model  TEXT NOT NULL,
    dim    INTEGER NOT NULL,
    vec    BLOB NOT NULL                    -- float32 little-endian, L2-normalised
);
CREATE INDEX vectors_model ON vectors (model);

-- Every change to units bumps a counter, so a sealed index file can tell
-- whether it is in step with the database after a crash.
CREATE TABLE index_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO index_state (id, generation) VALUES (1, 0);
CREATE TRIGGER vectors_gen_ai AFTER INSERT ON vectors BEGIN
    UPDATE index_state SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER vectors_gen_ad AFTER DELETE ON vectors BEGIN
    UPDATE index_state SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER vectors_gen_au AFTER UPDATE ON vectors BEGIN
    UPDATE index_state SET generation = generation + 1 WHERE id = 1;
END;
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
