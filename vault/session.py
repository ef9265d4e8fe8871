"""The unlock session: an agent holding the data key in memory behind a 0600 Unix socket.

`ctxvault unlock --timeout 8h` unwraps the key once and hands it to an agent process;
`ctxvault mcp`, launched by a host app with no passphrase in its config, asks the agent
for the key. Only the same OS user can reach the socket: its directory is 0700 and
owned by the user, the socket is 0600, and the agent checks the peer's uid
(SO_PEERCRED) on every connection. The key never touches disk.

The agent can also start programs for a launcher (a zygote): an adapter passes
``programs`` (op name → function) and warms their imports once; a launcher then sends
its stdin, stdout and stderr (SCM_RIGHTS) with its argv, environment and working
directory, and a forked child runs the program on them. The child inherits the
warm interpreter, so it answers without paying the imports again. Children are
reaped as they end and killed when the session locks or times out.

The clients' half (finding the socket, asking for the key, handing a command over) is
vault/agent_client.py, light enough for every launcher; its names are re-exported here.

The agent can also run one background worker (``background``): the adapter gives it the
backlog embedder (vault/backlog.py). ``{"op": "embed"}`` starts it unless it runs (then it
runs once more when it ends); it runs in a forked child at a lower CPU priority, and
pauses between batches while a child of a ``pausing`` program (a CLI command) is alive,
so a command's request always comes first. A long-lived child (`ctxvault mcp`) does not
pause it: the lower priority is what keeps its queries first.

The adapter may also give a ``refresh`` hook, run in the agent itself after it reports ready,
after children end and before each fork: the CLI's keeps the sealed vector index loaded and in
step with its files (vault/sealed_index.py ``warm``), so every child inherits it copy-on-write.

Wire format: one JSON line in, one JSON line out: ``{"op": "key" | "status" | "lock" | "embed"}``.
A program op ``{"op": NAME, "argv": [...], "env": {...}, "cwd": "...", "umask": N}``
carries three descriptors; the child answers ``{"started": true}``, runs only after the
launcher's ``go`` line (so a launcher that gave up can safely run the command itself),
and reports ``{"exit": CODE}`` at the end. A child whose launcher hangs up exits at once.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import mmap
import os
import selectors
import signal
import socket
import stat
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vault.agent_client import (
    SessionStatus,
    embed_backlog,
    fetch_key,
    lock,
    read_line,
    run_in_agent,
    runtime_dir,
    socket_path,
    status,
)
from vault.errors import InvalidInput

if TYPE_CHECKING:
    from vault.crypto import DataKey
    from vault.settings import Settings

MAX_REQUEST = 1 << 20  # a launcher's whole environment rides in its request
GO_TIMEOUT_S = 30.0
END_GRACE_S = 3.0
POLL_S = 1.0  # reaping without pidfds (macOS): a finished child waits at most this long
REFRESH_S = 2.0  # an idle agent with a refresh hook runs it this often
BACKGROUND_NICE = 10  # the background worker's priority: a command's process gets the CPU first

Program = Callable[[Sequence[str]], int]
"""What a spawned child runs, with the launcher's argv (already in ``sys.argv``); returns the exit code."""

Background = Callable[["Settings", "DataKey", Callable[[], bool]], object]
"""The agent's background worker: the vault's settings, its key, and ``paused()`` (a request is being served)."""

Refresh = Callable[["Settings", "DataKey"], object]
"""Run in the agent before it forks: brings what children inherit in step with the vault (single-threaded, quick)."""


@dataclass(frozen=True, slots=True)
class _Job:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    umask: int


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    # A directory someone else made (e.g. a squatted /tmp/ctxvault-UID) could expose the socket.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise InvalidInput(f"{path} must be a directory owned by you with mode 0700")


