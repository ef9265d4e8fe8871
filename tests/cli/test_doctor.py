"""`ctxvault doctor`: words and --json, exit 0 when healthy, 21 when not, --repair with a progress bar (issue 27)."""

from __future__ import annotations

import json

from tests.cli.conftest import Invoke
from vault import Settings
from vault.errors import VaultUnhealthy


def test_doctor_reports_a_healthy_vault_in_words_and_json(ctxvault: Invoke, initialised: str) -> None:
    assert ctxvault("add", "I take the night train to Vienna").exit_code == 0
    words = ctxvault("doctor")
    assert words.exit_code == 0, words.output
    assert "the vault is healthy" in words.stdout and "ok  audit log" in words.stdout
    report = json.loads(ctxvault("doctor", "--json").stdout)
    assert report["healthy"] is True and not report["read_only"]
    assert {c["part"] for c in report["checks"]} >= {"database", "key file", "vectors", "sealed index", "audit log"}


def test_doctor_exits_non_zero_on_damage_and_repair_fixes_it(ctxvault: Invoke, initialised: str, settings: Settings) -> None:
    assert ctxvault("add", "I take the night train to Vienna").exit_code == 0
    [sealed] = settings.index_dir.glob("*.cvx")  # the vault's model's index (a new vault's model: vault/settings.py)
    sealed.write_bytes(b"garbage")
    found = ctxvault("doctor", "--json")
    assert found.exit_code == VaultUnhealthy.exit_code
    report = json.loads(found.stdout)
    assert report["repairable"] and [c["part"] for c in report["checks"] if not c["ok"]] == ["sealed index"]
    words = ctxvault("doctor")
    assert "FIX sealed index" in words.stdout and "ctxvault doctor --repair" in words.stdout
    repaired = ctxvault("doctor", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "repaired:" in repaired.stdout and "the vault is healthy" in repaired.stdout
    assert ctxvault("doctor").exit_code == 0
