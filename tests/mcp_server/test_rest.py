"""The REST API over real HTTP (uvicorn): apps with bearer tokens under their grants, the owner through the
console session under its secret path, one error shape, capped bodies, an OpenAPI of /v1 only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest

from mcp_server.http import create_app
from schemas.api import API_BODY_BYTES
from schemas.items import MemoryIn
from tests.e2e.conftest import serve_in_thread
from vault import OWNER, VaultService


@dataclass
class Api:
    base: str
    http: httpx2.Client
    console: str  # the owner's /o/<key> prefix, logged in


@pytest.fixture
def api(vault: VaultService) -> Iterator[Api]:
    vault.remember(OWNER, MemoryIn(text="Standup is at 9:30", space="work"))
    vault.remember(OWNER, MemoryIn(text="My blood type is O negative", space="health", sensitivity="high"))
    for base in serve_in_thread(lambda url: create_app(vault, url)):
        with httpx2.Client(timeout=30, follow_redirects=False) as http:
            used = http.post(f"{base}/login/link", data={"link": vault.owner_login_link(OWNER)})
            yield Api(base, http, used.headers["location"].rstrip("/"))


def app_token(vault: VaultService, scopes: list[str]) -> str:
    created = vault.add_app(OWNER, "notes")
    if scopes:
        vault.grant(OWNER, "notes", scopes, purpose="test")
    return created.token


def test_an_app_sees_only_its_grant_and_owner_operations_are_refused(api: Api, vault: VaultService) -> None:
    token = app_token(vault, ["read:memories#space=work", "search:memories#space=work"])
    auth = {"Authorization": f"Bearer {token}"}
    listed = api.http.get(f"{api.base}/v1/items", headers=auth)
    assert listed.status_code == 200, listed.text
    assert [i["text"] for i in listed.json()["items"]] == ["Standup is at 9:30"]
    found = api.http.post(f"{api.base}/v1/search", headers=auth, json={"text": "blood type"})
    assert found.status_code == 200 and "negative" not in found.text
    for method, path in [("GET", "/v1/status"), ("GET", "/v1/apps"), ("GET", "/v1/audit"), ("GET", "/v1/consent")]:
        refused = api.http.request(method, f"{api.base}{path}", headers=auth)
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "ScopeDenied", path
    wrote = api.http.post(f"{api.base}/v1/memories", headers=auth, json={"text": "x", "space": "work"})
    assert wrote.status_code == 403
    # Every one of those denials is in the audit log, as over MCP.
    denials = [e for e in vault.audit_entries(OWNER, event="deny")]
    assert len(denials) >= 5


def test_no_or_a_wrong_token_is_401_in_the_one_error_shape_and_audited(api: Api, vault: VaultService) -> None:
    bare = api.http.get(f"{api.base}/v1/items")
    assert bare.status_code == 401 and bare.headers["www-authenticate"].startswith("Bearer")
    assert set(bare.json()) == {"error", "status"} and bare.json()["error"]["type"] == "InvalidToken"
    before = len(vault.audit_entries(OWNER))
    wrong = api.http.get(f"{api.base}/v1/items", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401
    assert len(vault.audit_entries(OWNER)) > before


def test_the_owner_works_through_the_console_session_only_under_its_key(api: Api, vault: VaultService) -> None:
    status = api.http.get(f"{api.base}{api.console}/v1/status")
    assert status.status_code == 200 and status.json()["memories"] == 2
    added = api.http.post(f"{api.base}{api.console}/v1/memories", json={"text": "Dentist on Friday", "space": "health"})
    assert added.status_code == 201 and added.json()["action"] == "added"
    item_id = added.json()["item"]["id"]
    edited = api.http.patch(f"{api.base}{api.console}/v1/items/{item_id}", json={"text": "Dentist on Monday"})
    assert edited.status_code == 200 and edited.json()["text"] == "Dentist on Monday"
    history = api.http.get(f"{api.base}{api.console}/v1/items/{item_id}/history").json()
    assert "Dentist on Friday" in str(history)
    # The same session cookie under another key, or no cookie, is nobody.
    assert api.http.get(f"{api.base}/o/not-the-key/v1/status").status_code == 401
    with httpx2.Client(timeout=30) as stranger:
        assert stranger.get(f"{api.base}{api.console}/v1/status").status_code == 401
    # A page of another origin cannot drive it (the guard refuses a foreign Origin).
    foreign = api.http.post(f"{api.base}{api.console}/v1/memories", json={"text": "x"}, headers={"Origin": "http://127.0.0.1:9"})
    assert foreign.status_code == 403
    assert api.http.post(f"{api.base}{api.console}/v1/items/{item_id}/purge").json() == {"purged": 1}
    gone = api.http.get(f"{api.base}{api.console}/v1/items/{item_id}/history")
    assert gone.status_code == 404 and "Friday" not in gone.text


def test_bodies_past_the_cap_are_refused_while_read_before_authentication(api: Api) -> None:
    declared = api.http.post(f"{api.base}/v1/memories", content=b"x" * (API_BODY_BYTES + 1), headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["status"] == 413
    chunks = (b"x" * 65536 for _ in range(API_BODY_BYTES // 65536 + 2))
    streamed = api.http.post(f"{api.base}/v1/memories", content=chunks, headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_malformed_input_is_400_in_the_one_shape(api: Api) -> None:
    bad = api.http.post(f"{api.base}{api.console}/v1/memories", json={"text": "", "space": "Not A Space"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "InvalidInput"
    assert api.http.get(f"{api.base}{api.console}/v1/items/{'x' * 65}").status_code == 400
    assert api.http.get(f"{api.base}{api.console}/v1/items/nope").status_code == 404


def test_openapi_documents_v1_only_with_bearer_security(api: Api) -> None:
    schema = api.http.get(f"{api.base}/openapi.json").json()
    assert schema["paths"] and all(path.startswith("/v1/") for path in schema["paths"])
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "/v1/memories" in schema["paths"] and "/v1/consent/{request_id}/approve" in schema["paths"]
