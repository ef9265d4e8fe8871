"""Deny by default: a new app sees and changes nothing, and owner-only calls stay the owner's (BRIEF §4).

tests/vault/test_policy.py proves the rule on a handful of calls. This file walks every
VaultService method that takes a principal: each must be listed below, so a method added
later without a policy decision fails here until someone classifies it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from schemas.activity import ActivityQuery
from schemas.items import MemoryIn, SearchQuery
from schemas.portable import Selection
from tests.security.conftest import make_app
from vault import OWNER, Principal, VaultService
from vault.errors import NotFound, ScopeDenied
from vault.owner_sessions import PendingAuthorization
from vault.portable.records import ImportBatch


@dataclass(frozen=True)
class World:
    """Things that exist in the vault, so a refusal is never just a missing argument."""

    item: str
    document: str
    grant: str
    consent: str
    tmp: Path


Call = Callable[[VaultService, Principal, World], object]

# Calls an app may make with grants: refused to a new app, allowed to a granted one.
DATA: dict[str, Call] = {
    "get_item": lambda v, p, w: v.get_item(p, w.item),
    "list_items": lambda v, p, w: v.list_items(p),
    "search": lambda v, p, w: v.search(p, SearchQuery(text="tea", mode="lexical")),
    "spaces": lambda v, p, w: v.spaces(p),
    "remember": lambda v, p, w: v.remember(p, MemoryIn(text="I like coffee")),
    "edit": lambda v, p, w: v.edit(p, w.item, tags=["x"]),
    "item_history": lambda v, p, w: v.item_history(p, w.item),
    "restore": lambda v, p, w: v.restore(p, w.item, 1),  # the version the edit above kept
    "set_preference": lambda v, p, w: v.set_preference(p, "drink", "coffee"),
    "get_preference": lambda v, p, w: v.get_preference(p, "drink"),
    "list_preferences": lambda v, p, w: v.list_preferences(p),
    "preference_history": lambda v, p, w: v.preference_history(p, "drink"),
    "add_document": lambda v, p, w: v.add_document(p, w.tmp / "docs" / "plan.md"),
    "add_folder": lambda v, p, w: v.add_folder(p, w.tmp / "docs"),
    "list_documents": lambda v, p, w: v.list_documents(p),
    "show_document": lambda v, p, w: v.show_document(p, w.document),
    "preferences_for": lambda v, p, w: v.preferences_for(p),
    "profile": lambda v, p, w: v.profile(p),
    "task_context": lambda v, p, w: v.task_context(p, "make tea"),
    # Destructive calls last: the granted app of the test below makes them in this order.
    "forget": lambda v, p, w: v.forget(p, w.item),
    "unset_preference": lambda v, p, w: v.unset_preference(p, "drink"),
    "remove_document": lambda v, p, w: v.remove_document(p, w.document),
}

# Calls no grant can ever allow.
OWNER_ONLY: dict[str, Call] = {
    "status": lambda v, p, w: v.status(p),
    "purge": lambda v, p, w: v.purge(p),
    "reindex": lambda v, p, w: v.reindex(p),
    "retrieval_stats": lambda v, p, w: v.retrieval_stats(p),
    "conflicts": lambda v, p, w: v.conflicts(p),
    "resolve_conflict": lambda v, p, w: v.resolve_conflict(p, 1),
    "export_bundle": lambda v, p, w: v.export_bundle(p, Selection(), w.tmp / "export", plaintext=True),
    "export_profile": lambda v, p, w: v.export_profile(p, Selection()),
    "import_items": lambda v, p, w: v.import_items(p, ImportBatch(format="pam", source="test", records=())),
    "import_source": lambda v, p, w: v.import_source(p, w.tmp / "docs"),
    "add_app": lambda v, p, w: v.add_app(p, "sneaky"),
    "list_apps": lambda v, p, w: v.list_apps(p),
    "show_app": lambda v, p, w: v.show_app(p, "asker"),
    "rotate_app_token": lambda v, p, w: v.rotate_app_token(p, "asker"),
    "remove_app": lambda v, p, w: v.remove_app(p, "asker"),
    "grant": lambda v, p, w: v.grant(p, p.app_id or "", ["read:*"]),
    "list_grants": lambda v, p, w: v.list_grants(p),
    "revoke": lambda v, p, w: v.revoke(p, w.grant),
    "revoke_app": lambda v, p, w: v.revoke_app(p, "asker"),
    "list_consent": lambda v, p, w: v.list_consent(p),
    "approve_consent": lambda v, p, w: v.approve_consent(p, w.consent),
    "deny_consent": lambda v, p, w: v.deny_consent(p, w.consent),
    "deny_all_consent": lambda v, p, w: v.deny_all_consent(p),
    "scope_reach": lambda v, p, w: v.scope_reach(p, ["read:*"]),
    "audit_entries": lambda v, p, w: v.audit_entries(p),
    "verify_audit": lambda v, p, w: v.verify_audit(p),
    "oauth_approve": lambda v, p, w: v.oauth_approve(
        p, "client", ["read:*"], redirect_uri="http://127.0.0.1/cb", code_challenge="x" * 43, resource="http://127.0.0.1/mcp"
    ),
    "oauth_decide": lambda v, p, w: v.oauth_decide(
        p, PendingAuthorization("client", "C", "http://127.0.0.1/cb", "x" * 43, "http://127.0.0.1/mcp", None, ("read:*",), True), ["read:*"]
    ),
    "owner_login_link": lambda v, p, w: v.owner_login_link(p),
    "resolve_id": lambda v, p, w: v.resolve_id(p, "item", w.item[:8]),
    "activity": lambda v, p, w: v.activity(p, ActivityQuery()),
    "activity_export": lambda v, p, w: v.activity_export(p, ActivityQuery()),
    "app_activity": lambda v, p, w: v.app_activity(p),
    "app_disclosures": lambda v, p, w: v.app_disclosures(p, "asker"),
    "doctor": lambda v, p, w: v.doctor(p),
    "forgotten_items": lambda v, p, w: v.forgotten_items(p),
    "forgotten_item": lambda v, p, w: v.forgotten_item(p, w.item),
    "unforget": lambda v, p, w: v.unforget(p, w.item),
    "lock_owner": lambda v, p, w: v.lock_owner(p),
}

# Calls about the app itself: allowed to any app, and they lend it nothing.
SELF_SERVICE = {"list_access", "access_report", "request_access", "consent_status", "missing_scope", "scope_needed", "step_up"}

# Tables whose row counts a refused call must leave as they were (the audit log grows by the denial).
STATE_TABLES = ["items", "units", "doc_files", "apps", "grants", "consent_requests"]


def principal_methods() -> set[str]:
    names = set()
    for name, fn in inspect.getmembers(VaultService, inspect.isfunction):
        params = list(inspect.signature(fn).parameters)
        if not name.startswith("_") and params[1:2] == ["principal"]:
            names.add(name)
    return names


@pytest.fixture
def world(vault: VaultService, tmp_path: Path) -> World:
    item = vault.remember(OWNER, MemoryIn(text="I like green tea")).item.id
    vault.set_preference(OWNER, "drink", "green tea")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "plan.md").write_text("# Plan\n\nBrew the tea for three minutes.\n")
    document = vault.add_document(OWNER, tmp_path / "docs" / "plan.md").item_id
    asker = make_app(vault, "asker", "read:preferences")
    grant = vault.list_grants(OWNER, app="asker")[0].id
    consent = vault.request_access(asker, ["read:memories"], purpose="remember what I like").id
    return World(item=item, document=document, grant=grant, consent=consent, tmp=tmp_path)


def snapshot(vault: VaultService) -> dict[str, int]:
    return {t: vault.store.one(f"SELECT count(*) FROM {t}")[0] for t in STATE_TABLES}  # type: ignore[index]


def denials(vault: VaultService) -> int:
    return len(vault.audit_entries(OWNER, event="deny"))


def test_every_method_that_takes_a_principal_has_a_policy_decision() -> None:
    unclassified = principal_methods() - set(DATA) - set(OWNER_ONLY) - SELF_SERVICE
    assert not unclassified, f"classify these in tests/security/test_deny_by_default.py: {sorted(unclassified)}"


def existing(calls: dict[str, Call]) -> dict[str, Call]:
    """The calls whose method exists in this tree (work in progress may not have added it yet)."""
    return {name: call for name, call in calls.items() if hasattr(VaultService, name)}


def test_a_new_app_is_refused_every_call_and_changes_nothing(vault: VaultService, world: World) -> None:
    app = make_app(vault, "newcomer")
    for name, call in existing({**DATA, **OWNER_ONLY}).items():
        before, refused = snapshot(vault), denials(vault)
        with pytest.raises(ScopeDenied):
            call(vault, app, world)
            pytest.fail(f"{name} did not refuse a new app")
        assert snapshot(vault) == before, name
        assert denials(vault) == refused + 1, f"{name} did not record its refusal once"
    assert not (world.tmp / "export").exists()


def test_an_app_with_every_grant_is_still_refused_owner_only_calls(vault: VaultService, world: World) -> None:
    app = make_app(vault, "greedy", "read:*", "write:*", "delete:*", "search:*")
    for name, call in existing(OWNER_ONLY).items():
        before = snapshot(vault)
        with pytest.raises(ScopeDenied):
            call(vault, app, world)
            pytest.fail(f"{name} is owner-only but served an app")
        assert snapshot(vault) == before, name
    assert not (world.tmp / "export").exists()


def test_the_same_data_calls_succeed_once_granted(vault: VaultService, world: World) -> None:
    # A test of the test: the refusals above come from the missing grant, not from bad arguments.
    app = make_app(vault, "granted", "read:*", "write:*", "delete:*", "search:*")
    for call in DATA.values():
        call(vault, app, world)


def test_self_service_calls_lend_a_new_app_nothing(vault: VaultService, world: World) -> None:
    app = make_app(vault, "newcomer")
    access = vault.list_access(app)
    assert access.scopes == [] and access.grants == []
    request = vault.request_access(app, ["read:*"], purpose="see everything")
    assert vault.consent_status(app, request.id).status == "pending"
    with pytest.raises(NotFound):
        vault.consent_status(app, world.consent)  # another app's request
    with pytest.raises(ScopeDenied):
        vault.list_items(app)
    assert vault.list_access(app).scopes == []
