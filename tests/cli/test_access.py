from __future__ import annotations

import json
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import Result

from cli.app import app
from tests.cli.conftest import Invoke
from tests.conftest import PASSPHRASE
from vault import Settings, open_vault

ACCESS_COMMANDS = [
    ["apps", "add"], ["apps", "list"], ["apps", "show"], ["apps", "rotate-token"], ["apps", "remove"],
    ["grant"], ["grants", "list"], ["grants", "revoke"],
    ["consent", "list"], ["consent", "approve"], ["consent", "deny"],
    ["audit"], ["audit", "verify"],
]  # fmt: skip


def j(result: Result) -> Any:
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", ACCESS_COMMANDS, ids=" ".join)
def test_every_access_command_has_help_with_an_example(ctxvault: Invoke, path: list[str]) -> None:
    result = ctxvault(*path, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout


def test_read_commands_offer_json() -> None:
    root = get_command(app)
    for path in (["apps", "list"], ["apps", "show"], ["grants", "list"], ["consent", "list"], ["audit"], ["audit", "verify"]):
        cmd = root
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        assert any("--json" in p.opts for p in cmd.params), path


def test_the_owner_registers_an_app_and_sees_its_token_once(ctxvault: Invoke, initialised: str) -> None:
    created = j(ctxvault("apps", "add", "claude-desktop", "--json"))
    assert isinstance(created, dict) and created["token"].startswith("cvt_")
    listed = ctxvault("apps", "list", "--json")
    assert created["token"] not in listed.stdout and "claude-desktop" in listed.stdout
    assert ctxvault("apps", "add", "claude-desktop").exit_code == 8


def test_grant_then_search_as_the_app_shows_only_its_slice(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("add", "Lunch with the team on Friday", "--space", "work")
    ctxvault("add", "Lunch with my cardiologist", "--space", "health", "--sensitivity", "high")
    ctxvault("apps", "add", "cursor")
    assert ctxvault("search", "lunch", "--as", "cursor").exit_code == 4
    granted = ctxvault("grant", "cursor", "search:memories#space=work", "read:memories#space=work", "--expires", "7d", "--json")
    assert granted.exit_code == 0, granted.output
    hits = j(ctxvault("search", "lunch", "--as", "cursor", "--mode", "lexical", "--json"))
    assert isinstance(hits, dict) and [h["space"] for h in hits["hits"]] == ["work"]
    listed = j(ctxvault("list", "--as", "cursor", "--json"))
    assert isinstance(listed, dict) and listed["total"] == 1
    assert ctxvault("search", "lunch", "--as", "nobody").exit_code == 3


def test_a_malformed_scope_is_a_clear_usage_error(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("apps", "add", "cursor")
    result = ctxvault("grant", "cursor", "read:notes")
    assert result.exit_code == 8 and "unknown kind" in result.stderr
    assert ctxvault("grant", "cursor", "export:*").exit_code == 8
    assert ctxvault("grant", "cursor", "read:memories", "--expires", "someday").exit_code == 8


def test_grants_list_and_revoke(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("apps", "add", "cursor")
    first = j(ctxvault("grant", "cursor", "read:memories", "--json"))
    ctxvault("grant", "cursor", "read:preferences", "--purpose", "diet tips")
    assert isinstance(first, dict)
    assert ctxvault("grants", "revoke", first["id"]).exit_code == 0
    active = j(ctxvault("grants", "list", "--app", "cursor", "--active", "--json"))
    assert isinstance(active, list) and [g["scopes"] for g in active] == [["read:preferences"]]
    revoked = j(ctxvault("grants", "revoke", "--app", "cursor", "--json"))
    assert isinstance(revoked, list) and len(revoked) == 1
    assert j(ctxvault("grants", "list", "--active", "--json")) == []
    assert ctxvault("grants", "revoke").exit_code == 2


def test_consent_approve_narrows_and_deny_refuses(ctxvault: Invoke, initialised: str) -> None:
    token = j(ctxvault("apps", "add", "cursor", "--json"))["token"]
    with open_vault(Settings.from_env(), PASSPHRASE) as svc:
        app = svc.authenticate_app(token)
        wide = svc.request_access(app, ["read:*", "search:*"], "plan my week")
        other = svc.request_access(app, ["delete:memories"], "tidy up")
    pending = j(ctxvault("consent", "list", "--json"))
    assert isinstance(pending, list) and [r["id"] for r in pending] == [wide.id, other.id]
    approved = ctxvault("consent", "approve", wide.id, "--scope", "read:memories#space=work", "--expires", "1d", "--json")
    assert j(approved)["scopes"] == ["read:memories#space=work"]
    assert ctxvault("consent", "approve", other.id, "--scope", "delete:*").exit_code == 8
    assert ctxvault("consent", "deny", other.id).exit_code == 0
    assert j(ctxvault("consent", "list", "--json")) == []
    statuses = [r["status"] for r in j(ctxvault("consent", "list", "--all", "--json"))]
    assert statuses == ["approved", "denied"]
    assert ctxvault("consent", "deny", "01NOPE").exit_code == 3


def test_audit_lists_filters_and_verifies(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("add", "Lunch with the team on Friday", "--space", "work")
    ctxvault("apps", "add", "cursor")
    ctxvault("grant", "cursor", "read:memories")
    ctxvault("list", "--as", "cursor")
    entries = j(ctxvault("audit", "--app", "cursor", "--json"))
    assert isinstance(entries, list) and [e["event"] for e in entries] == ["app_add", "grant", "disclose"]
    assert j(ctxvault("audit", "--since", "1h", "--event", "write", "--json"))[0]["event"] == "write"
    assert ctxvault("audit").exit_code == 0
    report = j(ctxvault("audit", "verify", "--json"))
    assert isinstance(report, dict) and report["entries"] == 4


def test_audit_verify_exits_15_on_tampering(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("apps", "add", "cursor")
    ctxvault("apps", "add", "other")
    with open_vault(Settings.from_env(), PASSPHRASE) as svc:
        svc.store.execute("UPDATE audit SET detail = '{}' WHERE seq = 1")
    result = ctxvault("audit", "verify")
    assert result.exit_code == 15


def test_apps_show_rotate_and_remove(ctxvault: Invoke, initialised: str) -> None:
    old = j(ctxvault("apps", "add", "cursor", "--json"))["token"]
    ctxvault("grant", "cursor", "read:memories")
    shown = j(ctxvault("apps", "show", "cursor", "--json"))
    assert isinstance(shown, dict) and shown["scopes"] == ["read:memories"]
    new = j(ctxvault("apps", "rotate-token", "cursor", "--json"))["token"]
    assert new != old
    assert ctxvault("apps", "remove", "cursor").exit_code == 0
    assert ctxvault("apps", "show", "cursor").exit_code == 3


def test_consent_deny_all_asks_first_and_can_be_limited_to_one_app(ctxvault: Invoke, initialised: str) -> None:
    tokens = [j(ctxvault("apps", "add", name, "--json"))["token"] for name in ("flood", "calm")]
    with open_vault(Settings.from_env(), PASSPHRASE) as svc:
        flood, calm = (svc.authenticate_app(t) for t in tokens)
        for n in range(6):
            svc.request_access(flood, ["read:*"], f"again {n}")
        kept = svc.request_access(calm, ["read:memories"], "one question")
    assert ctxvault("consent", "deny", "--all", "--app", "flood", input="n\n").exit_code == 1
    assert len(j(ctxvault("consent", "list", "--json"))) == 7
    asked = ctxvault("consent", "deny", "--all", "--app", "flood", input="y\n")
    assert asked.exit_code == 0 and "Deny 6 pending consent request(s) of flood?" in asked.stdout
    assert [r["id"] for r in j(ctxvault("consent", "list", "--json"))] == [kept.id]
    denied = j(ctxvault("consent", "deny", "--all", "--yes", "--json"))
    assert [r["id"] for r in denied] == [kept.id] and j(ctxvault("consent", "list", "--json")) == []
    assert ctxvault("consent", "deny").exit_code == 2
    assert ctxvault("consent", "deny", kept.id, "--all").exit_code == 2
    assert ctxvault("consent", "deny", kept.id, "--app", "calm").exit_code == 2
