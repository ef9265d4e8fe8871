"""App- and import-controlled text is neutralised in every CLI output (issue 23 §3).

An app writes memories, tags, preference values, consent purposes and scope filters; an
OAuth client names itself; an imported or added file brings its own title and text. None
of it may reach the terminal as a control sequence, a bidi override, or rich markup.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cli.output import neutral, shown
from schemas.items import MemoryIn
from tests.cli.conftest import Invoke
from vault import OWNER, Principal, VaultService

# Clear the screen, retitle the window, a one-byte C1 CSI, a right-to-left override and an
# isolate, a carriage return that would overprint the line, and rich markup that would restyle it.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil\u2066[bold red]fake[/]\r\nsearch:memories#space=recipes"
TAG = "t\x1b[2J\u202e[red]x"
# Every character a terminal would act on, as any of the fields above carries it.
ACTIVE = ("\x1b", "\x9b", "\x07", "\u202e", "\u2066", "\r")


def test_neutral_makes_every_control_escape_and_bidi_character_visible() -> None:
    for char in [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))] + [
        *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\u200e", "\u200f", "\u061c", "\u2028", "\u2029",
    ]:  # fmt: skip
        out = neutral(f"a{char}b")
        assert out.startswith("a\\") and out.endswith("b") and char not in out, repr(char)
    assert neutral("\x1b[2J") == "\\x1b[2J" and neutral("\u202e") == "\\u202e" and neutral("a\nb") == "a\\nb"
    assert neutral("plain text, naïve café ✓ 日本") == "plain text, naïve café ✓ 日本"
    assert shown("[bold]x[/]") == "[bold]x[/]"  # the consoles read no markup (cli/output.py)


@pytest.mark.parametrize(
    "char",
    [*map(chr, range(0x200B, 0x2010)), *map(chr, range(0x2060, 0x2065)), "\ufeff", "\u00ad", "\u180e", "\U000e0001", "\U000e0041",
     "\U000e007f"],
)  # fmt: skip
def test_neutral_makes_zero_width_and_format_characters_visible(char: str) -> None:
    out = neutral(f"a{char}b")
    assert char not in out and out.startswith("a\\") and out.endswith(f"{ord(char):x}b")


@pytest.fixture
def hostile_vault(vault: VaultService, tmp_path: Path) -> dict[str, str]:
    """A vault where apps, a client and a file have written hostile text everywhere they can."""
    app = vault.add_app(OWNER, "evil").app
    evil = Principal.app(app.id, name=app.name)
    vault.grant(OWNER, "evil", ["write:memories", "write:preferences"])
    memory = vault.remember(evil, MemoryIn(text=f"memo {HOSTILE}", tags=[TAG], source="mcp")).item
    pref = vault.set_preference(OWNER, "diet", f"value {HOSTILE}", tags=[TAG])
    request = vault.request_access(evil, ["read:*", f"search:memories#tag={TAG}"], f"purpose {HOSTILE}")
    client = vault.oauth_register("client", ["http://127.0.0.1:9999/cb"])
    # Registration now refuses such a name (vault/oauth.py check_client_name): one stored before the rule.
    with vault.store.transaction():
        vault.store.execute("UPDATE oauth_clients SET client_name = ? WHERE client_id = ?", [f"client {HOSTILE}", client.client_id])
    vault.oauth_approve(
        OWNER, client.client_id, ["search:memories"], redirect_uri="http://127.0.0.1:9999/cb", code_challenge="x" * 43,
        resource="http://127.0.0.1:8765/mcp",
    )  # fmt: skip
    note = tmp_path / "note.md"
    note.write_text(f"# title {HOSTILE}\n\nbody {HOSTILE}\n", encoding="utf-8")
    doc = vault.add_document(OWNER, note, tags=[TAG])
    vault.close()
    return {"memory": memory.id, "pref": pref.item.id, "request": request.id, "doc": doc.item_id}


def test_every_command_that_prints_app_text_neutralises_it(
    ctxvault: Invoke, hostile_vault: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # no folding: each hostile string stays on one line
    commands = [
        ["list"], ["show", hostile_vault["memory"]], ["search", "memo", "--mode", "lexical"], ["spaces"],
        ["pref", "list"], ["pref", "get", "diet"], ["pref", "history", "diet"], ["pref", "set", "diet", f"again {HOSTILE}"],
        ["doc", "list"], ["doc", "show", hostile_vault["doc"]],
        ["apps", "list"], ["apps", "show", "evil"], ["grants", "list"], ["consent", "list"], ["audit"],
        ["show", HOSTILE],  # the error message quotes the id it did not find
    ]  # fmt: skip
    for args in commands:
        result = ctxvault(*args)
        output = result.stdout + result.stderr
        assert result.exit_code == (3 if args == ["show", HOSTILE] else 0), (args, output)
        leaked = [c for c in ACTIVE if c in output]
        assert not leaked, (args, leaked, output)
        if args not in (["spaces"], ["apps", "list"]):  # space and app names have a strict form already
            # What the app wrote is shown, visibly escaped, with its markup as typed.
            assert "\\x1b[2J" in output, (args, output)
    for args in (["list"], ["show", hostile_vault["memory"]], ["pref", "list"], ["consent", "list"], ["grants", "list"]):
        assert "[bold red]fake[/]" in ctxvault(*args).stdout, args
    assert "\\u202e[red]x" in ctxvault("audit").stdout  # the tag in a requested scope's filter
    consent = ctxvault("consent", "list").stdout
    # The request cannot pose as a narrower one: the real scopes are there, the fake one is inert text.
    assert "read:*" in consent and "\\r\\nsearch:memories#space=recipes" in consent


def test_json_output_stays_exact(ctxvault: Invoke, hostile_vault: dict[str, str]) -> None:
    listed = json.loads(ctxvault("consent", "list", "--json").stdout)
    assert listed[0]["purpose"] == f"purpose {HOSTILE}"
    shown_item = json.loads(ctxvault("show", hostile_vault["memory"], "--json").stdout)
    assert shown_item["text"] == f"memo {HOSTILE}" and shown_item["tags"] == [TAG]


def test_no_printed_string_is_read_as_markup(ctxvault: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: a home holding "[/]" crashed init and status with a MarkupError traceback (exit 1).
    home = tmp_path / "[/]home [bold]x"
    monkeypatch.setenv("CTXVAULT_HOME", str(home))
    created = ctxvault("init")
    assert created.exit_code == 0 and str(home) in created.stdout
    status = ctxvault("status")
    assert status.exit_code == 0 and str(home) in status.stdout
    missing = ctxvault("show", "[/]x")
    assert missing.exit_code == 3 and "'[/]x'" in missing.stderr
    bad_space = ctxvault("add", "hi", "--space", "Work Stuff")
    assert bad_space.exit_code == 8 and "[a-z0-9][a-z0-9_-]{0,63}" in bad_space.stderr  # the character classes kept


def _rendered(table: object, *, terminal: bool, width: int = 80) -> str:
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, force_terminal=terminal, markup=False, highlight=False, soft_wrap=True).print(table)
    return out.getvalue()


def test_a_table_never_folds_an_id_at_80_columns_and_is_tab_separated_in_a_pipe() -> None:
    from cli.output import data_table

    ids = ["01M8VYARQ3X4Z5N6P7K8J9H0GF", "01M8VYB2C3D4E5F6G7H8J9K0MN"]
    long = "a memory long enough to need folding in a table eighty columns wide, " * 3
    table = data_table(("id", "kind", "space", "text", "tags", "sens."), [[i, "memory", "personal", long, "a,b", "low"] for i in ids])
    terminal = _rendered(table, terminal=True)
    assert all(i in terminal for i in ids)  # each id whole on one line
    assert max(len(line) for line in _strip_ansi(terminal).splitlines()) <= 80
    piped = _rendered(table, terminal=False, width=40)
    lines = piped.splitlines()
    assert lines[0] == "id\tkind\tspace\ttext\ttags\tsens."
    assert [line.split("\t")[0] for line in lines[1:]] == ids and lines[1].split("\t")[3] == long
    hostile = _rendered(data_table(("id", "text"), [["x", "tab\there\nnew line"]]), terminal=False)
    assert hostile.splitlines()[1] == "x\ttab\\there\\nnew line"  # a cell cannot add a column or a row


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
