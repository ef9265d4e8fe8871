"""Merge an ImportBatch into the vault: plan by id then content hash, then write in one transaction.

Planning only reads, so ``dry_run`` reports exactly what a real import would do and
writes nothing. A real import writes every row inside one transaction: any failure
rolls back the whole import.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from schemas.items import SPACE_PATTERN, TAG_PATTERN, Conflict
from schemas.portable import ImportSummary, Skipped
from vault import history
from vault import vectors as vector_rows
from vault.blob import content, content_size
from vault.chunking import chunk_text
from vault.dates import instant
from vault.errors import BadBundle, VaultError
from vault.history import DocFile, StateKey, Version, version_keys
from vault.index import training_points
from vault.items import (
    ITEM_COLUMNS,
    ROWS_PER_STATEMENT,
    UNIT_COLUMNS,
    Statement,
    column_statements,
    new_id,
    next_uid,
    row_statements,
    unit_text,
    utcnow,
)
from vault.portable import reconcile
from vault.portable.reconcile import drop_units
from vault.portable.records import MAX_TEXT_CHARS, ImportBatch, ItemRecord, Tombstone, VectorSet, check_text
from vault.settings import Settings
from vault.store import Row, Store

if TYPE_CHECKING:
    from numpy.typing import NDArray

Progress = Callable[[int, int, str], None]
Action = Literal["new", "updated", "unchanged", "skipped"]
_SPACE = re.compile(SPACE_PATTERN)
_TAG = re.compile(TAG_PATTERN)
_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
_SENSITIVITIES = frozenset({"low", "medium", "high"})


class Staging(Protocol):
    """Indexing that runs beside the transaction (``Retriever.stage``)."""

    def add(self, uids: NDArray[np.int64], vecs: NDArray[np.float16]) -> None: ...

    def written(self, lacking: NDArray[np.int64]) -> None: ...

    def finish(self, committed: bool) -> None: ...


@dataclass(slots=True)
class _Step:
    action: Action
    record: ItemRecord
    item_id: str
    reason: str | None = None
    supersede_live: str | None = None  # id of the vault's live preference this record replaces
    history_at: datetime | None = None  # the vault's value is newer: keep this one as history from then
    keep: tuple[Version, ...] = ()  # versions to add to the item's history (vault/history.py)
    current: bool = True  # False: the vault's state stays current and the record only joins the history
    conflict: Conflict | None = None  # both sides changed the item since their common version


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _check_all(records: tuple[ItemRecord, ...]) -> None:
    """Refuse the batch at its first record that breaks the vault's rules (nothing is written yet)."""
    spaces: set[str] = set()  # a batch uses a handful of spaces and tags: check each once
    tags: set[tuple[str, ...]] = set()
    for n, r in enumerate(records):
        text = r.text
        if (
            r.space in spaces
            and r.tags in tags
            and r.kind == "memory"
            and r.sensitivity in _SENSITIVITIES
            and type(text) is str
            and len(text) <= MAX_TEXT_CHARS
            and not text.isspace()
            and text
            and (text.isascii() or _utf8_ok(text))
        ):
            continue  # the rules _check applies, for a memory whose space and tags passed already
        _check(r, n)
        spaces.add(r.space)
        tags.add(r.tags)


