"""Audit: every disclosure, write, denial and grant change is appended to the hash chain (BRIEF §4).

tests/vault/test_audit.py proves tampering is detected and what one disclosure records;
tests/vault/test_policy.py that every denial is recorded. Here: every read path an app
can use records exactly what it handed over, and every kind of change lands in a chain
that still verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from schemas.items import MemoryIn, SearchQuery
from schemas.portable import Selection
from tests.security.conftest import make_app
from vault import OWNER, VaultService
from vault.embed import Embedder


def since(vault: VaultService, seq: int) -> list[tuple[str, str, list[str]]]:
    return [(e.event, e.principal, e.item_ids) for e in vault.audit_entries(OWNER) if e.seq > seq]


def last_seq(vault: VaultService) -> int:
    entries = vault.audit_entries(OWNER, limit=1)
    return entries[0].seq if entries else 0


def test_every_item_an_app_receives_is_recorded_as_disclosed(vault: VaultService, embedder: Embedder, tmp_path: Path) -> None:
    tea = vault.remember(OWNER, MemoryIn(text="I like green tea in the afternoon")).item.id
    vault.set_preference(OWNER, "drink", "green tea")
    vault.set_preference(OWNER, "drink", "jasmine tea")
    (tmp_path / "tea.md").write_text("# Tea\n\nBrew green tea for three minutes.\n")
    doc = vault.add_document(OWNER, tmp_path / "tea.md").item_id
    app = make_app(vault, "cursor", "read:*", "search:*", "write:memories")
    reads: dict[str, Callable[[], list[str]]] = {
        "get_item": lambda: [vault.get_item(app, tea).id],
        "list_items": lambda: [i.id for i in vault.list_items(app).items],
        "list_documents": lambda: [i.id for i in vault.list_documents(app).items],
        "show_document": lambda: [vault.show_document(app, doc).item.id],
        "search": lambda: [h.item_id for h in vault.search(app, SearchQuery(text="green tea")).hits],
        "get_preference": lambda: [vault.get_preference(app, "drink").item.id],
        "list_preferences": lambda: [p.item.id for p in vault.list_preferences(app)],
        "preference_history": lambda: [i.id for i in vault.preference_history(app, "drink")],
        "preferences_for keys": lambda: [p.item.id for p in vault.preferences_for(app, keys=["drink"]).preferences],
        "preferences_for task": lambda: [p.item.id for p in vault.preferences_for(app, task="what to drink").preferences],
        "profile": lambda: [p.item.id for p in vault.profile(app).preferences],
        "task_context": lambda: [h.item_id for h in vault.task_context(app, "tea").hits],
        "remember (similar)": lambda: [x.id for x in vault.remember(app, MemoryIn(text="I like green tea in the evening")).similar],
    }
    for name, read in reads.items():
        seq = last_seq(vault)
        got = read()
        assert got, f"{name} returned nothing, so it proves nothing"
        new = since(vault, seq)
        disclosed = {i for event, who, ids in new if event == "disclose" and who == app.label for i in ids}
        assert set(got) <= disclosed, f"{name} handed over {sorted(set(got) - disclosed)} without a record"
    assert vault.verify_audit(OWNER).entries == len(vault.audit_entries(OWNER))


def test_every_write_forget_and_grant_change_lands_in_a_chain_that_verifies(vault: VaultService, tmp_path: Path) -> None:
    vault.add_app(OWNER, "cursor")
    app = vault.principal_for_app("cursor")
    steps: list[tuple[str, Callable[[], object]]] = [
        ("grant", lambda: vault.grant(OWNER, "cursor", ["read:*", "write:*", "delete:*"])),
        ("write", lambda: vault.remember(app, MemoryIn(text="Standup moved to ten"))),
        ("write", lambda: vault.set_preference(app, "tone", "concise")),
        ("forget", lambda: vault.forget(app, vault.list_items(OWNER, kinds=["memory"]).items[0].id)),
        ("consent_request", lambda: vault.request_access(app, ["search:*"], purpose="find things")),
        ("consent_approve", lambda: vault.approve_consent(OWNER, vault.list_consent(OWNER)[0].id)),
        ("consent_request", lambda: vault.request_access(app, ["read:documents"], purpose="read notes")),
        ("consent_deny", lambda: vault.deny_consent(OWNER, vault.list_consent(OWNER)[0].id)),
        ("revoke", lambda: vault.revoke(OWNER, vault.list_grants(OWNER, app="cursor", active_only=True)[0].id)),
        ("app_rotate_token", lambda: vault.rotate_app_token(OWNER, "cursor")),
        ("export", lambda: vault.export_bundle(OWNER, Selection(), tmp_path / "out", plaintext=True)),
        ("purge", lambda: vault.purge(OWNER)),
        ("app_remove", lambda: vault.remove_app(OWNER, "cursor")),
    ]
    for event, step in steps:
        seq = last_seq(vault)
        step()
        assert event in [e for e, _, _ in since(vault, seq)], f"no {event} entry"
    report = vault.verify_audit(OWNER)
    assert report.entries == len(vault.audit_entries(OWNER)) > len(steps)
