"""The unlock agent's clients: find a vault's agent, ask it for the key, its status or to lock, hand a command over.

The agent itself is in vault/session.py. This half is what every `ctxvault` launcher
imports before it knows whether a session runs (cli/entry.py), so it holds only the
standard library: no settings object (its KDF parameters load cryptography), no
dataclasses, threads or selectors (~35 ms of imports on this machine, measured with
``python -X importtime -c "import cli.entry"``). Functions take the vault's home
directory, or anything with a ``home`` (a Settings).

Wire format (the agent's docstring has the whole of it): one JSON line in, one out.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from vault.errors import VaultLocked

if TYPE_CHECKING:
    from vault.crypto import DataKey

MAX_LINE = 4096
HANDOVER_TIMEOUT_S = 10.0  # the agent answers in milliseconds unless another client holds it


class Located(Protocol):
    """Where a vault is: a Settings, or the launcher's home alone."""

    @property
    def home(self) -> Path: ...


class SessionStatus(NamedTuple):  # a NamedTuple: dataclasses would cost the launcher ~7 ms of imports
    """A running agent: when it locks by itself."""

    socket: Path
    seconds_left: int


def vault_home(env: Mapping[str, str], home: Path | None = None) -> Path:
    """The vault directory: ``home`` (--vault), else CTXVAULT_HOME, else the platform data dir."""
    chosen = home or (Path(env["CTXVAULT_HOME"]) if env.get("CTXVAULT_HOME") else None)
    if chosen is None:
        import platformdirs  # here, not at the top: most launchers name their vault and never need it

        chosen = Path(platformdirs.user_data_dir("ctxvault"))
    return chosen.expanduser()


def runtime_dir() -> Path:
    """The per-user directory holding agent sockets (CTXVAULT_RUNTIME_DIR, XDG_RUNTIME_DIR, or /tmp)."""
    if os.environ.get("CTXVAULT_RUNTIME_DIR"):
        return Path(os.environ["CTXVAULT_RUNTIME_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "ctxvault"
    return Path(f"/tmp/ctxvault-{os.getuid()}")


def socket_path(vault: Located) -> Path:
    """The agent socket for one vault: short, because Unix socket paths are limited to ~108 bytes."""
    digest = hashlib.sha256(str(vault.home.resolve()).encode()).hexdigest()[:16]
    return runtime_dir() / f"agent-{digest}.sock"


def read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_LINE:
        chunk = conn.recv(MAX_LINE)
        if not chunk:
            break
        data += chunk
    return data


def _ask(vault: Located, op: str) -> dict[str, object] | None:
    path = socket_path(vault)
    if not path.exists():
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(5)
    try:
        client.connect(str(path))
        client.sendall(json.dumps({"op": op}).encode() + b"\n")
        answer = json.loads(read_line(client) or b"{}")
    except (OSError, ValueError):
        # A stale socket left by a killed agent: as good as no session.
        return None
    finally:
        client.close()
    return answer if isinstance(answer, dict) else None


def fetch_key(vault: Located) -> DataKey | None:
    """The data key from a running unlock session for this vault, or None."""
    from vault.crypto import DataKey

    answer = _ask(vault, "key")
    if not answer or not isinstance(answer.get("key"), str):
        return None
    return DataKey(bytes.fromhex(str(answer["key"])))


def status(vault: Located) -> SessionStatus | None:
    """The running unlock session for this vault, or None."""
    answer = _ask(vault, "status")
    if not answer or "seconds_left" not in answer:
        return None
    return SessionStatus(socket=socket_path(vault), seconds_left=int(str(answer["seconds_left"])))


def embed_backlog(vault: Located) -> bool:
    """Ask this vault's agent to embed the units lacking a vector (in the background); True if one will."""
    answer = _ask(vault, "embed")
    return bool(answer and answer.get("embedding") is True)


def lock(vault: Located) -> bool:
    """End the unlock session and the programs it started; True if one was running."""
    return bool(_ask(vault, "lock"))


def run_in_agent(vault: Located, op: str, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> int | None:
    """Run program ``op`` in a child of this vault's agent on this process's stdio; its exit code.

    None means nothing was handed over (no agent, an agent without ``op``, any failure
    before the child confirmed): the caller runs the command itself, as if the agent
    were not there. Only the launcher's exit or the child's end stops the child.

    Raises:
        VaultLocked: the child ended without an exit code (the session locked or timed out).
    """
    path = socket_path(vault)
    if not path.exists():
        return None
    umask = os.umask(0o077)
    os.umask(umask)
    request = json.dumps({"op": op, "argv": list(argv), "env": dict(env), "cwd": cwd, "umask": umask}).encode() + b"\n"
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with client:
        client.settimeout(HANDOVER_TIMEOUT_S)
        try:
            client.connect(str(path))
            sent = socket.send_fds(client, [request], [0, 1, 2])
            client.sendall(request[sent:])
            answer = json.loads(read_line(client) or b"{}")
            if not (isinstance(answer, dict) and answer.get("started") is True):
                return None
            client.sendall(b"go\n")
        except (OSError, ValueError):
            return None
        # Handed over: the child owns stdin now, so no path below may fall back.
        client.settimeout(None)
        try:
            report = json.loads(read_line(client) or b"{}")
        except (OSError, ValueError):
            report = None
    if isinstance(report, dict) and isinstance(report.get("exit"), int):
        return int(report["exit"])
    raise VaultLocked("the command stopped: the unlock session was locked or timed out (run `ctxvault unlock`)")
