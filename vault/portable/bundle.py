"""Bundle files: a tar of the bundle directory, sealed with age (pyrage: here and in the import's spool).

Writing streams the tar through ``pyrage.encrypt_io`` for recipients (X25519 ``age1…``
or SSH public keys) and through vault/portable/age_passphrase.py for a passphrase (pyrage's
passphrase mode works on whole byte strings), so the whole bundle is never in memory and
has no size cap but the archive limits below. Reading enforces limits on member count and sizes, refuses
links, devices, absolute paths and ``..``, and turns every foreign failure into
``BadBundle``. Plaintext never touches disk unless the owner asks for a directory.

Memory is bounded by one document, not by the bundle (issue 27): an export's documents are
Blobs read from the database as their tar member is written; an import seals each document
member into a ``Spool`` as it streams and checks it against the manifest's sha256 at once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pyrage  # type: ignore[import-untyped]  # pyrage 1.4 ships no type stubs

from schemas.portable import COMPANION_DIR
from vault.blob import Content, content, content_size
from vault.errors import BadBundle, InvalidInput
from vault.portable import age_passphrase
from vault.portable.spool import Spool

# Limits on what a bundle may hold; hostile archives are refused at the first header
# that crosses one (tar bombs declare sizes up front).
MAX_MEMBERS = 500_000
MAX_MEMBER_BYTES = 2 << 30
MAX_TOTAL_BYTES = 8 << 30
MAX_JSON_BYTES = 1 << 30
AGE_MAGIC = b"age-encryption.org/v1\n"
_CHUNK = 1 << 16

# A member's bytes, or (documents: issue 27) a Blob that reads them from the database, the import's
# sealed spool or a bundle folder when they are written.
Files = dict[str, Content]
Recipient = Any  # pyrage.x25519.Recipient | pyrage.ssh.Recipient (untyped extension types)
Identity = Any


def sha256(data: Content) -> str:
    return hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else data.sha256


# -- keys ---------------------------------------------------------------------------------


def parse_recipient(value: str) -> Recipient:
    """An age X25519 recipient (``age1…``) or an SSH public key line.

    Raises:
        InvalidInput: neither form parses.
    """
    text = value.strip()
    try:
        if text.startswith("age1"):
            return pyrage.x25519.Recipient.from_str(text)
        if text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
            return pyrage.ssh.Recipient.from_str(text)
    except pyrage.RecipientError as exc:
        raise InvalidInput(f"recipient {text[:24]!r}… is not a valid age or SSH public key") from exc
    path = Path(text)
    if path.is_file() and path.stat().st_size < 64 << 10:
        lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln and not ln.startswith("#")]
        if len(lines) == 1:
            return parse_recipient(lines[0])
    raise InvalidInput(f"recipient {text[:24]!r} is neither an age1… key, an SSH public key, nor a file holding one")


def load_identities(path: Path) -> list[Identity]:
    """The age identities in an ``age-keygen`` file, or one unencrypted SSH private key.

    Raises:
        InvalidInput: unreadable file, or no identity in it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read identity file {path}: {exc.strerror}") from exc
    return identities_from(data, str(path))


def identities_from(data: bytes, label: str = "the identity") -> list[Identity]:
    """The age identities (``AGE-SECRET-KEY-…`` lines) or the one unencrypted SSH private key in ``data``.

    Raises:
        InvalidInput: no usable identity in it.
    """
    path = label
    text = data.decode("utf-8", errors="replace")
    keys = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("AGE-SECRET-KEY-")]
    try:
        if keys:
            return [pyrage.x25519.Identity.from_str(k) for k in keys]
        if "PRIVATE KEY" in text:
            return [pyrage.ssh.Identity.from_buffer(data)]
    except pyrage.IdentityError as exc:
        raise InvalidInput(f"{path} holds an identity that cannot be used (encrypted SSH keys are not supported)") from exc
    raise InvalidInput(f"{path} holds no age identity (AGE-SECRET-KEY-…) or SSH private key")


# -- writing ------------------------------------------------------------------------------


MANIFEST_MEMBER = f"{COMPANION_DIR}/manifest.json"
MAX_MANIFEST_BYTES = 64 << 20


def _member_bytes(name: str, value: Content) -> bytes:
    """A member's bytes; a Blob's are checked against the digest the manifest already declared."""
    if isinstance(value, bytes):
        return value
    data = value.read()
    if len(data) != value.size or hashlib.sha256(data).hexdigest() != value.sha256:
        from vault.errors import StoreCorrupt

        raise StoreCorrupt(f"{name[:80]!r} does not match the size and sha256 the vault recorded for it (run `ctxvault doctor`)")
    return data


