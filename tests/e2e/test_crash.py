"""SIGKILL every kind of writer at random moments; after each kill nothing acknowledged is lost (issue 27).

Writers, each a real `ctxvault` process: `add`, `remember` over a long-lived `ctxvault mcp`
stdio server, `import`, `doc add`, `reindex`, `passwd`/`recover`, `purge`. After each kill:

- the vault opens (with the passphrase last acknowledged, or the one before: never neither);
- `doctor` is clean, or every problem is in a derived part and `doctor --repair` makes it clean;
- every acknowledged write is present and found by search (an import: all its items or none);
- the audit chain verifies.

Kill moments come from ``CRASH_SEED`` (default 27), so a failure names what to rerun. The
default run kills each writer a few times; ``-m slow`` runs ``CRASH_KILLS`` (default 30) per
writer. Figures: docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from schemas.items import MemoryIn, SearchQuery
from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, VaultService, doctor, init_vault, open_vault
from vault.errors import WrongPassphrase
from vault.unlock import unlock_key

ROOT = Path(__file__).resolve().parents[2]
CODE = "import sys; sys.argv[0] = 'ctxvault'; from cli.entry import main; main()"
SEED = int(os.environ.get("CRASH_SEED", "27"))
IMPORT_ITEMS = int(os.environ.get("CRASH_IMPORT_ITEMS", "150"))  # the repair after a kill embeds what the kill left


@dataclass
class Tally:
    """What a run did: kills, writes acknowledged before them, and what was found after."""

    kills: int = 0
    acknowledged: int = 0
    lost: int = 0
    repaired: int = 0
    mid_write: int = 0  # kills that landed before the writer acknowledged
    by_writer: dict[str, int] = field(default_factory=dict)
    checking_s: float = 0.0
    repaired_parts: dict[str, int] = field(default_factory=dict)


@dataclass
class Crashed:
    """One vault under test and everything acknowledged on it."""

    settings: Settings
    tmp: Path
    rng: random.Random
    tally: Tally
    passphrase: str = PASSPHRASE
    recovery: str = ""
    acked: dict[str, str] = field(default_factory=dict)  # item id → a word only it holds
    searched: set[str] = field(default_factory=set)
    counter: int = 0

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "CTXVAULT_HOME": str(self.settings.home),
            "CTXVAULT_PASSPHRASE": self.passphrase,
            "PYTHONPATH": str(ROOT),
            **extra,
        }

    def word(self) -> str:
        self.counter += 1
        return f"zqx{SEED}w{self.counter}"

    def run_killed(self, writer: str, args: list[str], low: float, high: float, **extra: str) -> tuple[bool, str]:
        """Start ``ctxvault ARGS``, SIGKILL it after a random delay; (finished with 0 before the kill, stdout)."""
        proc = subprocess.Popen(
            [sys.executable, "-c", CODE, *args], env=self.env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            proc.wait(timeout=self.rng.uniform(low, high))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        self.count_kill(writer, proc.returncode == 0)
        assert proc.returncode in (0, -signal.SIGKILL), (args, out, err)
        return proc.returncode == 0, out

    def count_kill(self, writer: str, finished: bool) -> None:
        self.tally.kills += 1
        self.tally.by_writer[writer] = self.tally.by_writer.get(writer, 0) + 1
        if not finished:
            self.tally.mid_write += 1

    def open(self) -> VaultService:
        return open_vault(self.settings, self.passphrase)

    def check(self) -> None:
        """After a kill: the vault opens, doctor is clean (or repairs derived parts), nothing acknowledged is lost."""
        started = time.monotonic()
        with self.open() as svc:
            report = svc.doctor(OWNER)
            if not report.healthy:
                assert report.repairable, doctor.describe(report)
                # Units and the keyword index are written in the rows' own transaction: only what is
                # embedded after the commit (vectors, the sealed cache) may be left behind by a kill.
                broken = {part.part for part in report.checks if not part.ok}
                assert broken <= {"vectors", "sealed index"}, doctor.describe(report)
                for part in broken:
                    self.tally.repaired_parts[part] = self.tally.repaired_parts.get(part, 0) + 1
                report = svc.doctor(OWNER, repair=True)
                self.tally.repaired += 1
            assert report.healthy, doctor.describe(report)
            # Every acknowledged write is present and live; the new ones, and a sample of the older
            # ones, are found by search (searching all of them after every kill grows quadratically).
            present = {
                r[0]
                for r in svc.store.query(
                    "SELECT id FROM items WHERE deleted_at IS NULL AND id IN (SELECT value FROM json_each(?))",
                    [json.dumps(list(self.acked))],
                )
            }
            self.tally.lost += len(set(self.acked) - present)
            older = [i for i in self.acked if i in self.searched]
            for item_id in [i for i in self.acked if i not in self.searched] + self.rng.sample(older, min(20, len(older))):
                hits = svc.search(OWNER, SearchQuery(text=self.acked[item_id], limit=5, mode="lexical")).hits
                if item_id not in [h.item_id for h in hits]:
                    self.tally.lost += 1
                self.searched.add(item_id)
            assert self.tally.lost == 0, "an acknowledged write is missing"
            svc.verify_audit(OWNER)
        self.tally.checking_s += time.monotonic() - started


@pytest.fixture
def crashed(settings: Settings, tmp_path: Path) -> Iterator[Crashed]:
    recovery = init_vault(settings, PASSPHRASE)[1]
    yield Crashed(settings=settings, tmp=tmp_path, rng=random.Random(SEED), tally=Tally(), recovery=recovery)


def kill_add(c: Crashed) -> None:
    word = c.word()
    done, out = c.run_killed("add", ["add", f"I noted {word} today", "--json"], 0.5, 6.0)
    if done:
        c.acked[json.loads(out)["item"]["id"]] = word
        c.tally.acknowledged += 1


def kill_mcp(c: Crashed) -> None:
    """A long-lived stdio server writing one memory after another, killed between or during them."""
    with c.open() as svc:
        name = f"app{c.counter}"
        token = svc.add_app(OWNER, name).token
        svc.grant(OWNER, name, ["write:memories", "read:memories"])
    proc = subprocess.Popen(
        [sys.executable, "-c", CODE, "mcp", "--app", name], env=c.env(CTXVAULT_APP_TOKEN=token, CTXVAULT_DEDUP_THRESHOLD="1.01"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict[str, object]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()

    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "crash", "version": "1"}}
    send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello})
    assert "result" in json.loads(proc.stdout.readline())
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    kill_after = c.rng.randint(1, 12)
    sent: dict[int, str] = {}
    for n in range(1, kill_after + 1):
        sent[n] = c.word()
        send(
            {
                "jsonrpc": "2.0",
                "id": n,
                "method": "tools/call",
                "params": {"name": "remember", "arguments": {"text": f"the app noted {sent[n]}"}},
            }
        )
        if n < kill_after:
            reply = json.loads(proc.stdout.readline())
            item = reply["result"]["structuredContent"]["item"]
            c.acked[item["id"]] = sent[int(reply["id"])]
            c.tally.acknowledged += 1
    time.sleep(c.rng.uniform(0, 0.05))  # the last call in flight
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    c.count_kill("mcp remember", False)


def kill_import(c: Crashed) -> None:
    word = c.word()
    source = c.tmp / f"{word}.jsonl"
    with source.open("w") as f:
        for i in range(IMPORT_ITEMS):
            entity = {"type": "entity", "name": f"{word}e{i}", "entityType": "person", "observations": [f"{word}e{i} rows"]}
            f.write(json.dumps(entity) + "\n")
    done, _ = c.run_killed("import", ["import", str(source), "--json"], 1.0, 8.0)
    with c.open() as svc:
        ends = [svc.search(OWNER, SearchQuery(text=f"{word}e{i}", limit=5, mode="lexical")).hits for i in (0, IMPORT_ITEMS - 1)]
    assert not done or ends[0], "an acknowledged import is missing"
    assert bool(ends[0]) == bool(ends[1]), "an import committed in part (it is one transaction)"
    if ends[0]:
        c.acked[ends[0][0].item_id] = f"{word}e0"
        c.acked[ends[1][0].item_id] = f"{word}e{IMPORT_ITEMS - 1}"
        c.tally.acknowledged += 1 if done else 0


def kill_doc_add(c: Crashed) -> None:
    word = c.word()
    path = c.tmp / f"{word}.md"
    path.write_text(f"# {word}\n\n" + "".join(f"Paragraph {i} of {word} about trains and lakes. " * 6 + "\n\n" for i in range(60)))
    done, out = c.run_killed("doc add", ["doc", "add", str(path), "--json"], 0.5, 8.0)
    if done:
        c.acked[json.loads(out)["item_id"]] = word
        c.tally.acknowledged += 1


def kill_reindex(c: Crashed) -> None:
    with c.open() as svc:
        # Work for reindex (derived rows only), bounded so a long run's rounds stay alike.
        svc.store.execute("DELETE FROM vectors WHERE uid IN (SELECT uid FROM units ORDER BY random() LIMIT 400)")
    c.run_killed("reindex", ["reindex", "--json"], 1.0, 8.0)


def _opens(c: Crashed, passphrase: str) -> bool:
    try:
        unlock_key(c.settings, passphrase=passphrase)
    except WrongPassphrase:
        return False
    return True


def kill_passwd(c: Crashed) -> None:
    new = f"passphrase number {c.word()}"
    (c.tmp / "new").write_text(new + "\n")
    done, _ = c.run_killed("passwd", ["passwd", "--new-passphrase-file", str(c.tmp / "new")], 0.3, 4.0)
    old_opens, new_opens = _opens(c, c.passphrase), _opens(c, new)
    assert old_opens != new_opens, "the key file must open with exactly one of the old and the new passphrase"
    assert not done or new_opens, "an acknowledged passphrase change was lost"
    if new_opens:
        c.passphrase = new
        c.tally.acknowledged += 1 if done else 0


def kill_recover(c: Crashed) -> None:
    new = f"recovered passphrase {c.word()}"
    (c.tmp / "new").write_text(new + "\n")
    (c.tmp / "rk").write_text(c.recovery + "\n")
    args = ["recover", "--recovery-key-file", str(c.tmp / "rk"), "--new-passphrase-file", str(c.tmp / "new")]
    done, _ = c.run_killed("recover", args, 0.3, 4.0)
    old_opens, new_opens = _opens(c, c.passphrase), _opens(c, new)
    assert old_opens != new_opens, "the key file must open with exactly one of the old and the new passphrase"
    assert not done or new_opens
    if new_opens:
        c.passphrase = new


def kill_purge(c: Crashed) -> None:
    with c.open() as svc:
        doomed = [svc.remember(OWNER, MemoryIn(text=f"to be purged {c.word()}")).item.id for _ in range(30)]
        for item_id in doomed:
            svc.forget(OWNER, item_id)
    c.run_killed("purge", ["purge", "--yes"], 0.5, 6.0)
    with c.open() as svc:
        live = {r[0] for r in svc.store.query("SELECT id FROM items WHERE deleted_at IS NULL")}
    assert not live & set(doomed), "a forgotten item came back"


WRITERS = [kill_add, kill_mcp, kill_import, kill_doc_add, kill_reindex, kill_passwd, kill_recover, kill_purge]
DEFAULT_KILLS = {kill_add: 2, kill_mcp: 1, kill_import: 1, kill_doc_add: 2, kill_reindex: 1, kill_passwd: 2, kill_recover: 1, kill_purge: 1}


def test_sigkilled_writers_lose_nothing_acknowledged(crashed: Crashed) -> None:
    for writer in WRITERS:
        for _ in range(DEFAULT_KILLS[writer]):
            started = time.monotonic()
            writer(crashed)
            crashed.check()
            print(f"{writer.__name__}: {time.monotonic() - started:.1f} s")
    t = crashed.tally
    print(f"\n{t.kills} kills ({t.mid_write} mid-write), {t.acknowledged} acknowledged, {t.lost} lost, repaired {t.repaired_parts}")
    assert t.kills >= len(WRITERS)
    assert t.lost == 0


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_sigkilled_writers_lose_nothing_acknowledged_long_run(crashed: Crashed) -> None:
    per_writer = int(os.environ.get("CRASH_KILLS", "30"))
    started = time.monotonic()
    for n in range(per_writer):
        for writer in WRITERS:
            writer(crashed)
            crashed.check()
        t = crashed.tally
        print(
            f"round {n + 1}: {t.kills} kills, {t.acknowledged} acknowledged, {t.lost} lost, {time.monotonic() - started:.0f} s", flush=True
        )
    t = crashed.tally
    print(
        f"\nCRASH_SEED={SEED}: {t.kills} kills ({t.mid_write} before the writer acknowledged), {t.acknowledged} writes acknowledged, "
        f"{t.lost} lost, {t.repaired} repairs of derived parts {t.repaired_parts}, {time.monotonic() - started:.0f} s ({t.checking_s:.0f} s checking); "
        f"by writer {t.by_writer}"
    )
    assert t.lost == 0
