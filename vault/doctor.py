"""The vault's health: every part checked against the canonical rows, and the derived parts rebuilt from them.

Canonical: items, doc_files, preferences' history, apps, grants, the audit log, the key file.
Derived (rebuilt by ``repair``, never the other way round): the FTS index over units, the
units themselves (a memory's or preference's text, a document's chunks), the vectors of the
units, and the sealed index file. A repair never writes a canonical row; each step is
idempotent and commits as it goes, so an interrupted repair continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from vault import index_delta, keys, sealed_index
from vault import vectors as vector_rows
from vault.audit import AuditLog
from vault.chunking import chunk_text
from vault.crypto import DataKey
from vault.documents import extract
from vault.errors import AuditTampered, VaultError
from vault.index import index_file
from vault.items import unit_text
from vault.migrations import MIGRATIONS
from vault.settings import Settings
from vault.store import Store

Progress = Callable[[int, int, str], None]
"""(done, total, what): one step of a repair, over its real unit of work."""

UNIT_BATCH = 500  # items whose units are rewritten per transaction

_LIVE = "deleted_at IS NULL AND superseded_at IS NULL"


@dataclass(frozen=True, slots=True)
class Check:
    """One part of the vault: whether it is sound, in words, and whether ``--repair`` rebuilds it."""

    part: str
    ok: bool
    detail: str
    repairable: bool = False


@dataclass(slots=True)
class DoctorReport:
    home: str
    read_only: bool
    checks: list[Check]
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def repairable(self) -> bool:
        """Every problem found is in a derived part."""
        return all(c.ok or c.repairable for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {
            "home": self.home,
            "read_only": self.read_only,
            "healthy": self.healthy,
            "repairable": self.repairable,
            "checks": [asdict(c) for c in self.checks],
            "repaired": list(self.repaired),
        }


def _count(store: Store, sql: str, params: list[object] | None = None) -> int:
    row = store.one(sql, params or [])
    return int(row[0]) if row and row[0] is not None else 0


def check_key_file(settings: Settings) -> Check:
    try:
        keys.read(settings.key_path)
    except VaultError as exc:
        return Check("key file", False, exc.message)  # it says what to do: restore vault.key from a backup
    leftover = settings.key_path.with_suffix(".key.tmp")
    note = f" (a leftover {leftover.name} from an interrupted passphrase change is ignored)" if leftover.exists() else ""
    return Check("key file", True, f"{settings.key_path.name} is whole and its checksum matches{note}")


def check_database(store: Store) -> Check:
    try:
        cipher = [str(r[0]) for r in store.query("PRAGMA cipher_integrity_check")]
        sqlite = [str(r[0]) for r in store.query("PRAGMA integrity_check(20)")]
    except VaultError as exc:
        return Check("database", False, f"{exc.message}")
    problems = cipher + [p for p in sqlite if p != "ok"]
    if problems:
        return Check(
            "database",
            False,
            f"{len(problems)} problem(s), first: {problems[0]}: `ctxvault export --salvage` exports what is still readable",
        )
    return Check("database", True, "every page decrypts and authenticates; SQLite's integrity check passes")


def check_migrations(store: Store) -> Check:
    done = {str(r[0]) for r in store.query("SELECT name FROM _migrations")}
    known = [m.name for m in MIGRATIONS]
    missing = [n for n in known if n not in done]
    unknown = sorted(done - set(known))
    if unknown:
        return Check("migrations", False, f"schema changes from a newer Context Vault: {', '.join(unknown)}")
    if missing:
        return Check("migrations", False, f"{len(missing)} not applied ({', '.join(missing)}): open the vault read-write once")
    return Check("migrations", True, f"all {len(known)} applied")


def check_fts(store: Store) -> Check:
    units = _count(store, "SELECT count(*) FROM units")
    indexed = _count(store, "SELECT count(*) FROM units_fts_docsize")
    if indexed != units:
        return Check("keyword index", False, f"{indexed} entries for {units} units", repairable=True)
    if not store.read_only:
        try:
            # Compares every indexed term with the units' text (a write statement that writes nothing).
            store.execute("INSERT INTO units_fts (units_fts, rank) VALUES ('integrity-check', 1)")
        except VaultError:
            return Check("keyword index", False, "its terms disagree with the units' text", repairable=True)
    return Check("keyword index", True, f"{units} units indexed")


@dataclass(frozen=True, slots=True)
class _Expected:
    item_id: str
    units: list[tuple[str, int, int]]  # (text, start, end) per seq


def _expected_units(store: Store, settings: Settings, item_ids: list[str]) -> Iterator[_Expected]:
    """The units each live item should have, derived from its canonical row (and, for a document, its file)."""
    marks = ",".join("?" * len(item_ids))
    rows = store.query(
        f"SELECT i.id, i.kind, i.text, i.pref_key, i.valid_from, i.created_at, f.data, f.mime, f.filename "
        f"FROM items i LEFT JOIN doc_files f ON f.item_id = i.id WHERE i.id IN ({marks})",
        item_ids,
    )
    for r in rows:
        kind = str(r["kind"])
        if kind == "document":
            if r["data"] is None:
                continue  # no file to derive chunks from: left as they are
            _title, text = extract(bytes(r["data"]), str(r["mime"]), str(r["filename"]))
            chunks = chunk_text(text, settings.chunk_chars, settings.chunk_overlap)
            yield _Expected(str(r["id"]), [(unit_text("document", c.text, title=str(r["text"])), c.start, c.end) for c in chunks])
            continue
        at = datetime.fromisoformat(str(r["valid_from"] or r["created_at"]))
        text = unit_text(kind, str(r["text"]), r["pref_key"], at=at)
        yield _Expected(str(r["id"]), [(text, 0, len(text))])


def _unit_problems(store: Store, settings: Settings) -> tuple[list[str], int]:
    """(live items whose units are missing or differ from their rows, units of items not live)."""
    wrong: list[str] = []
    ids = [str(r[0]) for r in store.query(f"SELECT id FROM items WHERE {_LIVE} ORDER BY id")]
    for start in range(0, len(ids), UNIT_BATCH):
        part = ids[start : start + UNIT_BATCH]
        have: dict[str, list[str]] = {}
        marks = ",".join("?" * len(part))
        for r in store.query(f"SELECT item_id, text FROM units WHERE item_id IN ({marks}) ORDER BY item_id, seq", part):
            have.setdefault(str(r[0]), []).append(str(r[1]))
        derived = {e.item_id: e for e in _expected_units(store, settings, part)}
        for item_id in part:
            expected = derived.get(item_id)
            if expected is None:
                if item_id not in have:
                    wrong.append(item_id)  # a document without its file and without units
                continue
            if have.get(item_id) != [t for t, _, _ in expected.units]:
                wrong.append(item_id)
    dead = _count(store, f"SELECT count(*) FROM units u JOIN items i ON i.id = u.item_id WHERE NOT (i.{_LIVE.replace(' AND ', ' AND i.')})")
    return wrong, dead


def check_units(store: Store, settings: Settings) -> Check:
    wrong, dead = _unit_problems(store, settings)
    if wrong or dead:
        parts = [f"{len(wrong)} item(s) whose units are missing or differ from their text"] if wrong else []
        parts += [f"{dead} unit(s) of forgotten or replaced items"] if dead else []
        return Check("units", False, "; ".join(parts), repairable=True)
    return Check("units", True, "every live item's units match its text")


def _model_id(store: Store, model: str) -> int:
    mid = vector_rows.model_id(store, model)
    return -1 if mid is None else mid


def vector_counts(store: Store, model: str) -> dict[str, int]:
    """Missing (units without a vector of ``model``), orphaned (vectors of no unit), stale (of another model)."""
    mid = _model_id(store, model)
    return {
        "units": _count(store, "SELECT count(*) FROM units"),
        "missing": _count(
            store, "SELECT count(*) FROM units u WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.uid = u.uid AND v.model = ?)", [mid]
        ),
        "orphaned": _count(store, "SELECT count(*) FROM vectors v WHERE NOT EXISTS (SELECT 1 FROM units u WHERE u.uid = v.uid)"),
        "stale": _count(store, "SELECT count(*) FROM vectors WHERE model != ?", [mid]),
    }


def check_vectors(store: Store, model: str) -> Check:
    n = vector_counts(store, model)
    if n["missing"] or n["orphaned"] or n["stale"]:
        detail = f"{n['missing']} unit(s) lack a vector, {n['orphaned']} orphaned, {n['stale']} of another model"
        return Check(
            "vectors",
            False,
            detail + " (searches find them by keyword only until `ctxvault doctor --repair` or `ctxvault reindex`)",
            repairable=True,
        )
    return Check("vectors", True, f"{n['units']} units, each with a {model} vector")


def check_index(store: Store, settings: Settings, key: DataKey) -> Check:
    path = index_file(settings.index_dir, settings.model)
    vectors = _count(store, "SELECT count(*) FROM vectors WHERE model = ?", [_model_id(store, settings.model)])
    generation = _count(store, "SELECT generation FROM index_state WHERE id = 1")
    if not path.exists():
        if vectors == 0:
            return Check("sealed index", True, "none yet (made at the first search)")
        return Check("sealed index", False, f"{path.name} is missing (rebuilt from the vectors table at the next search)", repairable=True)
    loaded = sealed_index.load(path, key, settings.model, settings.ann_threshold)
    if loaded is None:
        return Check("sealed index", False, f"{path.name} does not open with the vault's key (damaged or replaced)", repairable=True)
    index = loaded.index
    delta = index_delta.delta_file(path)
    scan = index_delta.read(delta, key, settings.model, loaded.base_id, index.dim) if loaded.base_id else index_delta.Scan()
    if scan.damaged:
        return Check(
            "sealed index", False, f"{delta.name} holds {scan.damaged} record(s) that fail authentication (damaged or replaced)",
            repairable=True,
        )  # fmt: skip
    if loaded.generation != generation or len(index) != vectors:
        # A cache behind the database is normal (a process wrote since the last save): the next search catches up.
        return Check(
            "sealed index", True, f"{path.name} opens; it holds {len(index)} of {vectors} vectors and is brought up to date "
            "at the next search",
        )  # fmt: skip
    records = f" with {len(scan.records)} delta record(s) in {delta.name}" if scan.records else ""
    return Check("sealed index", True, f"{path.name} opens{records} and holds all {vectors} vectors")


def check_audit(store: Store) -> Check:
    try:
        report = AuditLog(store).verify()
    except AuditTampered as exc:
        return Check("audit log", False, f"{exc.message}: the log cannot be repaired (it is evidence); keep a copy of the vault")
    return Check("audit log", True, f"the hash chain of {report.entries} entries verifies")


def examine(store: Store, settings: Settings, key: DataKey) -> DoctorReport:
    """Check every part; nothing is written."""
    database = check_database(store)
    checks = [check_key_file(settings), database]
    if database.ok:
        checks += [
            check_migrations(store),
            check_fts(store),
            check_units(store, settings),
            check_vectors(store, settings.model),
            check_index(store, settings, key),
            check_audit(store),
        ]
    return DoctorReport(home=str(settings.home), read_only=store.read_only, checks=checks)


def repair_fts(store: Store) -> None:
    with store.transaction():
        store.execute("INSERT INTO units_fts (units_fts) VALUES ('rebuild')")


def repair_units(store: Store, settings: Settings, progress: Progress | None = None) -> int:
    """Rewrite the units of every live item whose units disagree with its row; drop those of items not live."""
    wrong, _ = _unit_problems(store, settings)
    with store.transaction():
        store.execute(f"DELETE FROM units WHERE item_id IN (SELECT id FROM items WHERE NOT ({_LIVE}))")
    for start in range(0, len(wrong), UNIT_BATCH):
        part = wrong[start : start + UNIT_BATCH]
        with store.transaction():
            for expected in _expected_units(store, settings, part):
                store.execute("DELETE FROM units WHERE item_id = ?", [expected.item_id])
                for seq, (text, begin, end) in enumerate(expected.units):
                    store.execute(
                        "INSERT INTO units (item_id, seq, text, start, end) VALUES (?, ?, ?, ?, ?)",
                        [expected.item_id, seq, text, begin, end],
                    )
        if progress:
            progress(min(start + UNIT_BATCH, len(wrong)), len(wrong), "units")
    return len(wrong)


def drop_orphaned_vectors(store: Store) -> int:
    with store.transaction():
        return store.execute("DELETE FROM vectors WHERE NOT EXISTS (SELECT 1 FROM units u WHERE u.uid = vectors.uid)").rowcount


def discard_index_file(settings: Settings) -> None:
    path = index_file(settings.index_dir, settings.model)
    path.unlink(missing_ok=True)
    index_delta.delta_file(path).unlink(missing_ok=True)


def leftovers(home: Path) -> list[Path]:
    """Temporary files an interrupted write left (a sealed index or key file never renamed into place)."""
    return sorted([*home.glob("index/*.tmp*"), *home.glob("*.key.tmp")])


def describe(report: DoctorReport) -> list[str]:
    """The report in words, one line per part."""
    lines = [f"vault at {report.home}" + (" (read-only: checks only; a repair needs a writable copy)" if report.read_only else "")]
    for c in report.checks:
        mark = "ok " if c.ok else ("FIX" if c.repairable else "BAD")
        lines.append(f"{mark} {c.part}: {c.detail}")
    if report.repaired:
        lines.append("repaired: " + ", ".join(report.repaired))
    if report.healthy:
        lines.append("the vault is healthy")
    elif report.repairable:
        lines.append("only derived parts need work: run `ctxvault doctor --repair` (canonical rows are never touched)")
    else:
        lines.append("some problems are in canonical data: `ctxvault export --salvage` exports what is still readable")
    return lines


__all__ = ["Check", "DoctorReport", "Progress", "describe", "examine"]
