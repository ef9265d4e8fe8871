"""Fixtures for portable tests: vaults that fake embedding, populated without loading a model."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, VaultService, init_vault, open_vault
from vault import vectors as vector_rows
from vault.portable.merge import apply
from vault.portable.records import DocumentPayload, ImportBatch, ItemRecord

DIM = 384
REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "importers"


def fake_vectors(vault: VaultService) -> int:
    """Give every unit without a vector a deterministic one (seeded by its text), as sync would."""
    rows = vault.store.query("SELECT u.uid, u.text FROM units u LEFT JOIN vectors v ON v.uid = u.uid WHERE v.uid IS NULL")
    with vault.store.transaction():
        model = vector_rows.model_id(vault.store, vault.settings.model, DIM)
        assert model is not None
        for uid, text in rows:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vec = np.random.default_rng(seed).standard_normal((1, DIM)).astype(np.float32)
            vec /= np.linalg.norm(vec)
            vector_rows.insert(vault.store, model, [uid], vec)
    return len(rows)


@pytest.fixture
def source(vault: VaultService, monkeypatch: pytest.MonkeyPatch) -> VaultService:
    """The default vault, whose sync writes fake vectors instead of loading the model."""
    monkeypatch.setattr(vault._retriever, "sync", lambda *a, **k: fake_vectors(vault))
    return vault


@pytest.fixture
def make_vault(tmp_path: Path) -> Iterator[Callable[..., VaultService]]:
    """Open further vaults (another machine); their sync is the real one."""
    opened: list[VaultService] = []

    def make(name: str = "other", model: str | None = None) -> VaultService:
        base = Settings.from_env(home=tmp_path / name)
        settings = dataclasses.replace(base, model=model) if model else base
        init_vault(settings, PASSPHRASE)
        svc = open_vault(settings, PASSPHRASE)
        opened.append(svc)
        return svc

    yield make
    for svc in opened:
        svc.close()


def populate(vault: VaultService, memories: int = 3000, documents: int = 5) -> None:
    """Thousands of memories (unicode, very long texts), preferences with history, documents."""
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    words = ["café", "東京", "naïve", "Ωmega", "🙂 emoji", "zürich", "ﬁligree", "مرحبا", "line\nbreak", "tab\tbed"]
    records: list[ItemRecord] = []
    for n in range(memories):
        text = f"Memory {n}: I like {words[n % len(words)]} and {words[(n * 7) % len(words)]} number {n * 31}"
        if n % 500 == 0:
            text += " " + ("a very long text " * 4000)  # ~68k characters
        at = t0 + timedelta(minutes=n)
        records.append(
            ItemRecord(
                id=None, kind="memory", text=text, space=("personal", "work", "health")[n % 3], created_at=at, updated_at=at,
                tags=(f"t{n % 5}", "Mixed-Case") if n % 2 else (), sensitivity=("low", "medium", "high")[n % 3],
                source="cli", valid_from=at if n % 4 == 0 else None, valid_until=at + timedelta(days=30) if n % 8 == 0 else None,
                meta={"n": n},
            )
        )  # fmt: skip
    for n in range(documents):
        body = f"# Document {n} — ünïcödé\n\n" + "\n\n".join(f"Paragraph {p} of document {n} about topic {p * n}." for p in range(120))
        data = body.encode()
        at = t0 + timedelta(hours=n)
        records.append(
            ItemRecord(
                id=None, kind="document", text=f"Document {n}", space="work", created_at=at, updated_at=at, tags=("doc",),
                source=f"document:/notes/doc{n}.md", hash=None,
                document=DocumentPayload(f"/notes/doc{n}.md", f"doc{n}.md", "text/markdown", data, hashlib.sha256(data).hexdigest(), body),
            )
        )  # fmt: skip
    apply(vault.store, ImportBatch("markdown", "populate", tuple(records)), vault.settings, actor="owner", dry_run=False)
    fake_vectors(vault)
    for key, values in {
        "diet": ["vegetarian", "vegan", "vegetarian"],
        "coffee.order": ["flat white"],
        "travel.seat": ["aisle", "window"],
    }.items():
        for n, value in enumerate(values):
            vault.set_preference(OWNER, key, value, space="personal", now=t0 + timedelta(days=n + 1))


def pam_cli() -> str:
    """The `pam` CLI (scripts/install-export-tools.sh puts it in .tools/pamvenv); fails when missing."""
    local = REPO / ".tools" / "pamvenv" / "bin" / "pam"
    found = str(local) if local.exists() else shutil.which("pam")
    if found is None:
        pytest.fail("`pam` is missing: run scripts/install-export-tools.sh")
    return found


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is missing: run scripts/install-export-tools.sh")
    return found


def vault_files_digest(vault: VaultService) -> dict[str, str]:
    """sha256 of every file in the vault's home: the proof that nothing was written."""
    home = vault.settings.home
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(home.rglob("*")) if p.is_file()}
