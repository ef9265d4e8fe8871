"""The SQLCipher connection: key, pragmas, transactions and driver-error translation.

The database is opened with the raw 256-bit data key (``PRAGMA key = "x'…'"``),
so SQLCipher's own passphrase KDF is never used. Nothing else in the project
catches ``sqlcipher3`` exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlcipher3

from vault.crypto import DataKey
from vault.errors import StoreCorrupt, VaultError

Row = sqlcipher3.Row
DriverError = sqlcipher3.Error

# Several host apps each run their own `ctxvault mcp`; writers wait for each other
# instead of failing (BRIEF §4: no write is ever lost).
BUSY_TIMEOUT_MS = 15_000


class Store:
    """One open, keyed connection to the vault database."""

    def __init__(self, path: Path, key: DataKey) -> None:
        self.path = path
        try:
            conn = sqlcipher3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlcipher3.Error as exc:
            raise StoreCorrupt(f"cannot open the vault database at {path}") from exc
        conn.row_factory = sqlcipher3.Row
        self.conn = conn
        # SQLCipher logs a wrong key to stderr by default; stdio MCP needs a clean channel.
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError as exc:
            conn.close()
            raise StoreCorrupt("the vault database cannot be decrypted with this vault's key (corrupt or replaced file)") from exc
        try:
            for pragma in (
                f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA secure_delete = ON",
                # Sorts and temp indices stay in memory: no temp file with plaintext pages.
                "PRAGMA temp_store = MEMORY",
                # Up to 64 MiB of decrypted pages: a bulk import into 100k items rewrites
                # random pages of the hash index, and a page evicted is a page decrypted again.
                "PRAGMA cache_size = -65536",
            ):
                conn.execute(pragma)
        except sqlcipher3.Error as exc:
            conn.close()
            raise translate(exc) from exc

    def close(self) -> None:
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlcipher3.Error:
            pass
        self.conn.close()

    @contextmanager
    def transaction(self, *, foreign_keys: bool = True) -> Iterator[sqlcipher3.Connection]:
        """Run a block as one IMMEDIATE transaction (writers queue, readers continue).

        ``foreign_keys=False`` runs it without foreign-key checks or actions: for a bulk
        writer whose rows reference rows it wrote just before, and which deletes children
        itself. SQLite switches them only between transactions, so a nested block keeps
        them on (and stays correct, only slower).
        """
        conn = self.conn
        if conn.in_transaction:
            # Nested use joins the outer transaction: one commit for the whole write.
            yield conn
            return
        if not foreign_keys:
            conn.execute("PRAGMA foreign_keys = OFF")
        try:
            with self._immediate(conn):
                yield conn
        finally:
            if not foreign_keys:
                conn.execute("PRAGMA foreign_keys = ON")

    @staticmethod
    @contextmanager
    def _immediate(conn: sqlcipher3.Connection) -> Iterator[None]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlcipher3.OperationalError as exc:
            raise translate(exc) from exc
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlcipher3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise translate(exc) from exc

    def execute(self, sql: str, params: Any = ()) -> sqlcipher3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlcipher3.DatabaseError as exc:
            raise translate(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """One statement over many rows (no FTS table written: FTS5 flushes after every row here)."""
        try:
            self.conn.executemany(sql, rows)
        except sqlcipher3.DatabaseError as exc:
            raise translate(exc) from exc

    def query(self, sql: str, params: Any = ()) -> list[sqlcipher3.Row]:
        return list(self.execute(sql, params).fetchall())

    def one(self, sql: str, params: Any = ()) -> sqlcipher3.Row | None:
        row: sqlcipher3.Row | None = self.execute(sql, params).fetchone()
        return row


def translate(exc: Exception) -> VaultError:
    """Map a driver error to our hierarchy."""
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return StoreCorrupt("the vault database is corrupt or not readable with this key")
    return VaultError(f"database error: {text}")
