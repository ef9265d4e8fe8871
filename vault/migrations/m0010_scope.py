"""Indexes that answer "which units may this scope see?" without reading an item row (issue 25).

A search or a write's duplicate check needs the unit ids its scope allows. The join of every
unit to its item read each item's row (their text included) to learn its id and attributes:
~0.2-0.3 s at 100k items in a fresh process, on every `ctxvault search` and `add`. Both
indexes hold only what the scope predicate reads, so the answer comes from index pages:

- ``items_live_scope``: live items with every column an ``ItemFilter`` condition reads
  (vault/filters.py), and their id to reach their units;
- ``items_retired``: forgotten or superseded items (few), whose units a live scope never sees.

``id`` leads ``items_live_scope`` so that the planner never prefers it for an equality on kind
or space: led by ``kind``, it took the duplicate check's ``content_hash`` lookup from
``items_hash`` and scanned every memory (0.25 s at 100k).
"""

from __future__ import annotations

from sqlcipher3 import Connection

from vault.migrations.sql import run_script

SQL = """
CREATE INDEX items_live_scope ON items (id, kind, space, sensitivity, created_at, tags, deleted_at, superseded_at)
    WHERE deleted_at IS NULL AND superseded_at IS NULL;
CREATE INDEX items_retired ON items (id, deleted_at, superseded_at) WHERE deleted_at IS NOT NULL OR superseded_at IS NOT NULL;
"""


def up(conn: Connection) -> None:
    run_script(conn, SQL)
