"""Helpers for the console's browser tests: Debian chromium through Playwright, axe-core, owner login.

Missing chromium, playwright or axe-core FAILS a test (scripts/install-browser-tools.sh installs them).
Page modules' tests use the fixtures of tests/e2e/conftest.py: ``browser``, ``console_base``
(a served vault), ``owner`` (a Chromium page logged in through the one-time link, at the Inbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / ".tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
DOCS = ROOT / "docs"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious or critical axe-core violations on the page (axe injected through the debugger, so our CSP stays on)."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run scripts/install-browser-tools.sh", pytrace=False)
    page.evaluate(AXE.read_text())
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


@dataclass
class OwnerPage:
    """A Chromium page logged in as the owner. ``console`` is the absolute URL of the console (no trailing /)."""

    page: Any
    context: Any
    base: str
    console: str

    def open(self, section: str) -> Any:
        """Go to a console section (``"apps"``, ``"vault?q=x"``…) and return the page."""
        self.page.goto(f"{self.console}/{section}")
        return self.page

    def shot(self, name: str) -> None:
        """Save docs/console-NAME.png (the screenshots docs/console.md shows)."""
        self.page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=True)
