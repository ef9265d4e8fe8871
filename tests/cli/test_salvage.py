"""`ctxvault export --salvage` on a vault whose audit log has a damaged page (issue 29)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke
from tests.vault.test_damaged_pages import _damage, _root_page
from vault import Settings


def test_salvage_exports_what_a_plain_export_cannot_and_warns_it_is_unaudited(
    ctxvault: Invoke, initialised: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTXVAULT_DEDUP_THRESHOLD", "1.01")
    for n in range(3):
        assert ctxvault("add", f"zqx salvage cli note {n}").exit_code == 0
    settings = Settings.from_env()
    _damage(settings, _root_page(settings, "audit"))
    plain = ctxvault("export", "--plaintext", str(tmp_path / "plain"), "--json")
    assert plain.exit_code == 13
    assert "export --salvage" in plain.stderr
    saved = ctxvault("export", "--plaintext", str(tmp_path / "saved"), "--salvage", "--json")
    assert saved.exit_code == 0, saved.output
    summary = json.loads(saved.stdout)
    assert summary["counts"]["memories"] == 3 and summary["audited"] is False
    assert "not recorded" in saved.stderr
    memories = json.loads((tmp_path / "saved" / "memory-store.json").read_text())["memories"]
    assert sorted(m["content"] for m in memories) == [f"zqx salvage cli note {n}" for n in range(3)]
    assert ctxvault("export", "--format", "markdown", "--salvage").exit_code == 2
