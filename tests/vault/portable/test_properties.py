"""Export → import is the identity, for any texts, spaces, tags and sensitivities."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.portable import Selection
from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, init_vault, open_vault
from vault.crypto import new_key
from vault.items import ITEM_COLUMNS, insert_rows
from vault.migrations import migrate
from vault.portable.merge import apply
from vault.portable.records import ImportBatch, ItemRecord
from vault.store import Store

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300).filter(lambda t: t.strip() != "")
RECORD = st.tuples(
    TEXT,
    st.sampled_from(["personal", "work", "health-2"]),
    st.lists(st.from_regex(r"[^\s,;#=]{1,12}", fullmatch=True), max_size=3),
    st.sampled_from(["low", "medium", "high"]),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(RECORD, min_size=1, max_size=8))
def test_export_then_import_is_the_identity(home: Path, rows: list[tuple[str, str, list[str], str]]) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    records = tuple(
        ItemRecord(
            id=None, kind="memory", text=text, space=space, tags=tuple(tags), sensitivity=sens,  # type: ignore[arg-type]
            created_at=t0 + timedelta(seconds=n), updated_at=t0 + timedelta(seconds=n),
        )
        for n, (text, space, tags, sens) in enumerate(rows)
    )  # fmt: skip
    with tempfile.TemporaryDirectory(dir=home.parent) as tmp:
        base = Path(tmp)
        a, b = Settings.from_env(home=base / "a"), Settings.from_env(home=base / "b")
        for s in (a, b):
            init_vault(s, PASSPHRASE)
        with open_vault(a, PASSPHRASE) as source, open_vault(b, PASSPHRASE) as target:
            apply(source.store, ImportBatch("markdown", "test", records), a, actor="owner", dry_run=False)
            source.export_bundle(OWNER, Selection(), base / "plain", plaintext=True)
            target._retriever.sync = lambda *args, **kw: 0  # type: ignore[method-assign]  # no model in a property test
            target.import_source(OWNER, base / "plain")
            query = "SELECT * FROM items ORDER BY id"
            assert [dict(r) for r in target.store.query(query)] == [dict(r) for r in source.store.query(query)]


CELL = st.one_of(st.none(), st.sampled_from(["a", "b", "[]", "{}"]), st.text(st.characters(blacklist_categories=("Cs",)), max_size=20))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(CELL, min_size=15, max_size=15), min_size=1, max_size=30))
def test_item_rows_are_stored_exactly_whichever_columns_repeat(home: Path, cells: list[list[str | None]]) -> None:
    """Constant columns are bound once and equal columns share one JSON field: the rows must not notice."""
    with tempfile.TemporaryDirectory(dir=home.parent) as tmp:
        store = Store(Path(tmp) / "v.db", new_key())
        migrate(store.conn)
        rows: list[list[object]] = [
            [f"id{n}", "memory", c[0] or "text", c[1], c[2] or "personal", c[3] or "[]", "low", c[4] or "src", c[5] or "owner",
             c[6] or "t0", c[7] or "t1", c[8], c[9], c[10] or "h", None, c[11], c[12], c[13] or "{}"]
            for n, c in enumerate(cells)
        ]  # fmt: skip
        expected = [tuple(r) for r in rows]
        with store.transaction():
            insert_rows(store, "items", ITEM_COLUMNS.split(", "), rows)
        got = [tuple(r) for r in store.query(f"SELECT {ITEM_COLUMNS} FROM items ORDER BY rowid")]
        store.close()
    assert got == expected
