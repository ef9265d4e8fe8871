"""schemathesis fuzzes the REST API from its own /openapi.json against a real uvicorn server, twice:
as the owner (console session under its secret path) and as an app (bearer token with a narrow grant).
No answer may be a 5xx, carry an undocumented status or content type, or break its response schema."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from mcp_server.http import create_app
from schemas.items import MemoryIn
from tests.conftest import FAST_KDF_ENV, PASSPHRASE
from tests.e2e.conftest import serve_in_thread
from vault import OWNER, Settings, init_vault, open_vault

EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Served:
    base: str
    console: str
    app_token: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    patch = pytest.MonkeyPatch()
    patch.setenv("CTXVAULT_HOME", str(tmp_path_factory.mktemp("vault") / "home"))
    for key, value in FAST_KDF_ENV.items():
        patch.setenv(key, value)
    settings = Settings.from_env()
    init_vault(settings, PASSPHRASE)
    svc = open_vault(settings, PASSPHRASE)
    svc.remember(OWNER, MemoryIn(text="Standup is at 9:30", space="work"))
    svc.remember(OWNER, MemoryIn(text="Allergic to penicillin", space="health", sensitivity="high"))
    svc.set_preference(OWNER, "diet", "vegetarian")
    token = svc.add_app(OWNER, "fuzzer").token
    svc.grant(OWNER, "fuzzer", ["search:memories#space=work", "read:*#sens=low", "write:memories#space=work"], purpose="fuzz")
    try:
        for base in serve_in_thread(lambda url: create_app(svc, url)):
            with httpx2.Client(timeout=30, follow_redirects=False) as http:
                used = http.post(f"{base}/login/link", data={"link": svc.owner_login_link(OWNER)})
                session = http.cookies["cv_session"]
            yield Served(base, used.headers["location"].rstrip("/") + "|" + session, token)
    finally:
        svc.close()
        patch.undo()


def fuzz(base_url: str, schema_url: str, headers: dict[str, str]) -> list[str]:
    """Every operation of the schema, ``EXAMPLES`` generated cases each; the failures, described."""
    schema = schemathesis.openapi.from_url(schema_url)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
        def one(case: Any) -> None:
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "cookie")}
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        try:
            one()
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    return failures


def test_as_an_app_no_answer_breaks_the_schema(served: Served) -> None:
    failures = fuzz(served.base, f"{served.base}/openapi.json", {"Authorization": f"Bearer {served.app_token}"})
    assert failures == [], "\n\n".join(failures)


def test_as_the_owner_no_answer_breaks_the_schema(served: Served) -> None:
    path, session = served.console.split("|")
    failures = fuzz(f"{served.base}{path}", f"{served.base}/openapi.json", {"Cookie": f"cv_session={session}"})
    assert failures == [], "\n\n".join(failures)
