"""``-`` means stdin for texts and files, stdout for exports (cli/streams.py)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.cli.conftest import Invoke
from tests.conftest import PASSPHRASE
from vault import OWNER, VaultService

ARG_MAX = 128 * 1024  # Linux's MAX_ARG_STRLEN: the longest one command-line argument may be


def _texts(ctxvault: Invoke) -> list[str]:
    return [i["text"] for i in json.loads(ctxvault("list", "--json").stdout)["items"]]


def test_add_dash_stores_the_text_piped_in(ctxvault: Invoke, initialised: str) -> None:
    result = ctxvault("add", "-", input="I take the night train to Vienna\n")
    assert result.exit_code == 0, result.output
    assert _texts(ctxvault) == ["I take the night train to Vienna"]  # not "-", and without echo's newline


def test_a_memory_longer_than_one_argument_goes_through_stdin_or_a_file(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    long = "é" * 70_000 + " the end"  # 140 KB of UTF-8, under the 100,000-character limit
    assert len(long.encode()) > ARG_MAX
    assert ctxvault("add", "-", input=long).exit_code == 0
    (tmp_path / "note.txt").write_text("ü" * 66_000 + "\n", encoding="utf-8")
    assert ctxvault("add", "--file", str(tmp_path / "note.txt")).exit_code == 0
    assert ctxvault("add", "--file", "-", input="from a pipe, by --file -").exit_code == 0
    assert sorted(map(len, _texts(ctxvault))) == [len("from a pipe, by --file -"), 66_000, len(long)]


def test_add_takes_one_source_and_refuses_what_is_not_text(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    assert ctxvault("add").exit_code == 2
    assert ctxvault("add", "x", "--file", "-").exit_code == 2
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    assert ctxvault("add", "--file", str(tmp_path / "bin")).exit_code == 8
    assert ctxvault("add", "-", input="x" * 400_001).exit_code == 14  # over the stdin cap: TooLarge, read no further
    assert _texts(ctxvault) == []


def test_pref_set_edit_and_search_read_a_dash_from_stdin(ctxvault: Invoke, vault: VaultService) -> None:
    from schemas.items import MemoryIn

    item = vault.remember(OWNER, MemoryIn(text="I prefer window seats")).item.id
    vault.close()
    assert ctxvault("pref", "set", "bio", "-", input="Born in Lyon, lives in Oslo\n").exit_code == 0
    assert ctxvault("pref", "get", "bio").stdout == "Born in Lyon, lives in Oslo\n"
    assert ctxvault("edit", item, "--text", "-", input="I prefer aisle seats\n").exit_code == 0
    assert json.loads(ctxvault("show", item, "--json").stdout)["text"] == "I prefer aisle seats"
    hits = json.loads(ctxvault("search", "-", "--mode", "lexical", "--json", input="aisle\n").stdout)["hits"]
    assert [h["item_id"] for h in hits] == [item]


def test_a_passphrase_file_of_dash_is_read_from_stdin(runner: CliRunner, initialised: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTXVAULT_PASSPHRASE")
    result = runner.invoke(app, ["--passphrase-file", "-", "status", "--json"], input=PASSPHRASE + "\n")
    assert result.exit_code == 0, result.output


def test_export_dash_o_writes_the_bundle_to_stdout_and_the_summary_to_stderr(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    assert ctxvault("add", "I keep bees").exit_code == 0
    pw = tmp_path / "pw.txt"
    pw.write_text("a bundle passphrase\n")
    home = Path(os.environ["CTXVAULT_HOME"])
    env = os.environ | {"CTXVAULT_PASSPHRASE": PASSPHRASE}
    cmd = [sys.executable, "-c", "import sys; sys.argv[0] = 'ctxvault'; from cli.app import main; main()"]
    done = subprocess.run([*cmd, "export", "--passphrase-file", str(pw), "-o", "-", "--json"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"age-encryption.org/v1\n")
    summary = json.loads(done.stderr.decode().strip().splitlines()[-1])
    assert summary["path"] == "-" and summary["counts"]["memories"] == 1 and summary["bytes"] == len(done.stdout)
    (tmp_path / "out.age").write_bytes(done.stdout)
    again = ctxvault("import", str(tmp_path / "out.age"), "--passphrase-file", str(pw), "--dry-run", "--json")
    assert json.loads(again.stdout)["unchanged"] == 1
    assert not list(home.parent.glob("ctxvault-export-*")) and not list(tmp_path.glob("ctxvault-export-*"))
    profile = ctxvault("export", "--format", "markdown", "-o", "-")
    assert profile.exit_code == 0 and "I keep bees" in profile.stdout


def test_export_refuses_to_write_a_bundle_to_a_terminal(initialised: str, tmp_path: Path) -> None:
    pw = tmp_path / "pw.txt"
    pw.write_text("a bundle passphrase\n")
    primary, secondary = pty.openpty()
    cmd = [sys.executable, "-c", "import sys; sys.argv[0] = 'ctxvault'; from cli.app import main; main()"]
    proc = subprocess.Popen(
        [*cmd, "export", "--passphrase-file", str(pw), "-o", "-"],
        env=os.environ | {"CTXVAULT_PASSPHRASE": PASSPHRASE}, stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(secondary)
    out = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(primary, 65536):
            out += chunk
    os.close(primary)
    assert proc.stderr is not None
    with proc.stderr:
        err = proc.stderr.read()
    assert proc.wait(timeout=300) == 8
    assert b"terminal" in err and b"age-encryption" not in out
