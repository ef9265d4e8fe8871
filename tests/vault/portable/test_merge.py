"""Planning an import: the same decisions however the vault is read."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from schemas.portable import Selection
from tests.vault.portable.conftest import populate
from vault import OWNER, VaultService
from vault.portable.importers import read_source
from vault.portable.merge import _lookup, _steps


def test_reading_the_vaults_side_plans_exactly_as_probing_it(source: VaultService, tmp_path: Path) -> None:
    """An import reads the vault's ids and live hashes whole when the vault is the smaller side, and probes
    them per record otherwise: every record must get the same decision either way."""
    populate(source, memories=40, documents=2)
    source.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    batch = read_source(tmp_path / "plain")
    memories = [r for r in batch.records if r.kind == "memory"]
    source.forget(OWNER, memories[0].id or "")
    later = datetime(2099, 1, 1, tzinfo=UTC)
    records = (
        *(
            dataclasses.replace(r, text=f"{r.text} (revised)", hash=None, updated_at=later) if r in memories[1:4] else r
            for r in batch.records
        ),
        *(dataclasses.replace(r, id=None, hash=None) for r in memories[4:8]),  # the same text as a live item: a twin
        *(dataclasses.replace(r, id=None, text=f"new {n}", hash=None) for n, r in enumerate(memories[8:10])),
    )
    batch = dataclasses.replace(batch, records=records)

    def decisions(scan: bool) -> list[tuple[str, str | None, str | None]]:
        known = _lookup(source.store, batch, scan=scan)
        return [(s.action, s.reason, s.item_id if s.action != "new" else s.record.id) for s in _steps(batch, known, None, "test")]

    probed, scanned = decisions(scan=False), decisions(scan=True)
    assert scanned == probed
    actions = [a for a, _, _ in probed]
    assert {"new", "updated", "unchanged", "skipped"} <= set(actions) and actions.count("updated") == 3