def _peer_uid(conn: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def same_user(peer_uid: int | None) -> bool:
    """Whether a peer may talk to the agent: only its own OS user (None: no SO_PEERCRED here, e.g. macOS,
    where the 0700 directory and the 0600 socket are the whole guard)."""
    return peer_uid is None or peer_uid == os.getuid()


def _reply(conn: socket.socket, payload: dict[str, object]) -> None:
    conn.sendall(json.dumps(payload).encode() + b"\n")


def _receive(conn: socket.socket) -> tuple[bytes, list[int]]:
    """One request line and any descriptors sent with it (plain recv would silently drop them)."""
    data, fds = b"", []
    try:
        while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
            chunk, got, flags, _ = socket.recv_fds(conn, 65536, 3)
            fds += got
            if flags & socket.MSG_CTRUNC:
                raise OSError("more descriptors than stdin, stdout and stderr")
            if not chunk:
                break
            data += chunk
    except OSError:
        _close_all(fds)
        raise
    return data, fds


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _job(request: Mapping[str, object], fds: Sequence[int]) -> _Job:
    argv, env, cwd, umask = request.get("argv"), request.get("env"), request.get("cwd"), request.get("umask")
    if len(fds) != 3:
        raise ValueError("a program op carries stdin, stdout and stderr")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ValueError("argv must be a non-empty list of strings")
    if not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
        raise ValueError("env must map strings to strings")
    if not isinstance(cwd, str) or not isinstance(umask, int):
        raise ValueError("cwd and umask are required")
    return _Job(argv=list(argv), env=dict(env), cwd=cwd, umask=umask & 0o777)


class _Children:
    """The agent's spawned children: reaped as they end (no zombies), ended with the session.

    ``busy`` is shared with every child (an anonymous shared mapping): the number of live children
    of a pausing program, which the background worker reads between batches.
    """

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self._selector = selector
        self._pidfds: dict[int, int | None] = {}
        self._pausing: set[int] = set()
        self.busy = mmap.mmap(-1, 8)
        self.ended: list[int] = []  # reaped since the agent last looked

    def paused(self) -> bool:
        """Whether a child of a pausing program is alive (read in any process forked from the agent)."""
        return bool(struct.unpack("q", self.busy[:8])[0])

    def _count(self) -> None:
        self.busy[:8] = struct.pack("q", len(self._pausing))

    @property
    def poll_s(self) -> float | None:
        """How often to look for finished children when no pidfd will wake the loop."""
        return POLL_S if any(fd is None for fd in self._pidfds.values()) else None

    def add(self, pid: int, *, pausing: bool = False) -> None:
        if pausing:
            self._pausing.add(pid)
            self._count()
        pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # pidfds: Linux 5.3+
            pidfd = os.pidfd_open(pid)
            self._selector.register(pidfd, selectors.EVENT_READ, pid)
        self._pidfds[pid] = pidfd

    def reap(self) -> None:
        for pid in list(self._pidfds):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pidfd = self._pidfds.pop(pid)
                if pidfd is not None:
                    self._selector.unregister(pidfd)
                    os.close(pidfd)
                self.ended.append(pid)
                if pid in self._pausing:
                    self._pausing.discard(pid)
                    self._count()

    def end(self) -> None:
        """SIGTERM every child, give them a moment, then SIGKILL; returns once all are reaped."""
        for pid in self._pidfds:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + END_GRACE_S
        while self._pidfds and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.01)
        for pid in list(self._pidfds):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.reap()

    def drop_in_child(self) -> None:
        # Only close: unregistering would edit the epoll set the parent shares with us.
        _close_all([fd for fd in self._pidfds.values() if fd is not None])
        self._pidfds.clear()