def _utf8_ok(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check(r: ItemRecord, n: int) -> None:
    where = f"item {r.id or n!s:.40}"
    check_text(r.text, where)
    if not r.text.strip() and r.kind != "document":
        raise BadBundle(f"{where}: empty text")
    if not _SPACE.fullmatch(r.space):
        raise BadBundle(f"{where}: invalid space {r.space[:70]!r}")
    if bad := [t for t in r.tags if not _TAG.fullmatch(t)]:
        raise BadBundle(f"{where}: invalid tag {bad[0][:70]!r}")
    if r.kind == "preference" and not (r.key and _KEY.fullmatch(r.key)):
        raise BadBundle(f"{where}: preference without a valid key")
    if r.sensitivity not in ("low", "medium", "high"):
        raise BadBundle(f"{where}: invalid sensitivity")


def _same(r: ItemRecord, e: Row) -> bool:
    return (
        e["text"] == r.text
        and e["pref_key"] == r.key
        and e["space"] == r.space
        and json.loads(e["tags"]) == sorted(set(r.tags))
        and e["sensitivity"] == r.sensitivity
        and e["content_hash"] == r.content_hash
        and e["valid_from"] == _iso(r.valid_from)
        and e["valid_until"] == _iso(r.valid_until)
        and (e["superseded_at"] is None) == (r.superseded_at is None)
    )


@dataclass(frozen=True, slots=True)
class _Known:
    """What the vault holds that a batch's records may meet, read in bulk before anything is written."""

    existing: dict[str, Row]  # items with a record's id
    twins: dict[tuple[str, str], str]  # (kind, content hash) → live item id
    live_prefs: dict[str, Row]  # preference key → its live value (id, created_at)
    link_targets: set[str]  # ids that records supersede and the vault holds
    versions: dict[str, list[StateKey]]  # existing items with history → the states it holds, oldest first
    authors: dict[str, str]  # existing items with history → who wrote their current state
    tombstones: set[str]  # ids purged in this vault that a record or a tombstone of the batch names
    forget: list[str]  # live items of the vault that the source forgot or purged, unchanged here since
    kept: list[tuple[str, str]]  # live items the source forgot or purged that stay here, with the reason


def _lookup(store: Store, batch: ImportBatch, scan: bool | None = None) -> _Known:
    """Read what the batch's records may meet: by probing the vault for each record's id and hash, or,
    when the vault holds fewer items than the batch has records (``scan``), by reading the vault's side
    instead (a first import reads nothing, and hashes its texts only as it plans)."""
    ids = [r.id for r in batch.records if r.id]
    if scan is None:
        held = store.one("SELECT count(*) FROM items")
        scan = (int(held[0]) if held else 0) < len(batch.records)
    if scan:
        wanted = set(ids)
        ids = [item_id for (item_id,) in store.query("SELECT id FROM items") if item_id in wanted]
    existing: dict[str, Row] = {}
    for start in range(0, len(ids), 5000):
        part = json.dumps(ids[start : start + 5000])
        for row in store.query(f"SELECT {ITEM_COLUMNS} FROM items WHERE id IN (SELECT value FROM json_each(?))", [part]):
            existing[row["id"]] = row
    hashes = None if scan else [r.content_hash for r in batch.records if r.superseded_at is None and not (r.id and r.id in existing)]
    twins = _live_twins(store, hashes)
    keys = list({r.key for r in batch.records if r.kind == "preference" and r.key})
    live_prefs = {
        row["pref_key"]: row
        for row in store.query(
            "SELECT pref_key, id, created_at FROM items WHERE kind = 'preference' AND pref_key IN (SELECT value FROM json_each(?)) "
            "AND deleted_at IS NULL AND superseded_at IS NULL",
            [json.dumps(keys)],
        )
    } if keys else {}  # fmt: skip
    links = list({r.supersedes for r in batch.records if r.supersedes})
    targets = (
        {r[0] for r in store.query("SELECT id FROM items WHERE id IN (SELECT value FROM json_each(?))", [json.dumps(links)])}
        if links
        else set()
    )
    history_rows = [item_id for item_id in existing] if existing else []
    versions = version_keys(store, history_rows) if history_rows else {}
    authors = (
        {
            r[0]: r[1]
            for r in store.query(
                "SELECT v.item_id, v.replaced_by FROM item_versions v JOIN (SELECT item_id, max(version) AS top FROM item_versions "
                "WHERE item_id IN (SELECT value FROM json_each(?)) GROUP BY item_id) t ON t.item_id = v.item_id AND t.top = v.version",
                [json.dumps(list(versions))],
            )
        }
        if versions
        else {}
    )
    purged: set[str] = set()
    if store.one("SELECT 1 FROM tombstones LIMIT 1") is not None:  # most vaults never purged: nothing to probe
        named = [*(r.id for r in batch.records if r.id), *(t.id for t in batch.tombstones)]
        for start in range(0, len(named), 5000):
            part = json.dumps(named[start : start + 5000])
            purged |= {r[0] for r in store.query("SELECT id FROM tombstones WHERE id IN (SELECT value FROM json_each(?))", [part])}
    forget, kept = _forgettable(store, batch.tombstones)
    return _Known(existing, twins, live_prefs, targets, versions, authors, purged, forget, kept)


FORGOTTEN_BUT_CHANGED = "forgotten in the source, changed here since: kept"
FORGOTTEN_AT_ANOTHER = "forgotten in the source at another version than this vault's: kept"


def _forgettable(store: Store, tombstones: Sequence[Tombstone]) -> tuple[list[str], list[tuple[str, str]]]:
    """The vault's live items a tombstone names, split into those to forget and those to keep (with the reason).

    A tombstone forgets only a state the source held: the vault's copy is the forgotten state, or (the
    tombstone lists the states the source held) one the source moved on from, so this vault is merely
    behind. A copy changed after the tombstone's instant, or at a state the source never held, is kept and
    reported rather than lost; a bundle made before tombstones listed states is matched by hash and time.
    """
    by_id = {t.id: t for t in tombstones}
    forget: list[str] = []
    kept: list[tuple[str, str]] = []
    gone = list(by_id)
    for start in range(0, len(gone), 5000):
        part = json.dumps(gone[start : start + 5000])
        for row in store.query(
            "SELECT id, content_hash, updated_at FROM items WHERE id IN (SELECT value FROM json_each(?)) AND deleted_at IS NULL "
            "ORDER BY id",
            [part],
        ):
            t = by_id[row["id"]]
            updated = instant(row["updated_at"])
            if t.states is not None:
                behind = (updated, row["content_hash"]) in t.states
            else:
                behind = (t.content_hash is None or t.content_hash == row["content_hash"]) and updated <= t.at
            if behind:
                forget.append(row["id"])
            else:
                kept.append((row["id"], FORGOTTEN_BUT_CHANGED if updated > t.at else FORGOTTEN_AT_ANOTHER))
    return forget, kept


def plan(store: Store, batch: ImportBatch, progress: Progress | None = None, now: datetime | None = None) -> list[_Step]:
    """Decide, for every record, whether it is new, an update, unchanged or skipped."""
    _check_all(batch.records)
    return list(_steps(batch, _lookup(store, batch), progress, "planning", actor="owner", now=now or utcnow()))


def write_order(records: Sequence[ItemRecord]) -> list[ItemRecord]:
    """Records by (created_at, id), ids missing first: by id, then stably by instant.

    Two stable sorts order exactly as one on the pair, in under a third of the time (no tuple
    made or compared per record): 0.06 s against 0.2 s at 100k, before the first row can be written.
    """
    out = sorted(records, key=_id_or_empty)
    out.sort(key=_CREATED)
    return out


def _id_or_empty(r: ItemRecord) -> str:
    return r.id or ""


_CREATED = attrgetter("created_at")


def _steps(
    batch: ImportBatch, known: _Known, progress: Progress | None, phase: str, *, actor: str = "owner", now: datetime | None = None
) -> Iterator[_Step]:
    """The plan, one record at a time in write order; reads nothing from the store, so a writer may consume it as it goes.

    Raises:
        BadBundle: an id appears twice (a real import is inside its transaction by then, and rolls back).
    """
    existing, twins = known.existing, known.twins
    now = now or utcnow()
    seen: dict[tuple[str, str], str] = {}
    batch_ids: set[str] = set()
    live_keys: dict[str, str] = {}
    total = len(batch.records)
    for n, r in enumerate(write_order(batch.records), 1):
        if progress and (n % 1000 == 0 or n == total):
            progress(n, total, phase)
        if r.id and r.id in batch_ids:
            raise BadBundle(f"item id {r.id[:40]!r} appears twice in the source")
        if r.id:
            batch_ids.add(r.id)
        if known.tombstones and r.id in known.tombstones:
            yield _Step("skipped", r, r.id, "purged in this vault")
            continue
        e = existing.get(r.id) if r.id else None
        if e is not None and batch.partial and r.superseded_at is not None and r.superseded_by is None and e["superseded_at"] is None:
            # A slice replaces a live value only with a successor it holds (or forgot): one outside the slice
            # was left out, not given, and the key would be left without a value here.
            r = replace(r, superseded_at=None, valid_until=instant(e["valid_until"]) if e["valid_until"] else None)
        if e is not None:
            if e["deleted_at"] is not None:
                yield _Step("skipped", r, e["id"], "forgotten in this vault")
            elif e["kind"] != r.kind:
                yield _Step("skipped", r, e["id"], f"id is a {e['kind']} in this vault")
            elif _same(r, e):
                yield _Step("unchanged", r, e["id"])
            else:
                yield _merge_step(r, e, known, batch.source, actor, now)
            continue
        key = (r.kind, r.content_hash) if r.superseded_at is None else None
        if key is not None:
            if key in seen:
                yield _Step("skipped", r, seen[key], f"same content as {seen[key]} in the source")
                continue
            twin = twins.get(key)
            if twin is not None:
                yield _Step("unchanged", r, twin, f"same content as {twin}")
                seen[key] = twin
                continue
        step = _Step("new", r, r.id or new_id())
        if r.history:  # rare: a keyword argument per record costs measurably at 100k
            step.keep = r.history
        if r.kind == "preference" and r.superseded_at is None and r.key:
            row = None if r.key in live_keys else known.live_prefs.get(r.key)
            if row is not None and row["id"] not in batch_ids:
                vault_since = instant(row["created_at"])
                if r.created_at >= vault_since:
                    step.supersede_live = row["id"]
                else:
                    step.history_at = vault_since
            live_keys[r.key] = step.item_id
        if key is not None:
            seen[key] = step.item_id
        yield step


def _merge_step(r: ItemRecord, e: Row, known: _Known, source: str, actor: str, now: datetime) -> _Step:
    """An item both sides hold, by id (vault/portable/reconcile.py decides)."""
    d = reconcile.decide(r, e, known.versions.get(e["id"], ()), known.authors.get(e["id"], e["created_by"]), source, actor, now)
    return _Step(d.action, r, e["id"], d.reason, keep=d.keep, current=d.current, conflict=d.conflict)


def _live_twins(store: Store, hashes: list[str] | None) -> dict[tuple[str, str], str]:
    """Live items of the vault with one of these content hashes (``None``: every live item): (kind, hash) → id,
    the first by id."""
    select = "SELECT kind, content_hash, id FROM items WHERE deleted_at IS NULL AND superseded_at IS NULL"
    if hashes is None:
        rows = store.query(f"{select} ORDER BY id")
    else:
        unique = list(dict.fromkeys(hashes))
        rows = [
            row
            for start in range(0, len(unique), 5000)
            for row in store.query(
                f"{select} AND content_hash IN (SELECT value FROM json_each(?)) ORDER BY id", [json.dumps(unique[start : start + 5000])]
            )
        ]
    twins: dict[tuple[str, str], str] = {}
    for row in rows:
        twins.setdefault((row[0], row[1]), row[2])
    return twins


def apply(
    store: Store,
    batch: ImportBatch,
    settings: Settings,
    *,
    actor: str,
    dry_run: bool,
    progress: Progress | None = None,
    stage: Callable[[NDArray[np.float16], int], Staging] | None = None,
) -> ImportSummary:
    """Plan, and unless ``dry_run``, write the batch in one transaction.

    ``stage`` receives a training sample of the source's vectors and their count before the
    transaction, then each batch with its unit ids as it is queued, so the caller can index
    them while the rows are being written.
    """
    with _gc_paused():
        return _apply(store, batch, settings, actor=actor, dry_run=dry_run, progress=progress, stage=stage)


class _Tally:
    """What the steps did, counted in plain ints (a pydantic field assignment per record cost ~3 µs) and
    copied into the summary once."""

    def __init__(self, summary: ImportSummary) -> None:
        self._summary = summary
        self._actions: dict[str, int] = {"new": 0, "updated": 0, "unchanged": 0}
        self._kinds: dict[str, int] = dict(summary.by_kind)

    def count(self, s: _Step) -> None:
        if s.action == "skipped":
            self._summary.skipped.append(Skipped(ref=(s.record.id or s.item_id)[:128], reason=s.reason or "skipped"))
            return
        self._actions[s.action] += 1
        if s.action != "unchanged":
            kind = s.record.kind
            self._kinds[kind] = self._kinds.get(kind, 0) + 1

    def done(self) -> None:
        summary = self._summary
        summary.new += self._actions["new"]
        summary.updated += self._actions["updated"]
        summary.unchanged += self._actions["unchanged"]
        summary.by_kind = self._kinds


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during a bulk import.

    An import allocates a few containers per record while the batch holds millions of
    live objects, so every full collection walks them all: 20-40% of the Python time
    of a 100k import. Nothing here creates cycles; collection resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _apply(
    store: Store,
    batch: ImportBatch,
    settings: Settings,
    *,
    actor: str,
    dry_run: bool,
    progress: Progress | None,
    stage: Callable[[NDArray[np.float16], int], Staging] | None,
) -> ImportSummary:
    vectors = batch.vectors
    reuse = vectors is not None and vectors.model == settings.model and vectors.dim > 0
    summary = ImportSummary(source=batch.source, detected=batch.format, dry_run=dry_run, skipped=list(batch.skipped))
    now = utcnow()
    if dry_run:
        _check_all(batch.records)
        known = _lookup(store, batch)
        steps = list(_steps(batch, known, progress, "planning", actor=actor, now=now))
        tally = _Tally(summary)
        for s in steps:
            tally.count(s)
        tally.done()
        if reuse and vectors is not None:
            # Exactly the vectors the real run stores: those of the units it writes, from the rows it keeps.
            rows = _SourceVectors(vectors)
            rows.keep(_reusable(batch, known))
            summary.vectors_reused = sum(
                1 for s in steps if s.action in ("new", "updated") for seq in _unit_seqs(s, settings) if (s.item_id, seq) in rows.row
            )
        summary.conflicts = [s.conflict for s in steps if s.conflict is not None]
        summary.forgotten = len(known.forget)
        summary.skipped += [Skipped(ref=item_id, reason=reason) for item_id, reason in known.kept]
        return summary
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctxvault-import") as pool:
        # Reading the vault releases the GIL: it runs while the records are checked.
        looking = pool.submit(_lookup, store, batch)
        _check_all(batch.records)
        known = looking.result()
    source = _SourceVectors(vectors) if reuse and vectors is not None else None
    staged: Staging | None = None
    try:
        if source is not None:
            # Only vectors of records that will likely be written (new ids, no twin): the rest would sway
            # the decision to (re)train the lists. Which rows are stored is decided exactly below, by unit.
            source.keep(_reusable(batch, known))
        if source is not None and stage is not None and source.size:
            # Indexing starts now (training needs only a sample of the vectors) and runs beside the writes.
            staged = stage(source.sample(training_points(source.size)), source.size)
        links: list[_Step] = []
        written: set[str] = set()
        # A bulk transaction (Store.transaction): without foreign-key checks, as each unit, vector and
        # link references a row written just before it (or known to exist), and the one cascade an
        # import needs, units to their vectors, is done by drop_units.
        with store.transaction(bulk=True):
            feed = None
            if source is not None and vectors is not None and source.size:
                model = vector_rows.model_id(store, vectors.model, vectors.dim)
                assert model is not None
                feed = _VectorFeed(source, model, staged)
            with _Queue(store, next_uid(store), feed, actor) as queue:
                # Planning streams into writing: rows are built and queued while earlier ones are inserted.
                tally = _Tally(summary)
                conflicts: list[Conflict] = []
                chains: set[str] = set()
                for s in _steps(batch, known, progress, "writing", actor=actor, now=now):
                    tally.count(s)
                    if s.action == "new" and s.supersede_live is None and s.record.document is None and not s.keep:
                        queue.add_new(s)  # nothing below depends on the row existing yet
                    elif s.action in ("new", "updated"):
                        queue.flush()  # the queued rows go first: writes keep their order
                        queue.add_units(_write(store, s, settings, actor, now))
                    else:
                        continue
                    written.add(s.item_id)
                    if s.conflict is not None:
                        conflicts.append(s.conflict)
                    if s.record.kind == "preference" and s.record.key:
                        chains.add(s.record.key)
                    if s.record.supersedes and s.current:
                        links.append(s)
                queue.flush()
                tally.done()
            summary.vectors_reused = feed.written if feed is not None else 0
            # Links last: a chain of versions may arrive in any order.
            for s in links:
                if s.record.supersedes in known.link_targets or s.record.supersedes in written:
                    store.execute("UPDATE items SET supersedes = ? WHERE id = ?", [s.record.supersedes, s.item_id])
            reconcile.one_chain(store, sorted(chains))  # every key written, whether or not it has a live value here
            summary.conflicts = conflicts
            summary.forgotten = reconcile.forget_sourced(store, batch.tombstones, known.forget, now)
            summary.skipped += [Skipped(ref=item_id, reason=reason) for item_id, reason in known.kept]
            if staged is not None and feed is not None:
                staged.written(np.array(feed.lacking, dtype=np.int64))
    except BaseException:
        if staged is not None:
            staged.finish(committed=False)
        raise
    if staged is not None:
        staged.finish(committed=True)
    return summary


_COLUMNS = ITEM_COLUMNS.split(", ")
FIRST_BATCH = 1250
# Units that are their item's text, copied from the items statement just run instead of sent twice
# (?1 the first uid, ?2 the statement's rows, ?3 the ids whose unit is sent instead). One INSERT numbers
# its rows from max(rowid) + 1 in order, so they are the last ?2 by rowid, in step order.
_COPY_UNITS = (
    "INSERT INTO units (uid, item_id, seq, text, start, end) SELECT ?1 + i.rowid - b.first, i.id, 0, i.text, 0, length(i.text) "
    "FROM (SELECT max(rowid) - ?2 + 1 AS first FROM items) b JOIN items i ON i.rowid >= b.first "
    "WHERE i.superseded_at IS NULL AND i.id NOT IN (SELECT value FROM json_each(?3))"
)


class _SourceVectors:
    """The source's vectors by unit key (item id, seq), converted to float16 only when needed: a training
    sample before the transaction, then each batch's as it is queued, on the planning thread, which has
    time to spare while the writer runs."""

    def __init__(self, vectors: VectorSet) -> None:
        self._matrix = vectors.matrix
        self.row = {key: n for n, key in enumerate(vectors.keys)}  # unit key → its row (a key listed twice: the last)

    @property
    def size(self) -> int:
        return len(self.row)

    def keep(self, ids: set[str]) -> None:
        """Only the vectors of these item ids."""
        self.row = {key: n for key, n in self.row.items() if key[0] in ids}

    def half(self, rows: list[int]) -> NDArray[np.float16]:
        """These rows of the source, as the table stores them."""
        return self._matrix[np.array(rows, dtype=np.intp)].astype(vector_rows.DTYPE)

    def sample(self, want: int) -> NDArray[np.float16]:
        """``want`` of the vectors at random (all of them when there are no more)."""
        rows = list(self.row.values())
        if want < len(rows):
            picked = np.sort(np.random.default_rng(1234).choice(len(rows), want, replace=False))
            rows = [rows[n] for n in picked.tolist()]
        return self.half(rows)


class _VectorFeed:
    """The source's vectors, written with the batch of units they belong to and handed to the index as they go."""

    def __init__(self, source: _SourceVectors, model: int, staged: Staging | None) -> None:
        self._source = source
        self._model, self._staged = model, staged
        self.written = 0
        self.lacking: list[int] = []  # units of the batch without a source vector: embedded after the import

    def statements(self, uids: list[int], item_ids: list[str], seqs: list[int]) -> list[Statement]:
        """The statements that insert the vectors of these units (run after the units'), which are staged for the index."""
        have: list[int] = []
        rows: list[int] = []
        row = self._source.row
        for uid, key in zip(uids, zip(item_ids, seqs, strict=True), strict=True):
            n = row.get(key)
            if n is None:
                self.lacking.append(uid)
            else:
                have.append(uid)
                rows.append(n)
        if not have:
            return []
        vecs = self._source.half(rows)
        if self._staged is not None:
            self._staged.add(np.array(have, dtype=np.int64), vecs)  # indexed on the worker while the rows are written
        self.written += len(have)
        return vector_rows.insert_statements(self._model, have, vecs)


class _Queue:
    """New item rows, their units and vectors, written in bulk statements on a second thread while the next ones are built.

    SQLite releases the GIL while a statement runs, so building rows in Python and
    inserting the previous batch overlap. The connection is never used by both threads
    at once: before any statement of its own, the caller calls ``flush()``, which waits.
    Unit ids are assigned here, in write order from ``first_uid`` (the caller holds the
    transaction), so no statement has to return them.
    """

    def __init__(self, store: Store, first_uid: int, feed: _VectorFeed | None, actor: str) -> None:
        self._store, self._feed, self._actor = store, feed, actor
        self._next_uid = first_uid
        self._new: list[_Step] = []
        # The writer idles until the first batch is built: it gets a small one, then each twice the last.
        self._batch = FIRST_BATCH
        self._units: list[tuple[int, str, int, str, int, int]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctxvault-rows")
        self._jobs: list[Future[None]] = []

    def __enter__(self) -> _Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        wait(self._jobs)  # nothing may still run on the connection when the transaction ends
        self._pool.shutdown()

    def add_new(self, step: _Step) -> None:
        """A new item that replaces nothing: its row and unit are built with the batch's, column by column."""
        self._new.append(step)
        if len(self._new) >= self._batch:
            self._send()
            self._batch = min(2 * self._batch, ROWS_PER_STATEMENT)

    def add_units(self, units: list[tuple[str, int, str, int, int]]) -> None:
        """The units of an item the caller wrote itself."""
        uid = self._next_uid
        self._units += [(uid + n, *unit) for n, unit in enumerate(units)]
        self._next_uid = uid + len(units)

    def _send(self) -> None:
        """Build the batch's statements here (Python: this thread) and run them on the writer (SQLite: no GIL)."""
        steps, units, self._new, self._units = self._new, self._units, [], []
        statements: list[Statement] = []
        checks: dict[int, int] = {}  # statement → the rows it must insert
        uids, item_ids, seqs = [u[0] for u in units], [u[1] for u in units], [u[2] for u in units]
        if steps:
            statements += column_statements("items", _COLUMNS, _item_columns(steps, self._actor))
            assert len(statements) == 1  # add_new sends at ROWS_PER_STATEMENT: the copy below reads this statement's rows
            # Step k's unit gets uid base + k (a step without a live unit leaves its uid unused).
            base, self._next_uid = self._next_uid, self._next_uid + len(steps)
            copied = 0
            sent: list[str] = []
            for k, s in enumerate(steps):
                text = _unit_text(s)
                if text is None:
                    continue
                uids.append(base + k)
                item_ids.append(s.item_id)
                seqs.append(0)
                if text == s.record.text and "\x00" not in text:
                    copied += 1
                else:  # a memory with its date context, a preference with its key, a text SQLite's length() would cut
                    units.append((base + k, s.item_id, 0, text, 0, len(text)))
                    sent.append(s.item_id)
            if copied:
                checks[len(statements)] = copied
                statements.append((_COPY_UNITS, [base, len(steps), json.dumps(sent)]))
        if units:
            statements += row_statements("units", UNIT_COLUMNS, units)
        if self._feed is not None and uids:
            statements += self._feed.statements(uids, item_ids, seqs)
        if statements:
            self._jobs.append(self._pool.submit(self._run, statements, checks))

    def _run(self, statements: list[Statement], checks: dict[int, int]) -> None:
        for n, (sql, params) in enumerate(statements):
            rows = self._store.execute(sql, params).rowcount
            if n in checks and rows != checks[n]:  # the import rolls back
                raise VaultError(f"bulk write: {rows} unit rows copied where {checks[n]} were expected")

    def flush(self) -> None:
        """Every queued row is written (errors raised here)."""
        if self._new or self._units:
            self._send()
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.result()


_TAGS_JSON: dict[tuple[str, ...], str] = {}


def _tags_json(tags: tuple[str, ...]) -> str:
    """The stored form of a tag set (sorted, unique); a batch repeats a few tag sets, so each is encoded once."""
    out = _TAGS_JSON.get(tags)
    if out is None:
        out = json.dumps(sorted(set(tags)))
        if len(_TAGS_JSON) < 4096:
            _TAGS_JSON[tags] = out
    return out


def _item_columns(steps: list[_Step], actor: str) -> list[Sequence[object]]:
    """The items rows of these steps, one list per column (ITEM_COLUMNS order); ``supersedes`` is linked later."""
    recs = [s.record for s in steps]
    created = [r.created_at.isoformat() for r in recs]
    # Most records were never edited: the same instant in the same offset formats the same.
    updated = [
        c if r.updated_at == r.created_at and r.updated_at.utcoffset() == r.created_at.utcoffset() else r.updated_at.isoformat()
        for r, c in zip(recs, created, strict=True)
    ]
    none: list[object] = [None] * len(recs)
    return [
        [s.item_id for s in steps], [r.kind for r in recs], [r.text for r in recs], [r.key for r in recs],
        [r.space for r in recs], [_tags_json(r.tags) for r in recs], [r.sensitivity for r in recs],
        [r.source for r in recs], [r.created_by or actor for r in recs], created, updated,
        [_iso(r.valid_from) for r in recs], [_iso(r.valid_until) for r in recs], [r.content_hash for r in recs],
        none,  # supersedes
        [s.history_at.isoformat() if s.history_at else _iso(s.record.superseded_at) for s in steps],
        none,  # deleted_at
        [json.dumps(dict(r.meta)) if r.meta else "{}" for r in recs],
    ]  # fmt: skip


def _unit_text(s: _Step) -> str | None:
    """The text of the one unit of a step's item that is not a document with a file; ``None`` when the
    version is not live (a superseded or historical value is kept but not searched)."""
    r = s.record
    if r.superseded_at is not None or s.history_at is not None:
        return None
    return unit_text(r.kind, r.text, r.key, at=r.valid_from or r.created_at)


def _reusable(batch: ImportBatch, known: _Known) -> set[str]:
    """Ids of the records whose source vectors may be stored: new ids without a twin in the vault."""
    twins = known.twins  # every record is hashed here only when the vault has items to be twins of
    return {r.id for r in batch.records if r.id and r.id not in known.existing and not (twins and (r.kind, r.content_hash) in twins)}


def _unit_seqs(s: _Step, settings: Settings) -> list[int]:
    """The units a step writes (their seqs), as ``_write`` and the queue write them: what a dry run counts."""
    r = s.record
    if not s.current:
        return []
    if r.kind == "document" and r.document is not None:
        if r.document.chunks:
            return [c.seq for c in r.document.chunks]
        return [c.seq for c in chunk_text(r.document.text or "", settings.chunk_chars, settings.chunk_overlap)]
    return [] if _unit_text(s) is None else [0]


def _keep(store: Store, s: _Step, now: datetime) -> None:
    reconcile.keep_versions(store, s.item_id, s.keep, s.conflict, now)


def _with_files(store: Store, s: _Step) -> tuple[Version, ...]:
    """A document's versions to keep, each with the file it held: the record's own (a conflict the vault's
    side won) from the bundle, the vault's current one (a conflict the source's side won) from ``doc_files``;
    a version from the bundle's history brings its own."""
    r = s.record
    ours = store.one("SELECT updated_at, content_hash FROM items WHERE id = ?", [s.item_id])
    ours_key = (instant(ours[0]), str(ours[1])) if ours is not None else None
    doc = r.document
    theirs = DocFile(doc.path, doc.filename, doc.mime, doc.sha256, doc.data) if doc is not None else None
    mine = history.current_file(store, s.item_id) if ours_key is not None else None
    out: list[Version] = []
    for v in s.keep:
        if v.file is None and v.state.key == r.state.key:
            v = replace(v, file=theirs)
        elif v.file is None and v.state.key == ours_key:
            v = replace(v, file=mine)
        out.append(v)
    return tuple(out)


def _write(store: Store, s: _Step, settings: Settings, actor: str, now: datetime) -> list[tuple[str, int, str, int, int]]:
    """Write one item row that replaces or updates another, carries a document file or a history; returns the units to insert for it."""
    r = s.record
    if r.kind == "document" and s.keep:
        s.keep = _with_files(store, s)
    if not s.current:  # the vault's state stays current: the record joins its history
        _keep(store, s, now)
        return []
    row = [col[0] for col in _item_columns([s], actor)]
    if s.supersede_live:
        # Before the insert: only one live value per key may exist at any moment.
        stamp = r.created_at.isoformat()
        store.execute("UPDATE items SET superseded_at = ?, valid_until = ? WHERE id = ?", [stamp, stamp, s.supersede_live])
        drop_units(store, s.supersede_live)
    if s.action == "new":
        store.execute(f"INSERT INTO items ({ITEM_COLUMNS}) VALUES ({','.join('?' * len(row))})", row)
    else:
        store.execute(f"UPDATE items SET {', '.join(c + ' = ?' for c in _COLUMNS[1:])} WHERE id = ?", [*row[1:], s.item_id])
        drop_units(store, s.item_id)
    if s.keep:
        _keep(store, s, now)
    if s.supersede_live and not r.supersedes:
        store.execute("UPDATE items SET supersedes = ? WHERE id = ?", [s.supersede_live, s.item_id])
    if r.kind == "document" and r.document is not None:
        doc = r.document
        store.execute("DELETE FROM doc_files WHERE item_id = ?", [s.item_id])
        store.execute(
            "INSERT INTO doc_files (item_id, path, filename, mime, size, sha256, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [s.item_id, doc.path, doc.filename, doc.mime, content_size(doc.data), doc.sha256, content(doc.data)],
        )
        if doc.chunks:
            return [(s.item_id, c.seq, c.text, c.start, c.end) for c in doc.chunks]
        chunks = chunk_text(doc.text or "", settings.chunk_chars, settings.chunk_overlap)
        return [(s.item_id, c.seq, unit_text("document", c.text, title=r.text), c.start, c.end) for c in chunks]
    text = _unit_text(s)
    return [] if text is None else [(s.item_id, 0, text, 0, len(text))]  # the span VaultService._insert_unit records
