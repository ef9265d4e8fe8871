"""The vault's own OAuth 2.1 authorization server: clients, codes and tokens (hashed)."""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE TABLE oauth_clients (
    client_id      TEXT PRIMARY KEY,             -- a metadata document URL, or random for dynamic registration
    kind           TEXT NOT NULL CHECK (kind IN ('metadata', 'dynamic')),
    client_name    TEXT NOT NULL,
    redirect_uris  TEXT NOT NULL,                -- JSON array
    app_id         TEXT,                         -- the app it acts as, set at the owner's first approval
    created_at     TEXT NOT NULL
);

CREATE TABLE oauth_codes (
    code_hash       TEXT PRIMARY KEY,            -- sha256 hex; the code itself is never stored
    client_id       TEXT NOT NULL,
    app_id          TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,               -- PKCE S256
    resource        TEXT NOT NULL,               -- RFC 8707 audience
    scopes          TEXT NOT NULL,               -- JSON array
    expires_at      TEXT NOT NULL,
    used_at         TEXT
);

CREATE TABLE oauth_tokens (
    token_hash  TEXT PRIMARY KEY,                -- sha256 hex; tokens are never stored
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    family      TEXT NOT NULL,                   -- one per authorization; a reused refresh token revokes it all
    client_id   TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX oauth_tokens_family ON oauth_tokens (family);
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
