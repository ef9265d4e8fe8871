"""Grants are checked on every call, never cached: a change made by another process applies at once (BRIEF §4).

tests/vault/test_policy.py proves revocation and expiry within one connection. Each host
app runs its own `ctxvault mcp`, so here the app calls through its own VaultService (a
second connection with its own warm caches) while the owner acts through another.
"""

from __future__ import annotations

from typing import Literal

import pytest

from schemas.items import MemoryIn, SearchQuery
from tests.security.conftest import make_app
from vault import OWNER, Principal, VaultService
from vault.embed import Embedder
from vault.errors import ScopeDenied

SearchMode = Literal["hybrid", "lexical", "dense"]
MODES: list[SearchMode] = ["hybrid", "dense", "lexical"]


def found(svc: VaultService, app: Principal, item_id: str) -> dict[str, bool]:
    return {mode: item_id in [h.item_id for h in svc.search(app, SearchQuery(text="Atlas launch date", mode=mode)).hits] for mode in MODES}


@pytest.fixture
def launch(vault: VaultService, embedder: Embedder) -> str:
    vault.remember(OWNER, MemoryIn(text="Team lunch is on the last Thursday", space="work"))
    return vault.remember(OWNER, MemoryIn(text="The Atlas launch date is the 3rd of March", space="work")).item.id


def test_a_revocation_by_another_process_denies_the_apps_next_call(
    vault: VaultService, second_connection: VaultService, launch: str
) -> None:
    app = make_app(vault, "cursor", "search:memories")
    assert all(found(second_connection, app, launch).values())
    vault.revoke(OWNER, vault.list_grants(OWNER, app="cursor")[0].id)
    with pytest.raises(ScopeDenied):
        second_connection.search(app, SearchQuery(text="Atlas launch date"))


def test_an_item_moved_out_of_scope_by_another_process_leaves_the_apps_next_results(
    vault: VaultService, second_connection: VaultService, launch: str
) -> None:
    app = make_app(vault, "cursor", "search:memories#space=work")
    assert found(second_connection, app, launch) == dict.fromkeys(MODES, True)
    vault.edit(OWNER, launch, space="personal")
    assert found(second_connection, app, launch) == dict.fromkeys(MODES, False)


def test_a_narrowed_grant_applies_on_the_next_call(vault: VaultService, second_connection: VaultService, launch: str) -> None:
    app = make_app(vault, "cursor", "search:memories")
    assert all(found(second_connection, app, launch).values())
    wide = vault.list_grants(OWNER, app="cursor")[0].id
    vault.grant(OWNER, "cursor", ["search:memories#space=personal"])
    vault.revoke(OWNER, wide)
    assert found(second_connection, app, launch) == dict.fromkeys(MODES, False)


def test_a_removed_app_is_denied_on_its_next_call_though_its_token_was_checked_at_startup(
    vault: VaultService, second_connection: VaultService, launch: str
) -> None:
    # `ctxvault mcp` checks the stdio token once, at startup; the grants behind it are read per call.
    token = vault.add_app(OWNER, "cursor").token
    vault.grant(OWNER, "cursor", ["search:memories"])
    app = second_connection.authenticate_app(token)
    assert all(found(second_connection, app, launch).values())
    vault.remove_app(OWNER, "cursor")
    with pytest.raises(ScopeDenied):
        second_connection.search(app, SearchQuery(text="Atlas launch date"))
