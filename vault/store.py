"""The SQLCipher connection: key, pragmas, transactions and driver-error translation.

The database is opened with the raw 256-bit data key (``PRAGMA key = "x'…'"``),
so SQLCipher's own passphrase KDF is never used. Nothing else in the project
catches ``sqlcipher3`` exceptions.

A vault on a read-only mount (a backup, a snapshot) or in files this user may not write
is opened read-only (issue 27): SQLite's WAL needs a writable ``-shm`` beside the file, so
the connection is ``mode=ro`` when it can share one, else ``immutable=1`` (safe only while
no ``-wal`` holds writes, which is checked). Every read works; a write raises
``VaultReadOnly`` naming the path, never "corrupt".
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlcipher3

from vault.crypto import DataKey
from vault.errors import StorageFailed, StoreCorrupt, VaultBusy, VaultError, VaultReadOnly

Row = sqlcipher3.Row
DriverError = sqlcipher3.Error

# Several host apps each run their own `ctxvault mcp`; writers wait for each other
# instead of failing (BRIEF §4: no write is ever lost).
BUSY_TIMEOUT_MS = 15_000


class Store:
    """One open, keyed connection to the vault database."""

    def __init__(self, path: Path, key: DataKey, *, gate: threading.Lock | None = None) -> None:
        """``gate``: the lock another connection of this process holds around its write transactions
        (vault/readers.py): in-process writers then take turns on it, woken at once, instead of in
        SQLite's busy handler, which sleeps up to 100 ms between tries."""
        self.path = path
        self.gate = gate or threading.Lock()
        self.read_only = read_only_place(path)
        if self.read_only:
            self.conn = self._open_read_only(key)
            return
        conn = _connect(str(path), key, uri=False)
        self.conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # A vault left on a rollback journal by an older version (a hot journal is rolled back
            # by the read above) goes back to the WAL, waiting out a process still writing it.
            if not _use_wal(conn, BUSY_TIMEOUT_MS / 1000):
                conn.close()
                raise _busy()
            for pragma in (
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

    def _open_read_only(self, key: DataKey) -> sqlcipher3.Connection:
        """A read-only connection: sharing the WAL's ``-shm`` when it can, else the file as it stands."""
        target = "file:" + quote(str(self.path))
        try:
            conn = _connect(target + "?mode=ro", key, uri=True)
        except (StorageFailed, StoreCorrupt):
            # No -shm can be made (a read-only directory: "unable to open", or "readonly database"
            # on some mounts): only the database file is read, so a -wal holding committed writes
            # (a copy taken mid-write) would be silently ignored. A wrong key fails again below.
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise VaultReadOnly(
                    f"the vault is read-only ({self.path.parent}) and its {wal.name} holds writes not yet in {self.path.name}: "
                    "copy the vault directory somewhere writable to open it"
                ) from None
            conn = _connect(target + "?immutable=1", key, uri=True)
        for pragma in ("PRAGMA foreign_keys = ON", "PRAGMA temp_store = MEMORY", "PRAGMA cache_size = -65536"):
            conn.execute(pragma)
        return conn

    def refused(self) -> VaultReadOnly:
        """The error for a write to a read-only vault."""
        return VaultReadOnly(
            f"the vault is read-only ({self.path.parent}): reads work, writes need a writable copy "
            "(copy the vault directory somewhere writable, or remount it read-write)"
        )

    def close(self) -> None:
        if not self.read_only:
            try:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlcipher3.Error:
                pass
        self.conn.close()

    @contextmanager
    def transaction(self, *, bulk: bool = False) -> Iterator[sqlcipher3.Connection]:
        """Run a block as one IMMEDIATE transaction (writers queue, readers continue).

        ``bulk`` is for a writer of many rows whose rows reference rows it wrote just
        before, and which deletes children itself (an import): no foreign-key checks or
        actions (0.2-0.3 s per 100k rows on its one writer).

        A bulk write stays on the WAL like every other write. It once switched to a
        rollback journal when alone on the vault (each page written once instead of twice,
        about 0.5 s of a 100k import), but then the journal of an import killed midway was
        the only copy of the pages it had overwritten in the database file: a lost or
        deleted ``vault.db-journal`` destroyed the whole vault (issue 29). On the WAL the
        database file is written only by checkpoints of committed transactions, so a lost
        ``-wal`` costs at most the writes since the last checkpoint (docs/architecture.md,
        "Files that travel together").

        SQLite switches foreign keys only between transactions, so a nested block keeps
        the outer one's (correct, only slower).
        """
        conn = self.conn
        if self.read_only:
            raise self.refused()
        if conn.in_transaction:
            # Nested use joins the outer transaction: one commit for the whole write.
            yield conn
            return
        if not self.gate.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise _busy()
        try:
            if not bulk:
                with self._immediate(conn):
                    yield conn
                return
            conn.execute("PRAGMA foreign_keys = OFF")
            try:
                with self._immediate(conn):
                    yield conn
            finally:
                conn.execute("PRAGMA foreign_keys = ON")
        finally:
            self.gate.release()

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

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        try:
            return Cursor(self.conn.execute(sql, params))
        except sqlcipher3.DatabaseError as exc:
            raise self.translate(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """One statement over many rows (no FTS table written: FTS5 flushes after every row here)."""
        try:
            self.conn.executemany(sql, rows)
        except sqlcipher3.DatabaseError as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: Exception) -> VaultError:
        """``translate``, knowing that a write to a read-only vault is refused, not a sign of damage."""
        if self.read_only and "readonly database" in str(exc):
            return self.refused()
        return translate(exc)

    def query(self, sql: str, params: Any = ()) -> list[sqlcipher3.Row]:
        return self.execute(sql, params).fetchall()

    def one(self, sql: str, params: Any = ()) -> sqlcipher3.Row | None:
        return self.execute(sql, params).fetchone()


class Cursor:
    """A driver cursor whose fetches translate driver errors too.

    SQLite reads most pages while stepping through rows, not when the statement starts:
    a damaged page past the first rows fails in a fetch (issue 29), and must surface as
    ``StoreCorrupt`` like one that fails at once.
    """

    __slots__ = ("_cur",)

    def __init__(self, cur: sqlcipher3.Cursor) -> None:
        self._cur = cur

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)

    @property
    def lastrowid(self) -> int | None:
        rowid = self._cur.lastrowid
        return None if rowid is None else int(rowid)

    def fetchone(self) -> sqlcipher3.Row | None:
        try:
            row: sqlcipher3.Row | None = self._cur.fetchone()
        except sqlcipher3.DatabaseError as exc:
            raise translate(exc) from exc
        return row

    def fetchmany(self, size: int) -> list[sqlcipher3.Row]:
        try:
            return list(self._cur.fetchmany(size))
        except sqlcipher3.DatabaseError as exc:
            raise translate(exc) from exc

    def fetchall(self) -> list[sqlcipher3.Row]:
        try:
            return list(self._cur.fetchall())
        except sqlcipher3.DatabaseError as exc:
            raise translate(exc) from exc

    def __iter__(self) -> Iterator[sqlcipher3.Row]:
        while batch := self.fetchmany(1000):
            yield from batch


