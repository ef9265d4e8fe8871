"""The unlock session: an agent holding the data key in memory behind a 0600 Unix socket.

`ctxvault unlock --timeout 8h` unwraps the key once and hands it to an agent process;
`ctxvault mcp`, launched by a host app with no passphrase in its config, asks the agent
for the key. Only the same OS user can reach the socket: its directory is 0700 and
owned by the user, the socket is 0600, and the agent checks the peer's uid
(SO_PEERCRED) on every connection. The key never touches disk.

Wire format: one JSON line in, one JSON line out: ``{"op": "key" | "status" | "lock"}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vault.crypto import DataKey
from vault.errors import InvalidInput
from vault.settings import Settings

MAX_LINE = 4096


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """A running agent: when it locks by itself."""

    socket: Path
    seconds_left: int


def runtime_dir() -> Path:
    """The per-user directory holding agent sockets (CTXVAULT_RUNTIME_DIR, XDG_RUNTIME_DIR, or /tmp)."""
    if os.environ.get("CTXVAULT_RUNTIME_DIR"):
        return Path(os.environ["CTXVAULT_RUNTIME_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "ctxvault"
    return Path(f"/tmp/ctxvault-{os.getuid()}")


def socket_path(settings: Settings) -> Path:
    """The agent socket for one vault: short, because Unix socket paths are limited to ~108 bytes."""
    digest = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:16]
    return runtime_dir() / f"agent-{digest}.sock"


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


def _reply(conn: socket.socket, payload: dict[str, object]) -> None:
    conn.sendall(json.dumps(payload).encode() + b"\n")


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_LINE:
        chunk = conn.recv(MAX_LINE)
        if not chunk:
            break
        data += chunk
    return data


def serve(settings: Settings, key: DataKey, timeout_s: float, ready: Callable[[], None] | None = None) -> None:
    """Run the agent until ``timeout_s`` passes or someone sends ``lock``; then forget the key."""
    path = socket_path(settings)
    _private_dir(path.parent)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others could connect
    try:
        server.bind(str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    server.listen(8)
    deadline = time.monotonic() + timeout_s
    if ready is not None:
        ready()
    try:
        while (left := deadline - time.monotonic()) > 0:
            server.settimeout(left)
            try:
                conn, _ = server.accept()
            except TimeoutError:
                break
            with conn:
                conn.settimeout(5)
                if _peer_uid(conn) not in (None, os.getuid()):
                    continue
                try:
                    request = json.loads(_read_line(conn) or b"{}")
                except (ValueError, OSError):
                    continue
                op = request.get("op") if isinstance(request, dict) else None
                if op == "key":
                    _reply(conn, {"key": key.hex(), "home": str(settings.home)})
                elif op == "status":
                    _reply(conn, {"seconds_left": int(deadline - time.monotonic())})
                elif op == "lock":
                    _reply(conn, {"locked": True})
                    break
                else:
                    _reply(conn, {"error": "unknown op"})
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _ask(settings: Settings, op: str) -> dict[str, object] | None:
    path = socket_path(settings)
    if not path.exists():
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(5)
    try:
        client.connect(str(path))
        client.sendall(json.dumps({"op": op}).encode() + b"\n")
        answer = json.loads(_read_line(client) or b"{}")
    except (OSError, ValueError):
        # A stale socket left by a killed agent: as good as no session.
        return None
    finally:
        client.close()
    return answer if isinstance(answer, dict) else None


def fetch_key(settings: Settings) -> DataKey | None:
    """The data key from a running unlock session for this vault, or None."""
    answer = _ask(settings, "key")
    if not answer or not isinstance(answer.get("key"), str):
        return None
    return DataKey(bytes.fromhex(str(answer["key"])))


def status(settings: Settings) -> SessionStatus | None:
    """The running unlock session for this vault, or None."""
    answer = _ask(settings, "status")
    if not answer or "seconds_left" not in answer:
        return None
    return SessionStatus(socket=socket_path(settings), seconds_left=int(str(answer["seconds_left"])))


def lock(settings: Settings) -> bool:
    """End the unlock session; True if one was running."""
    return bool(_ask(settings, "lock"))


def agent_main() -> None:
    """Entry point of the agent: read the one-line JSON job from stdin, detach, serve.

    The process forks: the child serves in its own session, the parent reports
    ``ready PID`` on stdout once the socket listens and exits, so `ctxvault unlock`
    waits for a process that ends instead of leaving one running under it.
    """
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
        serve(settings, key, float(job["timeout_s"]), ready=ready)
    finally:
        os._exit(0)


if __name__ == "__main__":
    agent_main()
