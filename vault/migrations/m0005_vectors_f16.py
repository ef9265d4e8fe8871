"""Vectors as float16 with a model id; the generation is bumped per statement, not per row.

The vectors table was the largest writer of a bulk import: float32 blobs two to a
page, a model name in every row and in its index, and a trigger per inserted row.
Existing vectors are converted (float32 → float16); a vector whose dimension disagrees
with its model's is dropped and re-embedded as a unit lacking a vector.
"""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

BEFORE = """
DROP TRIGGER IF EXISTS vectors_gen_ai;
DROP TRIGGER IF EXISTS vectors_gen_ad;
DROP TRIGGER IF EXISTS vectors_gen_au;
CREATE TABLE models (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE,              -- e.g. sentence-transformers/all-MiniLM-L6-v2
    dim   INTEGER NOT NULL
);
INSERT INTO models (name, dim) SELECT model, max(dim) FROM vectors GROUP BY model ORDER BY model;
CREATE TABLE vectors_f16 (
    uid    INTEGER PRIMARY KEY REFERENCES units (uid) ON DELETE CASCADE,
    model  INTEGER NOT NULL REFERENCES models (id),
    vec    BLOB NOT NULL                     -- float16 little-endian, L2-normalised (vault/vectors.py)
);
"""

AFTER = """
DROP TABLE vectors;
ALTER TABLE vectors_f16 RENAME TO vectors;
CREATE INDEX vectors_model ON vectors (model);
-- Inserts bump the generation once per statement in vault/vectors.py.
CREATE TRIGGER vectors_gen_ad AFTER DELETE ON vectors BEGIN
    UPDATE index_state SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER vectors_gen_au AFTER UPDATE ON vectors BEGIN
    UPDATE index_state SET generation = generation + 1 WHERE id = 1;
END;
-- Sealed index files were built from float32 values: rebuild them from the new table.
UPDATE index_state SET generation = generation + 1 WHERE id = 1;
"""


def up(conn: Connection) -> None:
    import numpy as np  # only when the migration runs: opening a vault never pays for numpy

    run_script(conn, BEFORE)
    cur = conn.execute("SELECT v.uid, m.id, m.dim, v.vec FROM vectors v JOIN models m ON m.name = v.model AND m.dim = v.dim ORDER BY v.uid")
    while rows := cur.fetchmany(10_000):
        conn.executemany(
            "INSERT INTO vectors_f16 (uid, model, vec) VALUES (?, ?, ?)",
            [(uid, model, np.frombuffer(vec, dtype="<f4").astype("<f2").tobytes()) for uid, model, dim, vec in rows if len(vec) == 4 * dim],
        )
    run_script(conn, AFTER)
