"""Peak memory of exporting and importing a documents-heavy bundle (issue 27: memory bounded by one document).

Run: python bench/bundle_rss.py --mib 1024 [--doc-mib 8] [--seal recipient|passphrase] [--tree /work/main]
(prints one JSON object; the figures go to docs/reliability.md). ``--tree`` runs the phases
on another checkout's code (e.g. the main branch, for a before/after in one run); the
default is this one.

The vault holds ``--mib`` MiB of incompressible documents, ``--doc-mib`` MiB each, one
chunk and one (synthetic) vector each, so neither phase loads the embedding model. Each
phase runs in its own process; it reports its peak RSS and its RSS just before the export
or import began (the vault open, its libraries loaded): the difference is what the bundle
cost. ``--seal passphrase`` seals the bundle with a passphrase (age's scrypt mode, whose
key derivation alone takes 256 MiB at age's work factor, whatever the bundle's size)
instead of to an X25519 recipient. The peak is the process's ``VmHWM`` (/proc/self/status), not ``ru_maxrss``: Linux
carries the parent's peak over ``execve`` into ``ru_maxrss``, so a child of a large process
(a test run that loaded the model) would report the parent's peak as its own.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PASSPHRASE = "benchmark passphrase"
DIM = 384
ROOT = Path(__file__).resolve().parents[1]


def _rss_mib() -> float:
    """This process's own peak RSS (VmHWM), in MiB; ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def populate(home: Path, mib: int, doc_mib: int) -> dict[str, Any]:
    import numpy as np

    from vault import Settings, init_vault, open_vault
    from vault import vectors as vector_rows
    from vault.chunking import Chunk
    from vault.portable.merge import apply
    from vault.portable.records import DocumentPayload, ImportBatch, ItemRecord

    settings = Settings.from_env(home=home)
    init_vault(settings, PASSPHRASE)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    count = max(1, mib // doc_mib)
    with open_vault(settings, PASSPHRASE) as svc:
        for start in range(0, count, 4):  # a few documents a transaction: populating stays small too
            records = []
            for i in range(start, min(count, start + 4)):
                data = np.random.default_rng(i).bytes(doc_mib << 20)
                digest = hashlib.sha256(data).hexdigest()
                title = f"Document {i}"
                records.append(
                    ItemRecord(
                        id=None, kind="document", text=title, space="personal", created_at=t0 + timedelta(seconds=i),
                        updated_at=t0 + timedelta(seconds=i), source="cli", hash=digest,
                        document=DocumentPayload(f"/docs/d{i}.bin", f"d{i}.bin", "application/octet-stream", data, digest,
                                                 chunks=(Chunk(0, 0, len(title), title),)),
                    )
                )  # fmt: skip
            apply(svc.store, ImportBatch("markdown", "bench", tuple(records)), settings, actor="owner", dry_run=False)
        uids = [r[0] for r in svc.store.query("SELECT uid FROM units ORDER BY uid")]
        with svc.store.transaction():
            model = vector_rows.model_id(svc.store, settings.model, DIM)
            assert model is not None
            vecs = np.random.default_rng(0).standard_normal((len(uids), DIM)).astype("<f4")
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            vector_rows.insert(svc.store, model, uids, vecs)
    return {"documents": count, "document_mib": doc_mib}


BUNDLE_PASSPHRASE = "benchmark bundle passphrase"


def export(home: Path, out: Path, recipient: str) -> dict[str, Any]:
    """Export to ``recipient`` (an age1… key), or with BUNDLE_PASSPHRASE when it is ``passphrase``."""
    from schemas.portable import Selection
    from vault import OWNER, Settings, open_vault

    seal: dict[str, Any] = {"passphrase": BUNDLE_PASSPHRASE} if recipient == "passphrase" else {"recipients": [recipient]}
    with open_vault(Settings.from_env(home=home), PASSPHRASE) as svc:
        before = _current_rss_mib()
        summary = svc.export_bundle(OWNER, Selection(), out, **seal)
    return {"export_rss_before_mib": round(before, 1), "export_peak_rss_mib": round(_rss_mib(), 1), "bundle_bytes": summary.bytes}


def reimport(home: Path, bundle: Path, key: str) -> dict[str, Any]:
    """Import with the identity file ``key``, or with BUNDLE_PASSPHRASE when it is ``passphrase``."""
    from vault import OWNER, Settings, init_vault, open_vault

    settings = Settings.from_env(home=home)
    init_vault(settings, PASSPHRASE)
    unseal: dict[str, Any] = {"passphrase": BUNDLE_PASSPHRASE} if key == "passphrase" else {"identity_file": Path(key)}
    with open_vault(settings, PASSPHRASE) as svc:
        before = _current_rss_mib()
        summary = svc.import_source(OWNER, bundle, **unseal)
    return {"import_rss_before_mib": round(before, 1), "import_peak_rss_mib": round(_rss_mib(), 1), "imported": summary.new}


def _phase(tree: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, __file__, "--phase", str(tree), *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"phase {args[0]} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(mib: int, doc_mib: int = 8, tree: Path = ROOT, scratch: Path | None = None, seal: str = "recipient") -> dict[str, Any]:
    """Populate, export and import in three processes on ``tree``'s code; the report as a dict."""
    from pyrage import x25519

    with tempfile.TemporaryDirectory(prefix="ctxvault-bench-rss-", dir=scratch) as tmp:
        base = Path(tmp)
        ident = x25519.Identity.generate()
        key = base / "key.txt"
        key.write_text(f"{ident}\n")
        out = base / "bundle.age"
        report: dict[str, Any] = {"benchmark": "bundle-rss", "tree": str(tree), "documents_mib": mib, "seal": seal}
        passphrase = seal == "passphrase"
        report |= _phase(tree, "populate", str(base / "a"), str(mib), str(doc_mib))
        report |= _phase(tree, "export", str(base / "a"), str(out), "passphrase" if passphrase else str(ident.to_public()))
        report |= _phase(tree, "import", str(base / "b"), str(out), "passphrase" if passphrase else str(key))
    report["export_growth_mib"] = round(report["export_peak_rss_mib"] - report["export_rss_before_mib"], 1)
    report["import_growth_mib"] = round(report["import_peak_rss_mib"] - report["import_rss_before_mib"], 1)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="documents' total size")
    parser.add_argument("--doc-mib", type=int, default=8, help="each document's size")
    parser.add_argument("--seal", choices=["recipient", "passphrase"], default="recipient", help="how the bundle is sealed")
    parser.add_argument("--tree", type=Path, action="append", help="a checkout whose code runs the phases (repeatable)")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        tree, name, *rest = args.phase
        sys.path.insert(0, tree)
        fn = {
            "populate": lambda: populate(Path(rest[0]), int(rest[1]), int(rest[2])),
            "export": lambda: export(Path(rest[0]), Path(rest[1]), rest[2]),
            "import": lambda: reimport(Path(rest[0]), Path(rest[1]), rest[2]),
        }[name]
        print(json.dumps(fn()))
        return
    trees = args.tree or [ROOT]
    reports = [run(args.mib, args.doc_mib, tree.resolve(), seal=args.seal) for tree in trees]
    print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))


if __name__ == "__main__":
    main()
