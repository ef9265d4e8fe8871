"""`ctxvault export` and `ctxvault import` through the CLI: flags, --json summaries, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from pyrage import x25519

from tests.cli.conftest import Invoke

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "importers"


def test_import_export_and_dry_run_reimport(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    dry = json.loads(ctxvault("import", str(FIXTURES / "mem0" / "export.json"), "--dry-run", "--json").stdout)
    assert (dry["detected"], dry["new"], dry["dry_run"]) == ("mem0", 2, True)
    done = json.loads(ctxvault("import", str(FIXTURES / "mem0" / "export.json"), "--space", "health", "--json").stdout)
    assert done["new"] == 2

    ident = x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"{ident}\n")
    out = tmp_path / "vault.age"
    exported = json.loads(ctxvault("export", "--recipient", str(ident.to_public()), "--out", str(out), "--json").stdout)
    assert (exported["encryption"], exported["counts"]["memories"]) == ("recipients", 2) and out.is_file()

    again = ctxvault("import", str(out), "--identity", str(key), "--dry-run")
    assert again.exit_code == 0 and "detected bundle" in again.stdout and "0 new" in again.stdout

    profile = ctxvault("export", "--format", "markdown", "--space", "health")
    assert profile.exit_code == 0 and "Is a vegetarian and allergic to nuts" in profile.stdout


def test_export_without_a_key_or_passphrase_is_invalid_input(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    assert ctxvault("export", "--out", str(tmp_path / "x.age")).exit_code == 8
    assert not (tmp_path / "x.age").exists()


def test_plaintext_export_warns_and_writes_a_folder(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    result = ctxvault("export", "--plaintext", str(tmp_path / "plain"), "--json")
    assert result.exit_code == 0 and "UNENCRYPTED" in result.stderr
    assert (tmp_path / "plain" / "memory-store.json").is_file()


def test_hostile_import_exits_with_the_bad_bundle_code(ctxvault: Invoke, initialised: str) -> None:
    result = ctxvault("import", str(FIXTURES / "hostile" / "traversal.tar"))
    assert result.exit_code == 7
    assert ctxvault("import", str(FIXTURES / "mem0" / "export.json"), "--from", "nonsense").exit_code == 2


def test_import_lists_a_conflict_and_conflicts_resolves_it_by_version(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    item = json.loads(ctxvault("add", "Meeting with Bob on Monday", "--json").stdout)["item"]["id"]
    assert ctxvault("export", "--plaintext", str(tmp_path / "first")).exit_code == 0
    other = str(tmp_path / "other-vault")
    assert ctxvault("--vault", other, "init").exit_code == 0
    assert ctxvault("--vault", other, "import", str(tmp_path / "first")).exit_code == 0
    assert ctxvault("edit", item, "--text", "Meeting with Bob on Tuesday").exit_code == 0
    assert ctxvault("--vault", other, "edit", item, "--text", "Meeting with Bob on Friday").exit_code == 0
    assert ctxvault("--vault", other, "export", "--plaintext", str(tmp_path / "theirs")).exit_code == 0

    imported = ctxvault("import", str(tmp_path / "theirs"))
    assert imported.exit_code == 0 and "conflict" in imported.stdout and item in imported.stdout
    (conflict,) = json.loads(ctxvault("conflicts", "--json").stdout)
    assert (conflict["item_id"], conflict["kept"]) == (item, "source")
    assert item in ctxvault("conflicts").stdout
    resolved = ctxvault("conflicts", "--resolve", str(conflict["id"]), "--version", str(conflict["version"]), "--json")
    assert resolved.exit_code == 0 and json.loads(resolved.stdout)["text"] == "Meeting with Bob on Tuesday"
    assert json.loads(ctxvault("conflicts", "--json").stdout) == []
    assert ctxvault("conflicts", "--resolve", str(conflict["id"])).exit_code == 3  # closed already
