"""Run a multi-statement SQL script inside the caller's transaction."""

from __future__ import annotations

import sqlcipher3


def statements(script: str) -> list[str]:
    """Split a script into complete statements (trigger bodies stay whole)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if not buf and line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlcipher3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def run_script(conn: sqlcipher3.Connection, script: str) -> None:
    # executescript() would COMMIT first; running statements one by one keeps the
    # migration and its record in the caller's single transaction.
    for statement in statements(script):
        conn.execute(statement)
