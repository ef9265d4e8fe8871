"""The architecture's hard lines, checked on the source and at run time."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PASSPHRASE

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = {"cli", "mcp_server", "typer", "fastapi", "starlette", "uvicorn", "mcp", "click"}
HEAVY = {"torch", "sentence_transformers", "transformers", "faiss", "onnxruntime"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module, at module level?) for every import in a file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    out: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[0], id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module.split(".")[0], id(node) in top))
    return out


def test_the_core_imports_no_adapter_or_framework() -> None:
    leaks = [f"{p.relative_to(ROOT)}: {mod}" for p in (ROOT / "vault").rglob("*.py") for mod, _ in _imports(p) if mod in ADAPTERS]
    assert leaks == []


def test_heavy_libraries_are_never_imported_at_module_level() -> None:
    heavy = [
        f"{p.relative_to(ROOT)}: {mod}"
        for pkg in ("vault", "cli", "mcp_server", "schemas")
        for p in (ROOT / pkg).rglob("*.py")
        for mod, at_top in _imports(p)
        if mod in HEAVY and at_top
    ]
    assert heavy == []


def _run(script: str) -> str:
    env = {**os.environ, "CTXVAULT_PASSPHRASE": PASSPHRASE}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_pref_get_does_not_load_torch(home: Path) -> None:
    prelude = "import sys, json\nfrom typer.testing import CliRunner\nfrom cli.app import app\nr = CliRunner()\n"
    _run(
        prelude
        + "assert r.invoke(app, ['init']).exit_code == 0\nassert r.invoke(app, ['pref', 'set', 'diet', 'vegan']).exit_code == 0\nprint('ok')"
    )
    out = _run(
        prelude + "out = r.invoke(app, ['pref', 'get', 'diet'])\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'faiss', 'onnxruntime') if m in sys.modules)\n"
        "print(json.dumps({'value': out.stdout.strip(), 'heavy': heavy}))\n"
    )
    assert json.loads(out) == {"value": "vegan", "heavy": []}