class _Agent:
    def __init__(
        self,
        settings: Settings,
        key: DataKey,
        deadline: float,
        programs: Mapping[str, Program],
        background: Background | None = None,
        pausing: Collection[str] = (),
        refresh: Refresh | None = None,
    ) -> None:
        self.settings, self.key, self.deadline, self.programs = settings, key, deadline, programs
        self.background, self.pausing, self._refresh = background, frozenset(pausing), refresh
        self.worker: int | None = None  # the background worker's pid while it runs
        self.again = False  # asked to run while it ran: run once more when it ends
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.selector = selectors.DefaultSelector()
        self.children = _Children(self.selector)

    def refresh(self) -> None:
        if self._refresh is not None:
            with contextlib.suppress(Exception):  # a child can always load what it needs itself
                self._refresh(self.settings, self.key)

    def run(self) -> None:
        self.selector.register(self.server, selectors.EVENT_READ, None)
        self.refresh()
        while (left := self.deadline - time.monotonic()) > 0:
            poll = self.children.poll_s
            wake = REFRESH_S if self._refresh is not None else left
            events = self.selector.select(min(left, wake) if poll is None else min(left, poll, wake))
            self.children.reap()
            if self.children.ended or not events:
                # A child may have written, or another process (a purge drops the files: the copy goes too):
                # catch up now, not in the next command's time. Unchanged files cost a stat.
                self.refresh()
            self.worker_ended()
            if not any(k.fileobj is self.server for k, _ in events):
                continue
            try:
                conn, _ = self.server.accept()
            except OSError:  # the client gave up between select and accept
                continue
            if not self.handle(conn):
                break

    def handle(self, conn: socket.socket) -> bool:
        """Answer one connection; False once someone asked to lock."""
        with conn:
            conn.settimeout(5)
            if not same_user(_peer_uid(conn)):
                return True
            try:
                line, fds = _receive(conn)
            except OSError:
                return True
            try:
                request = json.loads(line or b"{}")
                op = request.get("op") if isinstance(request, dict) else None
                if op == "key":
                    _reply(conn, {"key": self.key.hex(), "home": str(self.settings.home)})
                elif op == "status":
                    _reply(conn, {"seconds_left": int(self.deadline - time.monotonic())})
                elif op == "lock":
                    self.children.end()  # servers that got the key through this session stop with it
                    _reply(conn, {"locked": True})
                    return False
                elif op == "embed" and self.background is not None:
                    self.start_worker()
                    _reply(conn, {"embedding": True})
                elif isinstance(op, str) and op in self.programs:
                    self.spawn(conn, _job(request, fds), fds, self.programs[op], pausing=op in self.pausing)
                else:
                    _reply(conn, {"error": "unknown op"})
            except (ValueError, OSError) as exc:
                with contextlib.suppress(OSError):
                    _reply(conn, {"error": str(exc)})
            finally:
                _close_all(fds)
        return True

    def start_worker(self) -> None:
        """Run the background worker in a child, unless it runs already (then once more after it ends)."""
        if self.background is None:
            return
        if self.worker is not None:
            self.again = True
            return
        background, paused = self.background, self.children.paused
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.worker, self.again = pid, False
            self.children.add(pid)
            return
        code = 1
        try:
            self.selector.close()
            self.server.close()
            self.children.drop_in_child()
            _die_with(parent)
            with contextlib.suppress(OSError):
                os.nice(BACKGROUND_NICE)  # the whole child: its encoder's threads too
            background(self.settings, self.key, paused)
            code = 0
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(code)

    def worker_ended(self) -> None:
        ended, self.children.ended = self.children.ended, []
        if self.worker is not None and self.worker in ended:
            self.worker = None
            if self.again:
                self.start_worker()

    def spawn(self, conn: socket.socket, job: _Job, fds: Sequence[int], program: Program, *, pausing: bool = False) -> None:
        self.refresh()
        # Nothing buffered in the agent may leak onto the launcher's stdout through the child.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children.add(pid, pausing=pausing)
            return
        code = 1
        try:
            self.selector.close()
            self.server.close()
            self.children.drop_in_child()
            _die_with(parent)
            code = _child(conn, job, fds, program)
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(code)  # never return into the agent's loop

    def close(self) -> None:
        self.children.end()
        self.selector.close()
        self.server.close()


def _die_with(parent: int) -> None:
    """Ask Linux to SIGTERM this child if the agent dies, even by SIGKILL: locking must stop it."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _child(conn: socket.socket, job: _Job, fds: Sequence[int], program: Program) -> int:
    """Become the launcher's process (stdio, env, cwd, umask, argv) and run the program on it."""
    conn.settimeout(GO_TIMEOUT_S)
    _reply(conn, {"started": True})
    if read_line(conn).strip() != b"go":
        return 0  # the launcher gave up waiting and runs the command itself
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
    _close_all([fd for fd in fds if fd > 2])
    os.chdir(job.cwd)
    os.environ.clear()
    os.environ.update(job.env)
    os.umask(job.umask)
    sys.argv = list(job.argv)
    _fresh_std_streams()
    conn.settimeout(None)

    def watch_launcher() -> None:
        # The launcher sends nothing after `go`: any return means it exited or was killed.
        with contextlib.suppress(OSError):
            conn.recv(1)
        os._exit(1)

    threading.Thread(target=watch_launcher, name="launcher-watch", daemon=True).start()
    try:
        code = program(job.argv)
    except BaseException:
        traceback.print_exc()  # as an uncaught exception prints in the launcher's own process
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _reply(conn, {"exit": code})
    return code


