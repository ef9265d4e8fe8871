"""``-`` as a file or text argument: read it from stdin, or write it to stdout.

A memory can be longer than one command-line argument may be (Linux caps one at 128 KiB),
and scripts pipe: ``echo text | ctxvault add -``, ``ctxvault export -o - | ssh host …``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from schemas.limits import MEMORY_CHARS
from vault.errors import InvalidInput, TooLarge

STDIO = "-"
"""The argument that names stdin (for what is read) or stdout (for what is written)."""

STDIN_BYTES = MEMORY_CHARS * 4
"""The most read from stdin for one text: the longest memory in the widest UTF-8 (the service checks characters)."""


def read_stdin_text() -> str:
    """The text piped in on stdin, without its one trailing newline (``echo`` adds one).

    Raises:
        TooLarge: more than ``STDIN_BYTES`` bytes. InvalidInput: not UTF-8.
    """
    data = sys.stdin.buffer.read(STDIN_BYTES + 1)
    if len(data) > STDIN_BYTES:
        raise TooLarge(f"stdin holds more than {STDIN_BYTES} bytes; one text holds at most {MEMORY_CHARS} characters")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"stdin is not UTF-8 text (byte {exc.start})") from None
    return text.removesuffix("\n").removesuffix("\r")


def text_arg(value: str) -> str:
    """``value`` itself, or stdin's text when it is ``-``."""
    return read_stdin_text() if value == STDIO else value


def read_text_file(path: Path) -> str:
    """A text file's content (``-``: stdin), without its one trailing newline.

    Raises:
        InvalidInput: unreadable or not UTF-8. TooLarge: longer than one text may be.
    """
    if str(path) == STDIO:
        return read_stdin_text()
    try:
        with path.open("rb") as f:
            data = f.read(STDIN_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > STDIN_BYTES:
        raise TooLarge(f"{path} holds more than {STDIN_BYTES} bytes; one text holds at most {MEMORY_CHARS} characters")
    try:
        return data.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8 text (byte {exc.start})") from None


def refuse_binary_on_terminal(what: str) -> None:
    """Raise when stdout is a terminal: binary output would garble it (redirect or pipe it instead).

    Raises:
        InvalidInput: stdout is a terminal.
    """
    if sys.stdout.isatty():
        raise InvalidInput(f"refusing to write {what} to a terminal: redirect it (-o - > file) or pipe it")


@contextmanager
def binary_to_stdout() -> Iterator[Path]:
    """A path to write an (encrypted) file at; on success its bytes are copied to stdout and it is removed.

    The file lives in a fresh 0700 directory for the moment of the copy; only ciphertext goes there.
    """
    folder = Path(tempfile.mkdtemp(prefix="ctxvault-out-"))
    try:
        target = folder / "out"
        yield target
        sys.stdout.flush()
        out = sys.stdout.buffer
        with target.open("rb") as f:
            shutil.copyfileobj(f, out)
        out.flush()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
