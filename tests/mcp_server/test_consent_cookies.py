"""The owner's cookie attributes: narrowed by path over plain http, ``__Host-`` over https."""

from __future__ import annotations

from fastapi.responses import Response

from mcp_server.consent.routes import Cookies


def test_over_https_the_cookies_are_host_prefixed_secure_and_at_the_root() -> None:
    cookies = Cookies.for_issuer("https://127.0.0.1:8765")
    response = Response()
    cookies.set_session(response, "sid")
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-cv_session=sid;")
    assert "Path=/;" in header and "Secure" in header and "HttpOnly" in header and "SameSite=strict" in header
    assert "Domain" not in header


def test_over_http_the_cookies_live_under_consent_only() -> None:
    cookies = Cookies.for_issuer("http://127.0.0.1:8765")
    response = Response()
    cookies.set_device(response, "dev")
    header = response.headers["set-cookie"]
    assert header.startswith("cv_device=dev;") and "Path=/consent/" in header and "Secure" not in header