def _fresh_std_streams() -> None:
    """Rebuild sys.std* on fds 0-2 as the interpreter does at start: the agent's point at /dev/null."""
    encoding, errors = sys.stdout.encoding, sys.stdout.errors or "strict"

    def text(fd: int, mode: str, errors: str, line_buffering: bool) -> io.TextIOWrapper:
        return io.TextIOWrapper(open(fd, mode, closefd=False), encoding=encoding, errors=errors, line_buffering=line_buffering)

    sys.stdin = text(0, "rb", errors, line_buffering=False)
    sys.stdout = text(1, "wb", errors, line_buffering=os.isatty(1))
    sys.stderr = text(2, "wb", "backslashreplace", line_buffering=True)


def serve(
    settings: Settings,
    key: DataKey,
    timeout_s: float,
    ready: Callable[[], None] | None = None,
    programs: Mapping[str, Program] | None = None,
    background: Background | None = None,
    pausing: Collection[str] = (),
    refresh: Refresh | None = None,
) -> None:
    """Run the agent until ``timeout_s`` passes or someone sends ``lock``; then forget the key and end its children.

    ``programs`` and ``background`` may only be given in a single-threaded process: each runs in a forked
    child. The background worker pauses while a child of a ``pausing`` program is alive.
    """
    path = socket_path(settings)
    _private_dir(path.parent)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    agent = _Agent(settings, key, time.monotonic() + timeout_s, programs or {}, background, pausing, refresh)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others could connect
    try:
        agent.server.bind(str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    agent.server.listen(8)
    if ready is not None:
        ready()
    try:
        agent.run()
    finally:
        agent.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def agent_main(
    programs: Mapping[str, Program] | None = None,
    preload: Callable[[], None] | None = None,
    background: Background | None = None,
    pausing: Collection[str] = (),
    refresh: Refresh | None = None,
) -> None:
    """Entry point of the agent: read the one-line JSON job from stdin, detach, warm up, serve.

    The process forks: the child serves in its own session, the parent reports
    ``ready PID`` on stdout once the socket listens and exits, so `ctxvault unlock`
    waits for a process that ends instead of leaving one running under it.
    ``preload`` runs after detaching and before ``ready``, while the agent is
    single-threaded: every child forked later inherits what it imported.
    """
    from vault.crypto import DataKey
    from vault.settings import Settings

    job = json.loads(sys.stdin.readline())
    sys.stdin.close()
    settings = Settings.from_env(home=Path(job["home"]))
    key = DataKey(bytes.fromhex(job["key"]))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        with os.fdopen(read_end) as ready_pipe:
            ok = ready_pipe.readline().strip() == "ready"
        sys.stdout.write(f"ready {pid}\n" if ok else "failed\n")
        sys.stdout.flush()
        os._exit(0 if ok else 1)
    os.close(read_end)
    os.setsid()
    # Let go of the launcher's pipes and terminal: the caller waits for EOF on them.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)

    def ready() -> None:
        os.write(write_end, b"ready\n")
        os.close(write_end)

    try:
        if preload is not None:
            with contextlib.suppress(Exception):  # a cold child still works: it imports what it needs
                preload()
            # Children's garbage collections then skip the inherited objects instead of touching
            # (and so copying) every page of the warm heap.
            gc.freeze()
        serve(
            settings, key, float(job["timeout_s"]), ready=ready, programs=programs, background=background, pausing=pausing, refresh=refresh
        )
    finally:
        os._exit(0)


__all__ = [
    "Background", "Program", "Refresh", "SessionStatus", "agent_main", "embed_backlog", "fetch_key", "lock", "run_in_agent", "runtime_dir",
    "same_user", "serve",
    "socket_path", "status",
]  # fmt: skip


if __name__ == "__main__":
    agent_main()
