"""Real clients against real servers: the MCP Inspector CLI, the conformance suite, HTTP OAuth.

The npm tools live in .tools/mcp (scripts/install-mcp-tools.sh). A missing tool FAILS the
test instead of skipping it: an external check that silently does not run proves nothing.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import PASSPHRASE
from tests.e2e.console import CHROMIUM, CHROMIUM_ARGS, OwnerPage

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "mcp" / "node_modules"
NODE_BIN = TOOLS / "node" / "bin"
INSPECTOR = TOOLS / ".bin" / "mcp-inspector"
CONFORMANCE = TOOLS / ".bin" / "conformance"
CTXVAULT = [sys.executable, "-c", "import sys; from cli.app import main; sys.argv[0] = 'ctxvault'; main()"]


def _require(tool: Path) -> Path:
    if not tool.exists() or not (NODE_BIN / "node").exists():
        pytest.fail(f"{tool.name} is not installed: run scripts/install-mcp-tools.sh", pytrace=False)
    return tool


def node_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "PATH": f"{NODE_BIN}:{os.environ['PATH']}", **(extra or {})}


@dataclass
class Inspector:
    """Runs `mcp-inspector --cli TARGET… ARGS…` and returns its parsed JSON answer."""

    exe: Path

    def __call__(self, target: list[str], *args: str, exit_code: int = 0) -> dict[str, object]:
        """Exit code 5 is the Inspector's answer to a tool result with isError: true."""
        # Options must precede "--": everything after it is the stdio server's command line.
        split = target.index("--") if "--" in target else len(target)
        argv = [str(self.exe), "--cli", *target[:split], *args, *target[split:]]
        done = subprocess.run(argv, env=node_env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == exit_code, done.stdout + done.stderr
        # A failure is reported as JSON on stderr, a result on stdout.
        out = done.stdout if done.stdout.strip() else done.stderr
        start = out.find("{")
        assert start >= 0, done.stdout + done.stderr
        answer: dict[str, object] = json.JSONDecoder().raw_decode(out[start:])[0]
        return answer


@pytest.fixture
def inspector() -> Inspector:
    return Inspector(_require(INSPECTOR))


@pytest.fixture
def conformance() -> Path:
    return _require(CONFORMANCE)


@pytest.fixture
def ctxvault_env(home: Path) -> dict[str, str]:
    return {**os.environ, "CTXVAULT_PASSPHRASE": PASSPHRASE}


@pytest.fixture
def served(ctxvault_env: dict[str, str]) -> Iterator[str]:
    """`ctxvault serve --port 0` in a subprocess; yields its base URL once it listens."""
    proc = subprocess.Popen(
        [*CTXVAULT, "serve", "--port", "0"], env=ctxvault_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stderr, selectors.EVENT_READ)
        line = ""
        while "serving MCP at" not in line:
            # Bounded wait for the announcement (printed after the socket is bound and listening).
            assert selector.select(timeout=60), "ctxvault serve did not start"
            line = proc.stderr.readline()
            assert line, "ctxvault serve exited"
        yield line.split("serving MCP at ")[1].split()[0].removesuffix("/mcp")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


def serve_in_thread(make_app: Callable[[str], FastAPI]) -> Iterator[str]:
    """Serve an app built for its own base URL on a pre-bound loopback socket; yields the base URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(make_app(base), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'", pytrace=False)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser-tools.sh", pytrace=False)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def console_base(vault: Any) -> Iterator[str]:
    """The vault of the ``vault`` fixture served over real HTTP by uvicorn (its base URL)."""
    from mcp_server.http import create_app

    yield from serve_in_thread(lambda url: create_app(vault, url))


@pytest.fixture
def owner(browser: Any, console_base: str, vault: Any) -> Iterator[OwnerPage]:
    """A Chromium page logged in as the owner through the one-time link of ``ctxvault ui``, at the Inbox."""
    from vault import OWNER

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{console_base}/login/link?token={vault.owner_login_link(OWNER)}")
    page.click("main button[type=submit]")
    assert page.locator("h1").inner_text() == "Inbox", page.content()
    try:
        yield OwnerPage(page, context, console_base, page.url.rstrip("/"))
    finally:
        context.close()
