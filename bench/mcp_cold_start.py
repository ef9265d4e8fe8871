"""Cold start of `ctxvault mcp`: spawn → first answer (initialize), and → tools/list.

The key comes from an unlock session (a thread of this process serving the agent socket),
as it does when a host app launches the server; the app identity from CTXVAULT_APP_TOKEN.
Each run also reports whether any heavy module (torch, sentence_transformers, faiss,
onnxruntime) was ever imported by the server process.

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
HEAVY = ("torch", "sentence_transformers", "faiss", "onnxruntime")
WRAPPER = (
    "import atexit, json, sys\n"
    "out = sys.argv.pop(1)\n"
    f"atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules))))\n"
    "from cli.app import main\n"
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


def one_run(env: dict[str, str], report: Path) -> tuple[float, float, list[str]]:
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
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)
    return t_init, t_list, json.loads(report.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cvb-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "CTXVAULT_HOME": str(home), "CTXVAULT_RUNTIME_DIR": str(Path(tmp) / "run"), "HF_HUB_OFFLINE": "1"}
        env.pop("CTXVAULT_PASSPHRASE", None)
        os.environ.update({k: v for k, v in env.items() if k.startswith("CTXVAULT_")})
        settings = Settings.from_env()
        init_vault(settings, PASSPHRASE)
        with open_vault(settings, PASSPHRASE) as svc:
            env["CTXVAULT_APP_TOKEN"] = svc.add_app(OWNER, "bench").token
        key = unlock_key(settings, PASSPHRASE)
        agent = threading.Thread(target=session.serve, args=(settings, key, 3600.0), daemon=True)
        agent.start()
        while not session.socket_path(settings).exists():
            time.sleep(0.01)
        runs = [one_run(env, Path(tmp) / f"heavy-{i}.json") for i in range(args.runs)]
        session.lock(settings)
        agent.join(timeout=10)
    inits = sorted(r[0] * 1000 for r in runs)
    lists = sorted(r[1] * 1000 for r in runs)
    print(
        json.dumps(
            {
                "bench": "mcp_cold_start",
                "runs": args.runs,
                "initialize_ms": {"median": round(statistics.median(inits), 1), "min": round(inits[0], 1), "max": round(inits[-1], 1)},
                "tools_list_ms": {"median": round(statistics.median(lists), 1), "min": round(lists[0], 1), "max": round(lists[-1], 1)},
                "heavy_modules_imported": sorted({m for r in runs for m in r[2]}),
            }
        )
    )


if __name__ == "__main__":
    main()