def _write_tar(files: Mapping[str, Content], out: IO[bytes], mtime: float) -> None:
    # The manifest first: a reader then checks every later member against it before reading it.
    # One member's bytes in memory at a time: a Blob is read when its turn comes, then let go.
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name in sorted(files, key=lambda n: (n != MANIFEST_MEMBER, n)):
            parts = PurePosixPath(name).parts
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in dirs:
                    dirs.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, mtime
                    tar.addfile(info)
            data = _member_bytes(name, files[name])
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, mtime
            tar.addfile(info, io.BytesIO(data))
            del data


def write_encrypted(
    files: Mapping[str, Content], out: Path, *, recipients: list[Recipient] | None = None, passphrase: str | None = None, mtime: float = 0
) -> int:
    """Tar ``files`` and seal them with age into ``out`` (written atomically), streamed; returns its size."""
    if bool(recipients) == (passphrase is not None):
        raise InvalidInput("encrypt to one or more recipients, or with a passphrase (not both)")
    tmp = out.with_name(out.name + ".partial")
    try:
        if passphrase is not None:
            _stream_encrypt(files, tmp, lambda source, sink: age_passphrase.encrypt(source, sink, passphrase), mtime)
        else:
            _stream_encrypt(files, tmp, lambda source, sink: pyrage.encrypt_io(source, sink, recipients), mtime)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out.stat().st_size


Seal = Callable[[IO[bytes], IO[bytes]], None]


def _stream_encrypt(files: Mapping[str, Content], target: Path, seal: Seal, mtime: float) -> None:
    # The tar is written on the caller's thread (its Blobs read the database through the caller's
    # connection); age seals the pipe's other end on a worker thread.
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def sealing() -> None:
        with os.fdopen(read_fd, "rb") as source, target.open("wb") as sink:
            try:
                seal(source, sink)
            except BaseException as exc:  # re-raised below
                failure.append(exc)
            finally:
                # Drain so the tar writer never blocks on a full pipe if encryption stopped early.
                while source.read(_CHUNK):
                    pass

    worker = threading.Thread(target=sealing, name="bundle-seal", daemon=True)
    worker.start()
    try:
        with os.fdopen(write_fd, "wb") as sink:
            _write_tar(files, sink, mtime)
    finally:
        worker.join()  # the pipe is closed either way: an incomplete tar ends the seal, and the caller removes the file
    if failure:
        raise failure[0]


