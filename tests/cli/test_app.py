"""The root command's conventions, walked over every command: -h, --version, completion, --json errors, id prefixes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version

import pytest
import typer.main
from typer.core import TyperGroup

from cli.app import app
from tests.cli.conftest import Invoke
from tests.cli.test_agent import command_paths
from vault import OWNER, VaultService

ROOT = typer.main.get_command(app)
assert isinstance(ROOT, TyperGroup)
PATHS = sorted(command_paths(ROOT))


def _command(path: str) -> typer.main.TyperCommand | TyperGroup:
    cmd: object = ROOT
    for name in path.split():
        assert isinstance(cmd, TyperGroup)
        cmd = cmd.commands[name]
    assert isinstance(cmd, typer.main.TyperCommand | TyperGroup)
    return cmd


def _takes_json(path: str) -> bool:
    return any("--json" in getattr(p, "opts", ()) for p in _command(path).params)


@pytest.mark.parametrize("path", PATHS)
def test_every_command_answers_dash_h_as_help(ctxvault: Invoke, path: str) -> None:
    short, long = ctxvault(*path.split(), "-h"), ctxvault(*path.split(), "--help")
    assert short.exit_code == 0 and short.stdout == long.stdout
    assert f"ctxvault {path}" in short.stdout and "-h, --help" in short.stdout


def test_version_prints_the_installed_version(ctxvault: Invoke) -> None:
    result = ctxvault("--version")
    assert result.exit_code == 0 and result.stdout == f"ctxvault {version('context-vault')}\n"


def test_shell_completion_is_offered_and_completes_commands() -> None:
    main = "import sys; sys.argv[0] = 'ctxvault'; from cli.app import main; main()"
    # typer detects the shell from the parent process (under make it is sh): a user asking for bash runs it from bash.
    script = subprocess.run(
        ["bash", "-c", '"$0" -c "$1" --show-completion bash; exit $?', sys.executable, main], capture_output=True, text=True, timeout=120
    )
    assert script.returncode == 0 and "_CTXVAULT_COMPLETE=complete_bash" in script.stdout
    env = os.environ | {"_CTXVAULT_COMPLETE": "complete_bash", "COMP_WORDS": "ctxvault consent ap", "COMP_CWORD": "2"}
    done = subprocess.run([sys.executable, "-c", main], capture_output=True, text=True, timeout=120, env=env)
    assert done.stdout.split() == ["approve"]


@pytest.mark.parametrize("path", [p for p in PATHS if _takes_json(p)])
def test_every_json_command_reports_a_usage_error_as_json_on_stderr(ctxvault: Invoke, path: str) -> None:
    result = ctxvault(*path.split(), "--json", "--no-such-option")
    assert result.exit_code == 2 and result.stdout == ""
    assert json.loads(result.stderr) == {"error": {"type": "UsageError", "message": "No such option: --no-such-option"}, "exit": 2}


# Every command that takes an id, in an order that leaves each one something to act on.
ID_COMMANDS = [
    (["show", "{item}"], "item"), (["history", "{item}"], "item"), (["edit", "{item}", "--tag", "x"], "item"),
    (["restore", "{item}", "--version", "1"], "item"), (["doc", "show", "{document}"], "document"),
    (["consent", "approve", "{consent}"], "consent"), (["consent", "deny", "{consent}"], None),  # decided already: refused
    (["grants", "revoke", "{grant}"], "grant"), (["forget", "{item}"], "item"), (["doc", "remove", "{document}"], "document"),
    (["purge", "{item}", "--yes"], None),
]  # fmt: skip


@pytest.fixture
def world(vault: VaultService) -> dict[str, str]:
    from schemas.items import MemoryIn

    item = vault.remember(OWNER, MemoryIn(text="I keep bees on the roof")).item.id
    vault.edit(OWNER, item, text="I keep two hives of bees on the roof")
    (vault.settings.home.parent / "plan.md").write_text("# Plan\n\nPaint the hives blue.\n")
    document = vault.add_document(OWNER, vault.settings.home.parent / "plan.md").item_id
    vault.add_app(OWNER, "asker")
    consent = vault.request_access(vault.principal_for_app("asker"), ["read:memories"], purpose="bees").id
    grant = vault.grant(OWNER, "asker", ["read:preferences"]).id
    vault.close()
    return {"item": item, "document": document, "consent": consent, "grant": grant}


def test_every_id_argument_takes_a_unique_prefix(ctxvault: Invoke, world: dict[str, str]) -> None:
    short = {k: v[:12] for k, v in world.items()}
    for argv, named in ID_COMMANDS:
        result = ctxvault(*[a.format(**short) for a in argv], "--json")
        if named is None:
            assert result.exit_code != 3, (argv, result.output)  # found by its prefix, whatever it then said
        else:
            assert result.exit_code == 0 and world[named] in result.stdout, (argv, result.output)
    assert ctxvault("show", world["item"][:12]).exit_code == 3  # purged by its prefix


def test_an_ambiguous_prefix_is_invalid_input_listing_the_candidates(ctxvault: Invoke, world: dict[str, str]) -> None:
    item, document = world["item"], world["document"]
    prefix = item[: next(n for n, (a, b) in enumerate(zip(item, document, strict=True)) if a != b)]
    assert len(prefix) >= 4
    result = ctxvault("show", prefix, "--json")
    assert result.exit_code == 8 and result.stdout == ""
    error = json.loads(result.stderr)
    assert error["error"]["type"] == "InvalidInput" and error["exit"] == 8
    assert world["item"] in error["error"]["message"] and world["document"] in error["error"]["message"]
    assert ctxvault("show", "ZZZZZZZZ", "--json").exit_code == 3


def test_a_vault_error_under_json_is_one_json_line_on_stderr(ctxvault: Invoke, initialised: str) -> None:
    result = ctxvault("show", "01AAAAAAAAAAAAAAAAAAAAAAAA", "--json")
    assert result.exit_code == 3 and result.stdout == ""
    assert json.loads(result.stderr) == {"error": {"type": "NotFound", "message": "no item '01AAAAAAAAAAAAAAAAAAAAAAAA'"}, "exit": 3}
    hostile = ctxvault("show", "\x1b[2J\u202e", "--json")
    assert "\x1b" not in hostile.stderr and "\u202e" not in hostile.stderr  # ASCII JSON: nothing acts on the terminal
    assert json.loads(hostile.stderr)["error"]["message"] == "no item " + repr("\x1b[2J\u202e")
    plain = ctxvault("show", "01AAAAAAAAAAAAAAAAAAAAAAAA")
    assert plain.exit_code == 3 and plain.stderr.startswith("error: ")
    # "--json" after "--" is an argument, not the flag.
    added = ctxvault("add", "--", "--json")
    assert added.exit_code == 0 and added.stdout.startswith("added ")
