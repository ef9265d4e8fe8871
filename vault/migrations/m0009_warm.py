"""Indexes for the commands a person runs most: `status` and `list` answer from them at 100k items (issue 25).

Without them `list` sorted every live item to show 50 (~0.26 s at 100k) and `status` read every
row for its counts (~0.2 s). All are partial, so they hold only the rows they serve:

- ``items_live_new``: live items newest first (`list`'s order, and its total);
- ``items_live_space``: live items by space and kind (`status`'s counts and spaces);
- ``items_forgotten``: forgotten items; ``items_documents``: documents (their chunk count).
"""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE INDEX items_live_new ON items (created_at DESC, id DESC) WHERE deleted_at IS NULL AND superseded_at IS NULL;
CREATE INDEX items_live_space ON items (space, kind) WHERE deleted_at IS NULL AND superseded_at IS NULL;
CREATE INDEX items_forgotten ON items (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX items_documents ON items (id) WHERE kind = 'document';
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
