"""The vault records its own embedding model (issue 25), so the default can change without touching old vaults.

Before this, the model was whatever ``CTXVAULT_MODEL`` said (default fp32 all-MiniLM-L6-v2) each time a
process opened the vault; a new default would have made every existing vault's vectors stale. The row is
the model of the vault's vectors: the model most vectors were made by, else the one the models table names
last, else the fp32 model every earlier release defaulted to. A new vault overwrites it with the model it is
created with (vault/vault_model.py); `ctxvault reindex --model` switches it.
"""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

# The default of every release before this migration: spelled out here, never imported, because the
# current default moves and a merged migration must not.
EARLIER_DEFAULT = "all-MiniLM-L6-v2"

SQL = """
CREATE TABLE vault_model (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    name       TEXT NOT NULL,        -- the model id recorded with every vector (vault/model_files.py)
    changed_at TEXT                  -- when `reindex --model` last switched it (NULL: since creation or this migration)
);
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
    row = conn.execute(
        "SELECT m.name FROM vectors v JOIN models m ON m.id = v.model GROUP BY v.model ORDER BY count(*) DESC, v.model DESC LIMIT 1"
    ).fetchone()
    if row is None:
        row = conn.execute("SELECT name FROM models ORDER BY id DESC LIMIT 1").fetchone()
    conn.execute("INSERT INTO vault_model (id, name) VALUES (1, ?)", (row[0] if row else EARLIER_DEFAULT,))
