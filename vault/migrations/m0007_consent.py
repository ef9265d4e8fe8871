"""One-time owner login links (``ctxvault ui``): single use, short-lived, stored hashed."""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE TABLE owner_login_links (
    token_hash  TEXT PRIMARY KEY,   -- sha256 hex; the token itself is never stored
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
