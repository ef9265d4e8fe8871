"""Apps, their grants, consent requests, and the hash-chained audit log."""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE TABLE apps (
    id            TEXT PRIMARY KEY,              -- ULID
    name          TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT,
    token_hash    TEXT NOT NULL UNIQUE,          -- sha256 hex of the bearer token; the token is never stored
    redirect_uris TEXT NOT NULL DEFAULT '[]'     -- JSON array, for OAuth clients
);

CREATE TABLE grants (
    id          TEXT PRIMARY KEY,                -- ULID
    app_id      TEXT NOT NULL,                   -- kept after the app is removed, for the record
    scopes      TEXT NOT NULL,                   -- JSON array of canonical scope strings
    purpose     TEXT,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT,
    consent_id  TEXT                             -- the consent request it came from, if any
);
CREATE INDEX grants_app ON grants (app_id) WHERE revoked_at IS NULL;

CREATE TABLE consent_requests (
    id               TEXT PRIMARY KEY,           -- ULID
    app_id           TEXT NOT NULL,
    scopes           TEXT NOT NULL,              -- JSON array of canonical scope strings
    purpose          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,              -- the request lapses unanswered after this
    grant_expires_at TEXT,                       -- the expiry the app asked for its grant
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
    decided_at       TEXT,
    grant_id         TEXT
);

-- Append-only: each entry's hash covers its fields and the previous entry's hash.
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    principal  TEXT NOT NULL,                    -- 'owner' or 'app:<id>'
    app_id     TEXT,
    event      TEXT NOT NULL,
    item_ids   TEXT NOT NULL DEFAULT '[]',
    scope      TEXT,
    purpose    TEXT,
    detail     TEXT NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_app ON audit (app_id, seq);
-- The head of the chain, so that removing the newest entries is detected too.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
