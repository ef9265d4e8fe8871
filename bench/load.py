"""Load: many MCP clients writing and searching at once, and a bulk import while servers answer (issue 27).

Two phases on one fresh vault, every client a real one (the official ``mcp`` SDK ``Client``):

1. ``--stdio`` `ctxvault mcp` processes (one app token each, as host apps launch them) and one
   `ctxvault serve` with ``--http`` Streamable HTTP clients (each its own app and bearer token)
   write (`remember`) and search (`search_context` for what they just wrote) at the same time
   for ``--seconds`` (or ``--ops`` calls each). Clients connect first; the clock starts when all
   are ready.
2. `ctxvault import` of ``--import-items`` MCP-memory entities while ``--searchers`` HTTP clients
   and two stdio servers search: search latency idle (before) and during the import.

Then the vault is opened by the owner: every acknowledged write (an id answered) must be there
and found by a lexical search for its marker, the import whole, and the audit chain must verify.

    python -m bench.load --seconds 60 --stdio 8 --http 32 --import-items 20000

Figures: docs/reliability.md, "Load". Prints one JSON object (``--json``) or a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
CODE = "import sys; sys.argv[0] = 'ctxvault'; from cli.entry import main; main()"
PASSPHRASE = "load benchmark passphrase"
SCOPES = ["write:memories", "read:memories", "search:memories"]
THINK_S = 0.25  # a searcher's pause between searches during the import phase
WORDS = [
    "river",
    "lantern",
    "orchard",
    "violin",
    "harbor",
    "meadow",
    "copper",
    "saffron",
    "glacier",
    "pepper",
    "tundra",
    "velvet",
    "ember",
    "quarry",
    "walnut",
]


@dataclass
class Tally:
    """What the clients did: latencies per operation, errors, acknowledged writes (id → marker)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)  # a client's search did not find what it had just written

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for op, values in sorted(self.latencies.items()):
            ms = sorted(v * 1000 for v in values)
            q = statistics.quantiles(ms, n=20, method="inclusive") if len(ms) > 1 else [ms[0]] * 19
            out[op] = {"calls": len(ms), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(q[18], 1), "max_ms": round(ms[-1], 1)}
        return out


def env_for(home: Path, token: str | None = None) -> dict[str, str]:
    """The environment of a `ctxvault` child: this one's (KDF settings included), the vault, its passphrase."""
    env = {**os.environ, "CTXVAULT_HOME": str(home), "CTXVAULT_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(ROOT)}
    # Exact repeats merge by content hash; near-duplicate merging is off so that every write is its own item.
    env["CTXVAULT_DEDUP_THRESHOLD"] = "1.01"
    env.pop("CTXVAULT_APP_TOKEN", None)
    if token is not None:
        env["CTXVAULT_APP_TOKEN"] = token
    return env


def prepare(home: Path, apps: list[str]) -> dict[str, str]:
    """A fresh vault at ``home`` with one app per name (SCOPES granted); returns their tokens."""
    from vault import OWNER, Settings, init_vault, open_vault

    settings = Settings.from_env(home=home)
    init_vault(settings, PASSPHRASE)
    tokens = {}
    with open_vault(settings, PASSPHRASE) as svc:
        for name in apps:
            tokens[name] = svc.add_app(OWNER, name).token
            svc.grant(OWNER, name, SCOPES)
    return tokens


@contextlib.contextmanager
def serving(home: Path, readers: int | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`ctxvault serve --port 0` on the vault (with ``--readers`` when given); yields (process, base URL) once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CODE, "serve", "--port", "0", *(["--readers", str(readers)] if readers is not None else [])],
        env=env_for(home),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stderr, selectors.EVENT_READ)
        line = ""
        while "serving MCP at" not in line:
            if not selector.select(timeout=120):
                raise RuntimeError("ctxvault serve did not start within 120 s")
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError("ctxvault serve exited before listening")
        yield proc, line.split("serving MCP at ")[1].split()[0].removesuffix("/mcp")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            # A server's own complaints (tracebacks, ERROR lines) count as errors too.
            rest = proc.stderr.read()
            proc.stderr.close()
            serving.stderr = rest  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def stdio_client(home: Path, name: str, token: str) -> AsyncIterator[Any]:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client as transport

    params = StdioServerParameters(command=sys.executable, args=["-c", CODE, "mcp", "--app", name], env=env_for(home, token), cwd=str(ROOT))
    # Each server's stderr goes to a file beside the vault, read for tracebacks afterwards.
    with (home.parent / f"{name}.stderr").open("a") as log:
        async with Client(transport(params, errlog=log)) as client:
            yield client


