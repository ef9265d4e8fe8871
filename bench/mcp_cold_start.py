"""Cold start of `ctxvault mcp`: spawn → first answer (initialize), and → tools/list, on both paths.

- ``agent``: a real unlock agent (`ctxvault unlock`) serves the command: the `ctxvault`
  launcher hands its stdio to a child forked from the agent, which pre-imported the server.
- ``in_process``: the same launcher where the agent cannot start programs (an older agent,
  here a thread of this process serving the socket), so the CLI runs in the launcher's own
  process and takes the key from the session, as every start did before the agent path.

Runs alternate between the two, so both see the same load on a shared machine. Each run
also reports the heavy modules (torch, sentence_transformers, faiss, onnxruntime) the
launcher imported and, on the agent path, the heavy libraries mapped into the serving child.

    python bench/mcp_cold_start.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vault import OWNER, Settings, init_vault, open_vault, session  # noqa: E402
from vault.unlock import unlock_key  # noqa: E402

PASSPHRASE = "benchmark passphrase"
CTXVAULT = Path(sys.executable).with_name("ctxvault")
HEAVY = ("torch", "sentence_transformers", "faiss", "onnxruntime")
WATCHED = (*HEAVY, "mcp", "cli.app")
# The console script's entry point, reporting at exit which watched modules the launcher imported.
WRAPPER = (
    "import atexit, json, sys\n"
    "out = sys.argv.pop(1)\n"
    f"atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(m for m in {WATCHED!r} if m in sys.modules))))\n"
    "from cli.entry import main\n"
    "sys.argv[0] = 'ctxvault'\n"
    "main()\n"
)


def _rpc(proc: subprocess.Popen[bytes], message: dict[str, object], answer: bool = True) -> dict[str, object] | None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(message).encode() + b"\n")
    proc.stdin.flush()
    if not answer:
        return None
    reply: dict[str, object] = json.loads(proc.stdout.readline())
    return reply


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _mapped_heavy(agent_pid: int) -> list[str]:
    """Heavy libraries mapped into the agent's serving child (sentence_transformers is pure Python: its torch shows)."""
    maps = "".join(Path(f"/proc/{pid}/maps").read_text() for pid in _children(agent_pid))
    return [m for m in HEAVY if m in maps]


def one_run(env: dict[str, str], report: Path, agent_pid: int | None) -> tuple[float, float, list[str], list[str]]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(report), "mcp", "--app", "bench"],
        env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    init = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
    }  # fmt: skip
    reply = _rpc(proc, init)
    t_init = time.perf_counter() - start
    assert reply and "result" in reply, reply
    _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"}, answer=False)
    listed = _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    t_list = time.perf_counter() - start
    assert listed and "result" in listed, listed
    child_heavy = _mapped_heavy(agent_pid) if agent_pid is not None else []
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    return t_init, t_list, json.loads(report.read_text()), child_heavy


def _vault(tmp: Path, name: str, base: dict[str, str]) -> tuple[Settings, dict[str, str]]:
    """A fresh vault with app `bench`; the environment a host would give its server."""
    env = {**base, "CTXVAULT_HOME": str(tmp / name)}
    settings = Settings.from_env(env)
    init_vault(settings, PASSPHRASE)
    with open_vault(settings, PASSPHRASE) as svc:
        env["CTXVAULT_APP_TOKEN"] = svc.add_app(OWNER, "bench").token
    return settings, env


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(v * 1000 for v in values)
    return {"median": round(statistics.median(ordered), 1), "min": round(ordered[0], 1), "max": round(ordered[-1], 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cvb-") as tmp_dir:
        tmp = Path(tmp_dir)
        base = {k: v for k, v in os.environ.items() if k not in ("CTXVAULT_PASSPHRASE", "CTXVAULT_APP_TOKEN")}
        base |= {"CTXVAULT_RUNTIME_DIR": str(tmp / "run"), "HF_HUB_OFFLINE": "1"}
        os.environ["CTXVAULT_RUNTIME_DIR"] = base["CTXVAULT_RUNTIME_DIR"]
        warm, warm_env = _vault(tmp, "agent", base)
        cold, cold_env = _vault(tmp, "in-process", base)

        unlocked = subprocess.run(
            [str(CTXVAULT), "unlock", "--timeout", "1h", "--json"],
            env={**warm_env, "CTXVAULT_PASSPHRASE": PASSPHRASE}, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        agent_pid = int(json.loads(unlocked.stdout)["pid"])
        older = threading.Thread(target=session.serve, args=(cold, unlock_key(cold, PASSPHRASE), 3600.0), daemon=True)
        older.start()
        while not session.socket_path(cold).exists():
            time.sleep(0.01)
        try:
            runs: dict[str, list[tuple[float, float, list[str], list[str]]]] = {"agent": [], "in_process": []}
            for i in range(args.runs):
                runs["agent"].append(one_run(warm_env, tmp / f"agent-{i}.json", agent_pid))
                runs["in_process"].append(one_run(cold_env, tmp / f"in-process-{i}.json", None))
        finally:
            session.lock(warm)
            session.lock(cold)
            older.join(timeout=10)

    report: dict[str, object] = {"bench": "mcp_cold_start", "runs": args.runs}
    for path, results in runs.items():
        report[path] = {
            "initialize_ms": _ms([r[0] for r in results]),
            "tools_list_ms": _ms([r[1] for r in results]),
            "launcher_imported": sorted({m for r in results for m in r[2]}),
            **({"server_heavy_libraries": sorted({m for r in results for m in r[3]})} if path == "agent" else {}),
        }
    agent_init = statistics.median(r[0] for r in runs["agent"])
    in_process_init = statistics.median(r[0] for r in runs["in_process"])
    report["initialize_speedup_median"] = round(in_process_init / agent_init, 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
