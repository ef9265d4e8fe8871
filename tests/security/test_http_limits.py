"""HTTP limits on a real server (uvicorn on a socket): bodies refused before they are read,
/register bounded, and no plain HTTP beyond loopback without saying so (issue 23 §3, issue 29).

A huge body is declared and only its first 64 KiB sent: the answer arriving while the rest
was never sent is the proof that the server did not wait for (or buffer) it.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import selectors
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from cli.app import app as cli_app
from mcp_server.http import create_app, is_loopback
from tests.conftest import PASSPHRASE
from tests.e2e.conftest import CTXVAULT, ROOT, serve_in_thread
from vault import OWNER, VaultService
from vault.oauth import MAX_REDIRECT_URIS, MAX_REGISTRATION_BYTES, MAX_UNUSED_DYNAMIC_CLIENTS

HUGE = 500 << 20
REDIRECT = "http://127.0.0.1:9/cb"


@pytest.fixture
def base(vault: VaultService) -> Iterator[str]:
    yield from serve_in_thread(lambda url: create_app(vault, url))


def send_partial(base: str, path: str, headers: dict[str, str], declared: int, sent: bytes) -> tuple[int, bytes]:
    """POST declaring ``declared`` bytes, send only ``sent``, and read the answer (status, body)."""
    parts = urlsplit(base)
    assert parts.hostname and parts.port
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {declared}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + sent)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_a_huge_mcp_body_is_refused_before_it_is_sent(vault: VaultService, base: str) -> None:
    token = vault.add_app(OWNER, "cursor").token
    accept = {"Accept": "application/json, text/event-stream"}
    status, body = send_partial(base, "/mcp", {**accept, "Authorization": f"Bearer {token}"}, HUGE, b" " * 65536)
    assert status == 413 and b"larger than" in body
    # Without a token, or with a refused one, the 401 comes first: nothing of the body matters.
    assert send_partial(base, "/mcp", accept, HUGE, b" " * 65536)[0] == 401
    assert send_partial(base, "/mcp", {**accept, "Authorization": "Bearer cvt_guess"}, HUGE, b" " * 65536)[0] == 401


def test_register_refuses_a_huge_body_before_it_is_sent(base: str, vault: VaultService) -> None:
    status, body = send_partial(base, "/register", {}, 10 << 20, b'{"client_name": "' + b"x" * 65536)
    assert status == 413 and json.loads(body)["error"] == "invalid_client_metadata"
    assert vault.store.one("SELECT count(*) FROM oauth_clients")[0] == 0


def test_register_bounds_every_field_and_the_number_of_unused_clients(base: str, vault: VaultService) -> None:
    with httpx2.Client(base_url=base, timeout=30) as http:
        big_name = http.post("/register", json={"client_name": "x" * (10 << 20), "redirect_uris": [REDIRECT]})
        many = http.post("/register", json={"redirect_uris": [f"http://127.0.0.1:9/{n}" for n in range(20_000)]})
        eleven = http.post("/register", json={"redirect_uris": [f"http://127.0.0.1:9/{n}" for n in range(MAX_REDIRECT_URIS + 1)]})
        long_name = http.post("/register", json={"client_name": "x" * 101, "redirect_uris": [REDIRECT]})
        not_strings = http.post("/register", json={"client_name": 5, "redirect_uris": [REDIRECT]})
        deep = http.post("/register", content=b"[" * 5000 + b"]" * 5000)
        assert (big_name.status_code, many.status_code) == (413, 413)
        assert (eleven.status_code, long_name.status_code, not_strings.status_code, deep.status_code) == (400, 400, 400, 400)
        assert eleven.json()["error"] == long_name.json()["error"] == "invalid_client_metadata"
        assert vault.store.one("SELECT count(*) FROM oauth_clients")[0] == 0
        statuses = {http.post("/register", json={"client_name": f"c{n}", "redirect_uris": [REDIRECT]}).status_code for n in range(200)}
    assert statuses == {201}
    assert vault.store.one("SELECT count(*) FROM oauth_clients")[0] == MAX_UNUSED_DYNAMIC_CLIENTS
    assert len(json.dumps({"redirect_uris": [REDIRECT] * MAX_REDIRECT_URIS, "client_name": "x" * 100})) < MAX_REGISTRATION_BYTES


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
                                                ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
                                                ("vault.example", False)])  # fmt: skip
def test_which_hosts_stay_on_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serving_beyond_loopback_without_tls_is_refused(vault: VaultService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXVAULT_PASSPHRASE", PASSPHRASE)
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 8
    assert "--tls-cert" in result.stderr and "--insecure-http" in result.stderr


def start_serve(args: list[str]) -> tuple[subprocess.Popen[str], str, str]:
    """`ctxvault serve ARGS` in a subprocess; returns it, its announced base URL and the stderr before it."""
    proc = subprocess.Popen(
        [*CTXVAULT, "serve", "--port", "0", *args],
        env={**os.environ, "CTXVAULT_PASSPHRASE": PASSPHRASE},
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    before = ""
    while True:
        assert selector.select(timeout=60), "ctxvault serve did not start"
        line = proc.stderr.readline()
        assert line, f"ctxvault serve exited: {before}"
        if "serving MCP at" in line:
            return proc, line.split("serving MCP at ")[1].split()[0].removesuffix("/mcp"), before
        before += line


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    if proc.stderr is not None:
        proc.stderr.close()


def test_insecure_http_beyond_loopback_is_served_with_a_loud_warning(vault: VaultService) -> None:
    vault.close()
    proc, url, before = start_serve(["--host", "0.0.0.0", "--insecure-http"])
    try:
        assert "WARNING: serving PLAIN HTTP on 0.0.0.0" in before and "cleartext" not in url
        assert httpx2.get(f"{url}/.well-known/oauth-authorization-server", timeout=30).status_code == 200
    finally:
        stop(proc)
    # On loopback there is nothing to warn about.
    proc, _, before = start_serve([])
    stop(proc)
    assert "WARNING" not in before


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False).sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_beyond_loopback_is_served_over_https_without_a_warning(vault: VaultService, tmp_path: Path) -> None:
    vault.close()
    cert, key = self_signed(tmp_path)
    proc, url, before = start_serve(["--host", "0.0.0.0", "--tls-cert", str(cert), "--tls-key", str(key)])
    try:
        assert url.startswith("https://127.0.0.1:") and "WARNING" not in before
        answer = httpx2.get(
            f"{url}/.well-known/oauth-authorization-server", verify=ssl.create_default_context(cafile=str(cert)), timeout=30
        )
        assert answer.status_code == 200 and answer.json()["issuer"] == url
        with pytest.raises(httpx2.HTTPError):
            httpx2.get(url.replace("https://", "http://") + "/.well-known/oauth-authorization-server", timeout=30)
    finally:
        stop(proc)