@contextlib.asynccontextmanager
async def http_client(base: str, token: str) -> AsyncIterator[Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        yield client


async def _timed(tally: Tally, op: str, client: Any, tool: str, args: dict[str, Any]) -> Any:
    """One tool call, timed; a failure of any kind is counted and gives None."""
    start = time.perf_counter()
    try:
        result = await client.call_tool(tool, args)
    except Exception as exc:  # every failure a client sees is counted, whatever its kind
        tally.errors.append(f"{op}: {type(exc).__name__}: {exc}"[:300])
        return None
    tally.latencies[op].append(time.perf_counter() - start)
    if result.is_error:
        tally.errors.append(f"{op}: tool error: {result.content}"[:300])
        return None
    return result


async def writer(client: Any, label: str, surface: str, tally: Tally, stop: Callable[[int], bool], rng: random.Random) -> None:
    """Alternate remember and a search for what was just remembered, until ``stop(calls done)``."""
    n = 0
    while not stop(n):
        marker = f"{label}n{n}"
        text = f"{marker} " + " ".join(rng.choice(WORDS) for _ in range(8))
        result = await _timed(tally, f"{surface} remember", client, "remember", {"text": text})
        if result is not None:
            tally.acked[result.structured_content["item"]["id"]] = marker
            found = await _timed(tally, f"{surface} search", client, "search_context", {"query": marker, "k": 5})
            if found is not None and result.structured_content["item"]["id"] not in [
                h["item_id"] for h in found.structured_content["hits"]
            ]:
                tally.misses.append(f"{surface} {marker}")
        n += 1


async def searcher(client: Any, op: str, tally: Tally, markers: list[str], done: anyio.Event, rng: random.Random) -> None:
    while not done.is_set():
        marker = rng.choice(markers)
        await _timed(tally, op, client, "search_context", {"query": marker, "k": 5})
        await anyio.sleep(THINK_S)  # an app searches between turns of its conversation, not in a tight loop


def _stopper(seconds: float | None, ops: int | None) -> Callable[[int], bool]:
    deadline = time.monotonic() + seconds if seconds is not None else None
    return lambda n: (ops is not None and n >= ops) or (deadline is not None and time.monotonic() >= deadline)


async def _with_clients(
    opened: list[Callable[[], contextlib.AbstractAsyncContextManager[Any]]], run: Callable[[list[Any]], Awaitable[None]]
) -> None:
    """Connect every client (concurrently), then ``run`` them all; close them all after."""
    async with contextlib.AsyncExitStack() as stack:
        clients: list[Any] = [None] * len(opened)

        async def connect(i: int) -> None:
            clients[i] = await stack.enter_async_context(opened[i]())

        # The stack is entered from this task only: connect in order, the processes start concurrently anyway.
        for i in range(len(opened)):
            await connect(i)
        # One untimed search each: a server's first search loads the embedding model (its cold start, measured elsewhere).
        async with anyio.create_task_group() as tg:
            for client in clients:
                tg.start_soon(client.call_tool, "search_context", {"query": "warm up", "k": 1})
        await run(clients)


def mixed_phase(
    home: Path, base: str, tokens: dict[str, str], stdio: int, http: int, seconds: float | None, ops: int | None, seed: int
) -> tuple[Tally, float]:
    """Phase 1: ``stdio`` stdio servers and ``http`` HTTP clients writing and searching at once."""
    tally = Tally()
    names = list(tokens)
    opened: list[Callable[[], contextlib.AbstractAsyncContextManager[Any]]] = []
    labels: list[tuple[str, str]] = []
    for i in range(stdio):
        name = names[i]
        opened.append(lambda name=name: stdio_client(home, name, tokens[name]))
        labels.append((f"ls{i}", "stdio"))
    for i in range(http):
        name = names[stdio + i]
        opened.append(lambda name=name: http_client(base, tokens[name]))
        labels.append((f"lh{i}", "http"))
    elapsed = 0.0

    async def run(clients: list[Any]) -> None:
        nonlocal elapsed
        start = time.monotonic()
        stop = _stopper(seconds, ops)
        async with anyio.create_task_group() as tg:
            for i, client in enumerate(clients):
                label, surface = labels[i]
                tg.start_soon(writer, client, label, surface, tally, stop, random.Random(f"{seed}-{label}"))
        elapsed = time.monotonic() - start

    anyio.run(_with_clients, opened, run)
    return tally, elapsed


def write_import(path: Path, items: int, word: str) -> None:
    with path.open("w") as f:
        for i in range(items):
            entity = {
                "type": "entity",
                "name": f"{word}{i}",
                "entityType": "person",
                "observations": [f"{word}{i} likes {WORDS[i % len(WORDS)]}"],
            }
            f.write(json.dumps(entity) + "\n")


def import_phase(
    home: Path, base: str, tokens: dict[str, str], markers: list[str], searchers: int, items: int, idle_s: float, seed: int
) -> dict[str, Any]:
    """Phase 2: searches idle for ``idle_s``, then during `ctxvault import` of ``items`` entities."""
    tally = Tally()
    names = list(tokens)
    source = home.parent / "bulk.jsonl"
    write_import(source, items, "lqbulk")
    opened: list[Callable[[], contextlib.AbstractAsyncContextManager[Any]]] = [
        (lambda name=name: http_client(base, tokens[name])) for name in names[2 : 2 + searchers]
    ]
    opened += [(lambda name=name: stdio_client(home, name, tokens[name])) for name in names[:2]]
    out: dict[str, Any] = {}

    async def run(clients: list[Any]) -> None:
        rng = random.Random(seed)
        for stage in ("idle", "during import"):
            done = anyio.Event()
            async with anyio.create_task_group() as tg:
                for i, client in enumerate(clients):
                    surface = "http" if i < searchers else "stdio"
                    tg.start_soon(searcher, client, f"{surface} search {stage}", tally, markers, done, random.Random(rng.random()))
                if stage == "idle":
                    await anyio.sleep(idle_s)
                else:
                    start = time.monotonic()
                    done_import = await anyio.to_thread.run_sync(
                        lambda: subprocess.run(
                            [sys.executable, "-c", CODE, "import", str(source), "--json"],
                            env=env_for(home),
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            check=False,
                        )
                    )
                    out["import_s"] = round(time.monotonic() - start, 1)
                    out["import_exit"] = done_import.returncode
                    if done_import.returncode != 0:
                        tally.errors.append(f"import exit {done_import.returncode}: {done_import.stderr[-500:]}")
                done.set()

    anyio.run(_with_clients, opened, run)
    out["tally"] = tally
    return out


def verify(home: Path, acked: dict[str, str], import_items: int) -> dict[str, Any]:
    """The owner's view afterwards: lost acknowledged writes, the import's ends, the audit chain."""
    from schemas.items import SearchQuery
    from vault import OWNER, Settings, open_vault

    lost: list[str] = []
    unfound: list[str] = []
    with open_vault(Settings.from_env(home=home), PASSPHRASE) as svc:
        for item_id, marker in acked.items():
            try:
                item = svc.get_item(OWNER, item_id)
            except Exception:
                lost.append(item_id)
                continue
            if marker not in item.text:
                lost.append(item_id)
            hits = svc.search(OWNER, SearchQuery(text=marker, limit=5, mode="lexical")).hits
            if item_id not in [h.item_id for h in hits]:
                unfound.append(marker)
        import_ends = [
            bool(svc.search(OWNER, SearchQuery(text=f"lqbulk{i}", limit=3, mode="lexical")).hits)
            for i in ((0, import_items - 1) if import_items else ())
        ]
        audit_ok = True
        try:
            svc.verify_audit(OWNER)
        except Exception:
            audit_ok = False
    return {"lost": lost, "unfound": unfound, "import_whole": all(import_ends), "audit_ok": audit_ok}


def run(
    *,
    stdio: int,
    http: int,
    seconds: float | None,
    ops: int | None,
    import_items: int,
    searchers: int,
    idle_s: float,
    seed: int,
    workdir: Path,
    readers: int | None = None,
) -> dict[str, Any]:
    """Both phases on a fresh vault in ``workdir``; ``readers``: the server's `--readers` (None: its default)."""
    home = workdir / "vault"
    names = [f"app{i:02d}" for i in range(max(stdio + http, searchers + 2))]
    tokens = prepare(home, names)
    report: dict[str, Any] = {"stdio": stdio, "http": http, "readers": readers, "load_average_before": os.getloadavg()[0]}
    with serving(home, readers) as (_, base):
        mixed, elapsed = mixed_phase(home, base, tokens, stdio, http, seconds, ops, seed)
        report["mixed"] = {"seconds": round(elapsed, 1), "ops": mixed.summary(), "errors": mixed.errors, "search_misses": mixed.misses}
        report["load_average_after_mixed"] = os.getloadavg()[0]
        if import_items:
            markers = list(mixed.acked.values()) or ["lqnothing"]
            phase = import_phase(home, base, tokens, markers, searchers, import_items, idle_s, seed)
            tally = phase.pop("tally")
            report["import"] = {"items": import_items, **phase, "ops": tally.summary(), "errors": tally.errors}
            report["load_average_after_import"] = os.getloadavg()[0]
    logs = [getattr(serving, "stderr", "")] + [p.read_text() for p in sorted(workdir.glob("*.stderr"))]
    report["server_log_problems"] = [line for log in logs for line in log.splitlines() if "Traceback" in line or "ERROR" in line][:20]
    checked = verify(home, mixed.acked, import_items)
    report["acknowledged"] = len(mixed.acked)
    report["lost"] = checked["lost"]
    report["unfound"] = checked["unfound"]
    report["import_whole"] = checked["import_whole"]
    report["audit_ok"] = checked["audit_ok"]
    return report


def _table(report: dict[str, Any]) -> str:
    readers = "default" if report.get("readers") is None else report["readers"]
    lines = [f"{report['stdio']} stdio servers + {report['http']} HTTP clients (serve --readers {readers}), {report['mixed']['seconds']} s"]
    phases = [("mixed", report["mixed"])] + ([("import", report["import"])] if "import" in report else [])
    for title, phase in phases:
        lines.append(f"{title}: errors {len(phase['errors'])}")
        for op, s in phase["ops"].items():
            lines.append(f"  {op:<28} {s['calls']:>6} calls  p50 {s['p50_ms']:>8} ms  p95 {s['p95_ms']:>8} ms  max {s['max_ms']:>8} ms")
    if "import" in report:
        lines.append(
            f"import of {report['import']['items']} items: {report['import'].get('import_s')} s, exit {report['import'].get('import_exit')}"
        )
    lines.append(
        f"acknowledged {report['acknowledged']}, lost {len(report['lost'])}, not found {len(report['unfound'])}, "
        f"search misses {len(report['mixed']['search_misses'])}, import whole {report['import_whole']}, audit {report['audit_ok']}, "
        f"server log problems {len(report['server_log_problems'])}"
    )
    lines.append(
        f"load average: before {report['load_average_before']:.1f}, after {report.get('load_average_after_import', report['load_average_after_mixed']):.1f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stdio", type=int, default=8)
    parser.add_argument("--http", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ops", type=int, default=None, help="calls per client instead of --seconds")
    parser.add_argument("--import-items", type=int, default=20_000)
    parser.add_argument("--searchers", type=int, default=8)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--readers", type=int, default=None, help="the server's --readers (default: its own default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ctxvault-load-") as tmp:
        report = run(
            stdio=args.stdio,
            http=args.http,
            seconds=None if args.ops else args.seconds,
            ops=args.ops,
            import_items=args.import_items,
            searchers=args.searchers,
            idle_s=args.idle_seconds,
            seed=args.seed,
            workdir=Path(tmp),
            readers=args.readers,
        )
    print(json.dumps(report, indent=1) if args.json else _table(report))


if __name__ == "__main__":
    main()
