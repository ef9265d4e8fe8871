"""The owner's cookie attributes: under the session's secret path over plain http, ``__Host-`` over https."""

from __future__ import annotations

from fastapi.responses import Response

from mcp_server.console.context import Cookies


def test_over_https_the_cookies_are_host_prefixed_secure_and_at_the_root() -> None:
    cookies = Cookies.for_issuer("https://127.0.0.1:8765")
    response = Response()
    cookies.set_session(response, "sid", "key")
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-cv_session=sid;")
    assert "Path=/;" in header and "Secure" in header and "HttpOnly" in header and "SameSite=strict" in header
    assert "Domain" not in header


def test_over_http_the_session_cookie_lives_under_its_secret_path_and_the_device_under_login() -> None:
    cookies = Cookies.for_issuer("http://127.0.0.1:8765")
    response = Response()
    cookies.set_session(response, "sid", "k3y")
    cookies.set_device(response, "dev")
    session, device = response.headers.getlist("set-cookie")
    assert session.startswith("cv_session=sid;") and "Path=/o/k3y/" in session and "HttpOnly" in session
    assert device.startswith("cv_device=dev;") and "Path=/login" in device and "Secure" not in device
