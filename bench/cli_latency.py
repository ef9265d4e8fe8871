"""What a person waits for at the terminal: each command cold (in its own process) and through the unlock session.

    python -m bench cli-latency --items 10000 100000 --runs 10

For each size, one vault is built through the bulk import path (the records carry unit
vectors, random but fixed: what is timed is the commands, not the encoder), with the
production Argon2id parameters unless ``--fast-kdf``. Then every command runs ``--runs``
times as the installed `ctxvault` console script, wall clock around the whole process:
cold (CTXVAULT_PASSPHRASE set, no session: imports and the unlock paid each time) and
with `ctxvault unlock` running (the launcher hands the command to the agent). Each
``add`` writes a new memory; the figures are medians. Beside the wall clock: the CPU
seconds each path used (cold: the process; session: the launcher plus the agent's child,
read from the agent's reaped-children counters), which the load of a shared machine
moves far less, and the load average.

``--keep DIR`` builds each size's vault once under DIR and reuses it on later runs
(``DIR/<items>/vault``; every run's ``add`` leaves its memories in it, a few per run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import FAST_KDF, PASSPHRASE, emit
from bench.speed import DATA, corpus, import_batch
from schemas.items import MemoryIn
from vault import OWNER, Settings, VaultService, init_vault
from vault.portable.records import VectorSet
from vault.unlock import open_store, unlock_key

CTXVAULT = str(Path(sys.executable).with_name("ctxvault"))
# The targets (#25), in seconds, for the median through the session.
TARGETS = {"pref get": 0.25, "list": 0.25, "show": 0.25, "status": 0.25, "add": 0.35, "search": 0.35}
QUERIES = ("where did she go on holiday", "coffee in the morning", "my sister's new job", "a book about the sea")


def texts_for(n: int, data: Path) -> list[str]:
    """Real sentences when the benchmark data is there (bench/speed.py's corpus), else numbered stand-ins."""
    if (data / "locomo" / "locomo_dev.json").exists():
        return corpus(data, n)[0]
    return [f"memory number {i}: the {i % 97}th note about trips, meals and people" for i in range(n)]


def build(home: Path, n: int, data: Path, fast_kdf: bool) -> tuple[dict[str, str], str]:
    """A vault of ``n`` memories plus one preference, through the bulk import path; its env and one item id."""
    env = {**os.environ, "CTXVAULT_HOME": str(home), **(FAST_KDF if fast_kdf else {})}
    env.pop("CTXVAULT_PASSPHRASE", None)
    settings = Settings.from_env(env=env)
    init_vault(settings, PASSPHRASE)
    key = unlock_key(settings, passphrase=PASSPHRASE)
    svc = VaultService(open_store(settings, key), settings, key)
    try:
        texts = texts_for(n, data)
        rng = np.random.default_rng(25)
        vecs = rng.standard_normal((n, 384)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        batch = import_batch(texts)
        batch = replace(batch, vectors=VectorSet(settings.model, 384, [(r.id, 0) for r in batch.records], vecs))
        summary = svc.import_items(OWNER, batch)
        assert summary.new == n, summary
        svc.set_preference(OWNER, "diet", "vegetarian, no mushrooms")
        item = svc.remember(OWNER, MemoryIn(text="I prefer window seats on long flights")).item.id
    finally:
        svc.close()
    return env, item


def reaped_cpu(agent: int | None) -> float:
    """CPU seconds of the agent's children so far, once every child has ended and been reaped (Linux /proc)."""
    if agent is None:
        return 0.0
    children = Path(f"/proc/{agent}/task/{agent}/children")
    while children.read_text().strip():
        time.sleep(0.002)  # the agent reaps a child as soon as its pidfd says it ended
    fields = Path(f"/proc/{agent}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime


def timed(argv: list[str], env: dict[str, str], agent: int | None = None) -> tuple[float, float, float]:
    """Wall seconds of one `ctxvault` process, the CPU seconds it used itself, and those of the agent's child."""
    before, child_before = resource.getrusage(resource.RUSAGE_CHILDREN), reaped_cpu(agent)
    t0 = time.perf_counter()
    done = subprocess.run([CTXVAULT, *argv], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"ctxvault {' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, own, reaped_cpu(agent) - child_before


def commands(item: str, run: int) -> dict[str, list[str]]:
    return {
        "pref get": ["pref", "get", "diet"],
        "list": ["list"],
        "show": ["show", item],
        "status": ["status"],
        "add": ["add", f"I met a new colleague today, number {run} ({time.time_ns()})"],
        "search": ["search", QUERIES[run % len(QUERIES)]],
    }


def kept(home: Path, n: int, data: Path, fast_kdf: bool) -> tuple[dict[str, str], str, float | None]:
    """The vault at ``home``, built there first if it is not; its env, one item id, and the build time (None: reused)."""
    marker = home.parent / "item.txt"
    if marker.exists():
        env = {**os.environ, "CTXVAULT_HOME": str(home), **(FAST_KDF if fast_kdf else {})}
        env.pop("CTXVAULT_PASSPHRASE", None)
        return env, marker.read_text().strip(), None
    home.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    env, item = build(home, n, data, fast_kdf)
    marker.write_text(item)
    return env, item, time.perf_counter() - t0


def measure(n: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cv-lat-") as tmp:
        home = (args.keep / str(n) / "vault") if args.keep else Path(tmp) / "vault"
        env, item, built = kept(home, n, args.data, args.fast_kdf)
        built_s = -1.0 if built is None else built
        runtime = Path(tmp) / "rt"
        runtime.mkdir(mode=0o700)
        cold_env = {**env, "CTXVAULT_PASSPHRASE": PASSPHRASE, "CTXVAULT_RUNTIME_DIR": str(Path(tmp) / "none")}
        warm_env = {**env, "CTXVAULT_RUNTIME_DIR": str(runtime)}
        kinds = ("cold", "cold_cpu", "session", "launcher_cpu", "child_cpu")
        samples: dict[str, dict[str, list[float]]] = {name: {k: [] for k in kinds} for name in TARGETS}
        for run in range(args.cold_runs if args.cold_runs is not None else args.runs):
            for name, argv in commands(item, run).items():
                wall, cpu, _ = timed(argv, cold_env)
                samples[name]["cold"].append(wall)
                samples[name]["cold_cpu"].append(cpu)
        started = subprocess.run([CTXVAULT, "unlock", "--timeout", "30m", "--json"], env={**warm_env, "CTXVAULT_PASSPHRASE": PASSPHRASE},
                                 check=True, capture_output=True, timeout=120)  # fmt: skip
        agent = int(json.loads(started.stdout)["pid"])
        try:
            for argv in commands(item, -1).values():
                timed(argv, warm_env, agent)  # one warm-up each: the first touch of the vault's pages after the unlock
            for run in range(args.runs):
                for name, argv in commands(item, run).items():
                    wall, cpu, child = timed(argv, warm_env, agent)
                    samples[name]["session"].append(wall)
                    samples[name]["launcher_cpu"].append(cpu)
                    samples[name]["child_cpu"].append(child)
        finally:
            subprocess.run([CTXVAULT, "lock"], env=warm_env, capture_output=True, timeout=120, check=False)
    out: dict[str, Any] = {"items": n, "vault_built_s": round(built_s, 1) if built_s >= 0 else "reused", "commands": {}}
    for name, s in samples.items():
        session_median = statistics.median(s["session"])
        out["commands"][name] = {
            "cold_median_s": round(statistics.median(s["cold"]), 3),
            "session_median_s": round(session_median, 3),
            "target_s": TARGETS[name],
            "meets_target": session_median <= TARGETS[name],
            "speedup": round(statistics.median(s["cold"]) / session_median, 1),
            "cold_cpu_median_s": round(statistics.median(s["cold_cpu"]), 3),
            "session_cpu_median_s": round(statistics.median([a + b for a, b in zip(s["launcher_cpu"], s["child_cpu"], strict=True)]), 3),
            "launcher_cpu_median_s": round(statistics.median(s["launcher_cpu"]), 3),
            "child_cpu_median_s": round(statistics.median(s["child_cpu"]), 3),
            "cold_s": [round(x, 3) for x in s["cold"]],
            "session_s": [round(x, 3) for x in s["session"]],
        }
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench cli-latency", description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, nargs="+", default=[10_000])
    p.add_argument("--runs", type=int, default=10, help="runs of each command on each path (the median is reported)")
    p.add_argument("--data", type=Path, default=DATA, help="benchmark data (bench/speed.py); numbered stand-ins without it")
    p.add_argument("--fast-kdf", action="store_true", help="test Argon2id parameters instead of the production ones")
    p.add_argument("--keep", type=Path, help="build each vault once under this directory and reuse it on later runs")
    p.add_argument("--cold-runs", type=int, help="runs of the cold path (default: --runs); each costs seconds at 100k")
    args = p.parse_args(argv)
    result: dict[str, Any] = {
        "benchmark": "cli-latency",
        "runs": args.runs,
        "kdf": "fast (tests)" if args.fast_kdf else "production",
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "sizes": [measure(n, args) for n in args.items],
    }
    emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
