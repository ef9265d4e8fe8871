"""One frozen settings object, read once from ``CTXVAULT_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from schemas.limits import DOCUMENT_BYTES
from vault.agent_client import vault_home
from vault.crypto import KdfParams

# Tuned on a 2-core machine to about half a second per unlock: 128 MiB, t=4, 4 lanes measured
# 0.62 s median with the other core busy (derive_kek x5); the floor is 64 MiB, t=3 (BRIEF §4).
PRODUCTION_KDF = KdfParams(memory_kib=128 * 1024, iterations=4, lanes=4)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
INT8_SUFFIX = "#int8"  # names the int8 variant of a model (vault/model_files.py)
# The model a new vault is created with: the int8 variant of DEFAULT_MODEL (vault/model_files.py), 3-7x
# its fp32 encoder on batches with LoCoMo R@10 and SciFact nDCG@10 within 0.01 (docs/benchmarks.md,
# "Bulk embedding throughput"). An existing vault keeps the model it records (vault/vault_model.py).
NEW_VAULT_MODEL = DEFAULT_MODEL + INT8_SUFFIX


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the vault lives and how it behaves. Build with ``Settings.from_env()``."""

    home: Path
    kdf: KdfParams = PRODUCTION_KDF
    model: str = NEW_VAULT_MODEL  # for new vaults only: an existing vault uses the model it records
    chunk_chars: int = 1200
    chunk_overlap: int = 200
    max_document_bytes: int = DOCUMENT_BYTES
    dedup_threshold: float = 0.92
    ann_threshold: int = 50_000
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def key_path(self) -> Path:
        return self.home / "vault.key"

    @property
    def db_path(self) -> Path:
        return self.home / "vault.db"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, home: Path | None = None) -> Settings:
        env = os.environ if env is None else env
        base = cls(home=vault_home(env, home))
        kdf = KdfParams(
            memory_kib=int(env.get("CTXVAULT_KDF_MEMORY_KIB", base.kdf.memory_kib)),
            iterations=int(env.get("CTXVAULT_KDF_ITERATIONS", base.kdf.iterations)),
            lanes=int(env.get("CTXVAULT_KDF_LANES", base.kdf.lanes)),
        )
        return replace(
            base,
            kdf=kdf,
            model=env.get("CTXVAULT_MODEL", base.model),
            ann_threshold=int(env.get("CTXVAULT_ANN_THRESHOLD", base.ann_threshold)),
            dedup_threshold=float(env.get("CTXVAULT_DEDUP_THRESHOLD", base.dedup_threshold)),
        )