def write_directory(files: Mapping[str, Content], directory: Path) -> int:
    """Write the bundle as a plain directory (only on the owner's explicit request)."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InvalidInput(f"{directory} exists and is not an empty folder")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    total = 0
    for name, data in files.items():
        path = directory / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_bytes(_member_bytes(name, data))
        path.chmod(0o600)
        total += content_size(data)
    return total


# -- reading ------------------------------------------------------------------------------


def is_age_file(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(len(AGE_MAGIC)) == AGE_MAGIC


def is_passphrase_file(path: Path) -> bool:
    """Whether an age file is sealed with a passphrase (an scrypt stanza) rather than keys."""
    with path.open("rb") as fh:
        header = fh.read(4096)
    return b"\n-> scrypt " in header


def looks_like_tar(path: Path) -> bool:
    """Whether ``path`` starts with a valid tar header: one 512-byte block, its checksum right.

    ``tarfile.is_tarfile`` tries every compression and, on a file of zeros, reads all of it
    (a 100 MB file took over a minute); this reads one block.
    """
    try:
        with path.open("rb") as fh:
            block = fh.read(512)
    except OSError:
        return False
    if len(block) < 512 or not block.strip(b"\0"):
        return False
    field = block[148:156].split(b"\0", 1)[0].strip()
    try:
        stored = int(field, 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = sum(b - 256 if b > 127 else b for b in block[:148]) + 8 * 32 + sum(b - 256 if b > 127 else b for b in block[156:])
    return stored in (unsigned, signed)


def _member_name(raw: str) -> str:
    name = raw[2:] if raw.startswith("./") else raw
    path = PurePosixPath(name)
    if not name or name.startswith("/") or "\\" in name or any(p in ("..", "") for p in name.rstrip("/").split("/")) or path.is_absolute():
        raise BadBundle(f"bundle member {raw[:80]!r} has an unsafe path (absolute or '..')")
    return name.rstrip("/")


def spooled(name: str) -> bool:
    """Whether an import keeps this member in its sealed spool (documents, vectors) rather than in memory (JSON)."""
    return not name.endswith(".json")


def untar(stream: IO[bytes], spool: Spool | None = None) -> Files:
    """Read a tar stream member by member, refusing links, special files, unsafe paths and bombs.

    When the manifest comes first (bundles written since it does), every later member must be
    listed in it with the size it declares, or the bundle is refused before that member is
    read: an unreferenced or oversized member costs nothing. A member the manifest lists is
    checked against its sha256 as soon as it has been read. Older bundles (manifest last)
    are read under the size limits alone.

    ``spool``: members that are not JSON (documents' files, vectors) are sealed into it as they
    stream instead of being kept in memory, so memory does not grow with the documents' bytes.
    """
    files: Files = {}
    listed: dict[str, tuple[int, str]] | None = None
    total = members = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                members += 1
                if members > MAX_MEMBERS:
                    raise BadBundle(f"bundle holds more than {MAX_MEMBERS} entries")
                name = _member_name(info.name)
                if info.isdir():
                    continue
                if not info.isreg():
                    raise BadBundle(f"bundle member {name[:80]!r} is a link or special file; bundles hold regular files only")
                if info.size > MAX_MEMBER_BYTES or total + info.size > MAX_TOTAL_BYTES:
                    raise BadBundle(f"bundle member {name[:80]!r} declares {info.size} bytes: over the size limit (tar bomb?)")
                if name in files:
                    raise BadBundle(f"bundle member {name[:80]!r} appears twice")
                if listed is not None and (name not in listed or listed[name][0] != info.size):
                    what = "is not listed in" if name not in listed else "has another size than"
                    raise BadBundle(f"bundle member {name[:80]!r} {what} the manifest")
                if not files and name == MANIFEST_MEMBER and info.size > MAX_MANIFEST_BYTES:
                    raise BadBundle(f"the manifest declares {info.size} bytes; the limit is {MAX_MANIFEST_BYTES}")
                if not spooled(name) and info.size > MAX_JSON_BYTES:
                    raise BadBundle(f"{name[:80]!r} is {info.size} bytes; the limit is {MAX_JSON_BYTES}")
                fh = tar.extractfile(info)
                value: Content
                if spool is not None and spooled(name) and fh is not None:
                    value = spool.put(fh, info.size)
                else:
                    value = fh.read() if fh is not None else b""
                    if len(value) != info.size:
                        raise BadBundle(f"bundle member {name[:80]!r} is truncated")
                total += info.size
                if listed is not None and sha256(value) != listed[name][1]:
                    raise BadBundle(f"{name[:80]!r} does not match the manifest's sha256 (tampered or corrupt)")
                if not files and name == MANIFEST_MEMBER:
                    assert isinstance(value, bytes)  # JSON: never spooled
                    listed = _listed(value)
                files[name] = value
    except (tarfile.TarError, EOFError, OSError, UnicodeError) as exc:
        raise BadBundle("the bundle's archive is truncated or not a tar file") from exc
    if not files:
        raise BadBundle("the bundle's archive is empty")
    return files


def _listed(manifest: bytes) -> dict[str, tuple[int, str]]:
    """The member sizes and sha256 a manifest pins (the manifest itself is checked in full later)."""
    data = load_json(manifest, MANIFEST_MEMBER)
    entries = data.get("files") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise BadBundle("the manifest lists no files")
    pinned = {str(k): (v.get("size"), v.get("sha256")) for k, v in entries.items() if isinstance(v, dict)}
    if len(pinned) != len(entries) or not all(
        isinstance(size, int) and size >= 0 and isinstance(digest, str) for size, digest in pinned.values()
    ):
        raise BadBundle("the manifest's file list is malformed")
    return {k: (int(size), str(digest)) for k, (size, digest) in pinned.items() if isinstance(size, int)}


def read_encrypted(
    path: Path, *, identities: list[Identity] | None = None, passphrase: str | None = None, spool: Spool | None = None
) -> Files:
    """Open an age-sealed bundle and return its files (its documents sealed into ``spool``, if given: see ``untar``), streamed.

    Raises:
        BadBundle: wrong identity or passphrase, truncated, tampered, or hostile archive.
    """
    if is_passphrase_file(path):
        if passphrase is None:
            raise BadBundle("this bundle is sealed with a passphrase: pass --passphrase-file")
        return _stream_decrypt(path, lambda source, sink: age_passphrase.decrypt(source, sink, passphrase), spool)
    if not identities:
        raise BadBundle("this bundle is sealed to recipients: pass --identity with the matching key file")
    return _stream_decrypt(path, lambda source, sink: pyrage.decrypt_io(source, sink, identities), spool)


def _stream_decrypt(path: Path, unseal: Seal, spool: Spool | None) -> Files:
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        with path.open("rb") as source, os.fdopen(write_fd, "wb") as sink:
            try:
                unseal(source, sink)
            except BaseException as exc:  # reported below as BadBundle
                failure.append(exc)

    worker = threading.Thread(target=produce, name="bundle-decrypt", daemon=True)
    worker.start()
    error: BadBundle | None = None
    with os.fdopen(read_fd, "rb") as stream:
        try:
            files = untar(stream, spool)
        except BadBundle as exc:
            error, files = exc, {}
        # Read to the end: age authenticates the last chunk only when the stream ends.
        while stream.read(_CHUNK):
            pass
    worker.join()
    if failure:
        raise _unsealing_error(failure[0]) from failure[0]
    if error is not None:
        raise error
    return files


def _unsealing_error(cause: BaseException) -> BadBundle:
    if isinstance(cause, age_passphrase.AgeError):
        if isinstance(cause, age_passphrase.WrongPassphrase):
            return BadBundle("cannot open the bundle: wrong passphrase")
        return BadBundle(f"cannot open the bundle: {cause}")
    if isinstance(cause, pyrage.DecryptError) and "No matching keys" in str(cause):
        return BadBundle("cannot open the bundle: none of the given identities is a recipient")
    return BadBundle("cannot open the bundle: it is truncated, tampered, or not for this identity")


class _FolderFile:
    """A bundle folder's file, read when it is written (a ``vault.blob.Blob``); hashed once on the way in."""

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(_CHUNK * 16):
                digest.update(block)
        self.sha256 = digest.hexdigest()

    def read(self) -> bytes:
        data = self.path.read_bytes()
        if len(data) != self.size or hashlib.sha256(data).hexdigest() != self.sha256:
            raise BadBundle(f"{self.path.name[:80]!r} changed while it was being imported")
        return data


def read_directory(directory: Path) -> Files:
    """Read a plaintext bundle directory with the same limits as an archive (files other than JSON when written)."""
    files: Files = {}
    total = 0
    for root, dirs, names in os.walk(directory, followlinks=False):
        for name in [*dirs, *names]:
            full = Path(root) / name
            if full.is_symlink():
                raise BadBundle(f"{full.relative_to(directory)} is a link; bundles hold regular files only")
        for name in names:
            full = Path(root) / name
            rel = full.relative_to(directory).as_posix()
            if not full.is_file():
                raise BadBundle(f"{rel} is not a regular file")
            size = full.stat().st_size
            total += size
            if size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES or len(files) >= MAX_MEMBERS:
                raise BadBundle(f"{rel}: the folder is over the bundle size limits")
            files[rel] = _FolderFile(full, size) if spooled(rel) else full.read_bytes()
    return files


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _refuse_lone_surrogates(value: object, name: str) -> None:
    """BadBundle if a string (or key) holds a surrogate that JSON's ``\\ud800`` escape left unpaired.

    Such a string is not Unicode text: UTF-8 cannot encode it, and pydantic's validators raise
    UnicodeEncodeError on it. Walked with a stack, since the parsed value may nest deeply.
    """
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and not node.isascii():
            try:
                node.encode()
            except UnicodeEncodeError:
                raise BadBundle(f"{name} holds a string with an unpaired surrogate ({node[:40]!r}): not Unicode text") from None


def load_json(value: Content, name: str) -> Any:
    """Parse one JSON file of a bundle; hostile JSON (deep nesting, NaN, bad UTF-8, lone surrogates) is BadBundle."""
    data = content(value)
    if len(data) > MAX_JSON_BYTES:
        raise BadBundle(f"{name} is {len(data)} bytes; the limit is {MAX_JSON_BYTES}")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except RecursionError as exc:
        raise BadBundle(f"{name} is nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBundle(f"{name} is not valid JSON: {str(exc)[:120]}") from exc
    # A surrogate reaches a string only through a \u escape (a raw one is not UTF-8, refused above): the
    # walk runs only when the bytes hold one.
    if b"\\ud" in data or b"\\uD" in data:
        _refuse_lone_surrogates(value, name)
    return value
