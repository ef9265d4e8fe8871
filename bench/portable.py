"""Export N memories as a sealed bundle and re-import them into a fresh vault with embeddings reused.

Run: python bench/portable.py --n 100000   (prints one JSON object; numbers go to docs/benchmarks.md)

Each phase runs in its own process so that its peak RSS is its own. Vectors are
synthetic unit vectors (this measures the bundle, not the embedder); the model id is
the vault's, so the import reuses every one of them and embeds nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyrage import x25519  # noqa: E402

from schemas.portable import Selection  # noqa: E402
from vault import OWNER, Settings, init_vault, open_vault  # noqa: E402
from vault import vectors as vector_rows  # noqa: E402
from vault.portable.merge import apply  # noqa: E402
from vault.portable.records import ImportBatch, ItemRecord  # noqa: E402

PASSPHRASE = "benchmark passphrase"
DIM = 384


def _settings(home: Path) -> Settings:
    return Settings.from_env(home=home)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def populate(home: Path, n: int) -> dict[str, float]:
    settings = _settings(home)
    init_vault(settings, PASSPHRASE)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    records = tuple(
        ItemRecord(
            id=None, kind="memory", text=f"Memory {i}: the owner noted fact number {i} about topic {i % 977} in space {i % 7}.",
            space=("personal", "work", "health")[i % 3], created_at=t0 + timedelta(seconds=i), updated_at=t0 + timedelta(seconds=i),
            tags=(f"t{i % 13}",), source="cli",
        )
        for i in range(n)
    )  # fmt: skip
    start = time.perf_counter()
    with open_vault(settings, PASSPHRASE) as svc:
        apply(svc.store, ImportBatch("markdown", "bench", records), settings, actor="owner", dry_run=False)
        rng = np.random.default_rng(0)
        uids = [r[0] for r in svc.store.query("SELECT uid FROM units ORDER BY uid")]
        with svc.store.transaction():
            model = vector_rows.model_id(svc.store, settings.model, DIM)
            assert model is not None
            for chunk in range(0, len(uids), 5000):
                part = uids[chunk : chunk + 5000]
                vecs = rng.standard_normal((len(part), DIM)).astype("<f4")
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                vector_rows.insert(svc.store, model, part, vecs)
    return {"populate_s": time.perf_counter() - start}


def export(home: Path, out: Path, recipient: str) -> dict[str, float]:
    settings = _settings(home)
    with open_vault(settings, PASSPHRASE) as svc:
        start = time.perf_counter()
        summary = svc.export_bundle(OWNER, Selection(), out, recipients=[recipient])
        took = time.perf_counter() - start
    items = summary.counts.memories + summary.counts.preferences
    return {"export_s": took, "export_items_per_s": items / took, "export_peak_rss_mib": _rss_mib(), "bundle_bytes": summary.bytes}


def reimport(home: Path, bundle: Path, key: Path) -> dict[str, float]:
    settings = _settings(home)
    init_vault(settings, PASSPHRASE)
    with open_vault(settings, PASSPHRASE) as svc:
        start = time.perf_counter()
        summary = svc.import_source(OWNER, bundle, identity_file=key)
        took = time.perf_counter() - start
    return {
        "import_s": took,
        "import_items_per_s": summary.new / took,
        "import_peak_rss_mib": _rss_mib(),
        "imported": summary.new,
        "vectors_reused": summary.vectors_reused,
    }


def _phase(*args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--phase", *args], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        name, *rest = args.phase
        fn = {"populate": lambda: populate(Path(rest[0]), int(rest[1])), "export": lambda: export(Path(rest[0]), Path(rest[1]), rest[2]),
              "import": lambda: reimport(Path(rest[0]), Path(rest[1]), Path(rest[2]))}[name]  # fmt: skip
        print(json.dumps(fn()))
        return
    with tempfile.TemporaryDirectory(prefix="ctxvault-bench-portable-") as tmp:
        base = Path(tmp)
        ident = x25519.Identity.generate()
        key = base / "key.txt"
        key.write_text(f"{ident}\n")
        out = base / "bundle.age"
        report: dict[str, object] = {"benchmark": "portable", "memories": args.n, "dim": DIM, "cpus": os.cpu_count()}
        report |= _phase("populate", str(base / "a"), str(args.n))
        report |= _phase("export", str(base / "a"), str(out), str(ident.to_public()))
        report["bundle_sha256_prefix"] = hashlib.sha256(out.read_bytes()).hexdigest()[:12]
        report |= _phase("import", str(base / "b"), str(out), str(key))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