def read_only_place(path: Path) -> bool:
    """Whether this process cannot write the database, its directory (the WAL's files), or the mount."""
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False  # missing: connect() says so
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _connect(target: str, key: DataKey, *, uri: bool) -> sqlcipher3.Connection:
    """A keyed connection whose key is checked by one read."""
    try:
        conn = sqlcipher3.connect(target, uri=uri, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlcipher3.Error as exc:
        raise (translate(exc) if _is_storage(exc) else StoreCorrupt(f"cannot open the vault database at {target}")) from exc
    conn.row_factory = sqlcipher3.Row
    # SQLCipher logs a wrong key to stderr by default; stdio MCP needs a clean channel.
    conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError as exc:
        conn.close()
        if _is_busy(exc) or _is_storage(exc):
            raise translate(exc) from exc
        raise StoreCorrupt("the vault database cannot be decrypted with this vault's key (corrupt or replaced file)") from exc
    return conn


def _use_wal(conn: sqlcipher3.Connection, wait_s: float) -> bool:
    """Put the vault in WAL mode, retrying for up to ``wait_s`` while another connection holds a lock.

    A change of journal mode fails at once when it cannot get its lock; SQLite's busy
    handler does not wait for it.
    """
    deadline = time.monotonic() + wait_s
    pause = 0.001
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is not None and mode[0] == "wal":
                return True
        except sqlcipher3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(2 * pause, 0.05)


def _is_busy(exc: Exception) -> bool:
    """SQLITE_BUSY: another connection holds a lock this one needs."""
    return isinstance(exc, sqlcipher3.OperationalError) and "database is locked" in str(exc)


def _busy() -> VaultBusy:
    return VaultBusy(f"the vault was held by another process for more than {BUSY_TIMEOUT_MS // 1000} s (a bulk import?): try again")


def _is_storage(exc: Exception) -> bool:
    """SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY, SQLITE_CANTOPEN: the disk, not the data, failed."""
    text = str(exc)
    return isinstance(exc, sqlcipher3.OperationalError) and any(
        part in text for part in ("disk is full", "disk I/O error", "unable to open database file")
    )


def translate(exc: Exception) -> VaultError:
    """Map a driver error to our hierarchy."""
    if _is_busy(exc):
        return _busy()
    text = str(exc)
    if _is_storage(exc):
        # The write was rolled back (SQLite keeps the database consistent); nothing committed was lost.
        return StorageFailed(f"the disk refused a write to the vault ({text}): free space or fix the disk, then try again")
    if "readonly database" in text:
        # SQLCipher makes a connection read-only once a page fails its HMAC (or the file itself is read-only).
        return StoreCorrupt(
            "the vault database refused a write: a damaged page makes it read-only (or the file is): "
            "`ctxvault export --salvage` exports what is still readable"
        )
    if "not a database" in text or "malformed" in text:
        return StoreCorrupt(
            "the vault database is corrupt or not readable with this key: `ctxvault export --salvage` exports what is still readable"
        )
    return VaultError(f"database error: {text}")
