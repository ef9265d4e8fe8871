"""End-to-end ingest as a new user runs it: `ctxvault import memory.jsonl` and `ctxvault doc add` (write + embed).

    python -m bench ingest --data ../shared/data [--memories 100000] [--doc-mb 10] [--models int8 fp32]

Each case is the installed ``ctxvault`` console script in a fresh vault created with the model under
test (``CTXVAULT_MODEL`` at `init`; the vault records it), no unlock session, so the command embeds what
it wrote before it exits (cli/search.py ``finish_embedding``). Timed around the whole process:

- ``import``: N short memories (LoCoMo-like sentences, distinct) in the official MCP memory server's
  ``memory.jsonl`` (one entity per 50 observations); items/s = N / wall time;
- ``doc add``: a text file of ``--doc-mb`` MB made of SciFact abstracts, one per paragraph;
- the same two with ``--no-embed``: the write alone, in the same run.

The fp32 model is the baseline, measured in the same run. The load average (1 min) is taken before
and after every case: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import FAST_KDF, emit
from bench.embed import _phrases
from bench.scifact import load as load_scifact
from vault.settings import DEFAULT_MODEL, INT8_SUFFIX

CTXVAULT = Path(sys.executable).with_name("ctxvault")
PASSPHRASE = "benchmark passphrase"
MODELS = {"fp32": DEFAULT_MODEL, "int8": DEFAULT_MODEL + INT8_SUFFIX}


def memory_jsonl(path: Path, n: int) -> None:
    subjects = ["Alice", "Bob", "the plumber", "my sister", "the landlord", "Dr Rao", "the bank", "our team"]
    rnd = random.Random(5)
    lines = []
    phrases = _phrases(n)
    for start in range(0, n, 50):
        obs = [f"{rnd.choice(subjects)} mentioned {p} on day {start + k}" for k, p in enumerate(phrases[start : start + 50])]
        lines.append(json.dumps({"type": "entity", "name": f"topic_{start // 50}", "entityType": "topic", "observations": obs}))
    path.write_text("\n".join(lines) + "\n")


def document(path: Path, data: Path, mb: float) -> None:
    docs, _ = load_scifact(data / "scifact")
    out, size, target = [], 0, int(mb * 1_000_000)
    for text in docs.values():
        out.append(text)
        size += len(text.encode()) + 2
        if size >= target:
            break
    path.write_text("\n\n".join(out))


def run_case(model: str, argv: list[str], tmp: Path) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="vault-", dir=tmp))
    env = {**os.environ, **FAST_KDF, "CTXVAULT_HOME": str(home), "CTXVAULT_PASSPHRASE": PASSPHRASE, "CTXVAULT_MODEL": model}
    env.pop("CTXVAULT_EMBED_THREADS", None)
    subprocess.run([str(CTXVAULT), "init", "--json"], env=env, check=True, capture_output=True)
    env.pop("CTXVAULT_MODEL")  # the vault knows its model from now on
    load_before = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([str(CTXVAULT), *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    if done.returncode:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr[-2000:]}")
    stats = json.loads(subprocess.run([str(CTXVAULT), "stats", "--json"], env=env, check=True, capture_output=True, text=True).stdout)
    return {
        "wall_s": round(wall, 2),
        # CPU seconds of the command (every thread): what the load moves least. On an idle 2-core
        # machine the wall time is at least cpu_s / 2.
        "cpu_s": round(cpu, 2),
        "units": stats["units"],
        "vectors": stats["vectors"],
        "model": stats["model"],
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "ingest", "memories": args.memories, "doc_mb": args.doc_mb, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="ctxvault-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        jsonl, doc = tmp / "memory.jsonl", tmp / "document.txt"
        if args.memories:
            memory_jsonl(jsonl, args.memories)
        if args.doc_mb:
            document(doc, args.data, args.doc_mb)
            result["doc_bytes"] = doc.stat().st_size
        for name in args.models:
            model = MODELS[name]
            cases: dict[str, Any] = {}
            if args.memories:
                cases["import"] = case = run_case(model, ["import", str(jsonl), "--json"], tmp)
                case["items_per_s"] = round(args.memories / case["wall_s"], 1)
                case["items_per_cpu_s"] = round(args.memories / case["cpu_s"], 1)
            if args.doc_mb:
                cases["doc_add"] = case = run_case(model, ["doc", "add", str(doc), "--json"], tmp)
                case["chunks_per_s"] = round(case["units"] / case["wall_s"], 1)
                case["chunks_per_cpu_s"] = round(case["units"] / case["cpu_s"], 1)
            result["cases"][name] = cases
            print(json.dumps({name: cases}), file=sys.stderr, flush=True)  # progress: a long run shows each case
        if not args.skip_write_only:
            write: dict[str, Any] = {}
            if args.memories:
                write["import"] = run_case(MODELS["int8"], ["import", str(jsonl), "--no-embed", "--json"], tmp)
            if args.doc_mb:
                write["doc_add"] = run_case(MODELS["int8"], ["doc", "add", str(doc), "--no-embed", "--json"], tmp)
            result["cases"]["write_only"] = write
    if "fp32" in result["cases"] and "int8" in result["cases"]:
        fp32, int8 = result["cases"]["fp32"], result["cases"]["int8"]
        result["ratio_fp32_to_int8"] = {
            k: {"wall": round(fp32[k]["wall_s"] / int8[k]["wall_s"], 2), "cpu": round(fp32[k]["cpu_s"] / int8[k]["cpu_s"], 2)} for k in int8
        }
    return result


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench ingest", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path, help="the shared data folder (scifact/)")
    p.add_argument("--memories", type=int, default=100_000, help="short memories in the memory.jsonl (0: skip)")
    p.add_argument("--doc-mb", type=float, default=10.0, help="size of the text file for `doc add` in MB (0: skip)")
    p.add_argument("--models", nargs="+", default=["int8", "fp32"], choices=sorted(MODELS))
    p.add_argument("--skip-write-only", action="store_true", help="skip the --no-embed cases")
    emit(run(p.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
