"""The bundle reader fed mutated tar archives, through its public entry points (issue 27).

tests/vault/portable/test_fuzz.py mutates the members of a bundle and the archive's bytes at random;
this file mutates the tar structure itself, where a reader trusts what a header says: a member's
size (up to 64 GiB, octal and base-256) with little or no data behind it, pax headers with a huge
size, a path of a megabyte or ten thousand records, GNU long names, members the manifest does not
name (16 MiB of zeros), links, devices, FIFOs and directories where files belong, paths that climb
out (``../``, absolute), a member given twice, header bytes flipped with the checksum made right
again, an early end-of-archive and a cut archive; sometimes sealed with age. Each input goes
through ``import_source`` with ``dry_run`` (the preview) and then for real: it imports, or raises a
``VaultError`` leaving every table's rows and file beside the database as they were, within
``INPUT_SECONDS``; never another exception. Seeded by ``FUZZ_SEED`` (default 29); counts in
docs/reliability.md, "Fuzzing counts".
"""

from __future__ import annotations

import io
import os
import random
import shutil
import tarfile
import time
from pathlib import Path

import pyrage  # type: ignore[import-untyped]  # pyrage 1.4 ships no type stubs
import pytest
from pyrage import x25519

from schemas.portable import Selection
from tests.vault.portable.conftest import populate
from tests.vault.portable.test_fuzz import SEED, Tally, attempt, vault_state
from vault import OWNER, VaultService
from vault.errors import VaultError

SHORT = 40
LONG = int(os.environ.get("TAR_FUZZ_INPUTS", "300"))
INPUT_SECONDS = 120.0  # one input, preview and import; on the shared machine (load 15) one 0.7 s input took 32 s; a hang is far past it
BLOCK = 512


def _members(folder: Path) -> list[tuple[str, bytes]]:
    return sorted((p.relative_to(folder).as_posix(), p.read_bytes()) for p in folder.rglob("*") if p.is_file())


def _info(name: str, data: bytes | None = None, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, 0o600, 1_700_000_000
    info.size = len(data) if data is not None and kind == tarfile.REGTYPE else 0
    return info


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None and info.size else None)
    return out.getvalue()


def _headers(blob: bytes) -> list[int]:
    """Offsets of the ustar headers in ``blob`` (pax and GNU extension headers included)."""
    return [at for at in range(0, len(blob) - BLOCK + 1, BLOCK) if blob[at + 257 : at + 262] == b"ustar"]


def _checksum(header: bytearray) -> None:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)


def _set_size(blob: bytes, rng: random.Random) -> bytes:
    buf = bytearray(blob)
    at = rng.choice(_headers(blob))
    header = bytearray(buf[at : at + BLOCK])
    size = rng.choice([1 << 33, 64 << 30, 10**11, 8 << 30, 1 << 31, 0, 1, 10**9])
    if rng.random() < 0.5 and size < 8**11:
        header[124:136] = b"%011o\0" % size
    else:  # GNU base-256: the high bit of the first byte set, the value big-endian in the rest
        header[124:136] = bytes([0x80]) + size.to_bytes(11, "big")
    _checksum(header)
    buf[at : at + BLOCK] = header
    return bytes(buf)


def _flip_header(blob: bytes, rng: random.Random) -> bytes:
    buf = bytearray(blob)
    at = rng.choice(_headers(blob))
    header = bytearray(buf[at : at + BLOCK])
    for _ in range(rng.randint(1, 8)):
        header[rng.choice([rng.randrange(BLOCK), rng.randrange(100), 124 + rng.randrange(12), 156, 345 + rng.randrange(155)])] = (
            rng.randrange(256)
        )
    if rng.random() < 0.9:
        _checksum(header)
    buf[at : at + BLOCK] = header
    return bytes(buf)


def _entries(rng: random.Random, members: list[tuple[str, bytes]]) -> tuple[list[tuple[tarfile.TarInfo, bytes | None]], int, str]:
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [(_info(name, data), data) for name, data in members]
    fmt = tarfile.PAX_FORMAT
    pick = rng.randrange(len(entries))
    name = entries[pick][0].name
    kind = rng.choice(["pax size", "pax path", "pax records", "gnu longname", "unreferenced", "link", "special", "climb", "twice", "none"])
    match kind:
        case "pax size":
            entries[pick][0].pax_headers = {"size": str(rng.choice([1 << 40, 10**30, -5, 0]))}
        case "pax path":
            entries[pick][0].pax_headers = {"path": "x-ctxvault/" + "a" * rng.choice([300, 100_000, 1_000_000])}
        case "pax records":
            entries[pick][0].pax_headers = {f"k{i}": "v" * rng.randint(0, 50) for i in range(rng.choice([100, 10_000]))}
        case "gnu longname":
            fmt = tarfile.GNU_FORMAT
            entries[pick][0].name = "a/" * rng.choice([200, 50_000]) + "memory-store.json"
        case "unreferenced":
            data = b"\0" * rng.choice([1 << 20, 16 << 20])
            entries.insert(
                rng.randrange(len(entries) + 1), (_info(rng.choice(["extra.bin", "x-ctxvault/extra", "documents/zzz"]), data), data)
            )
        case "link":
            info = _info(name, None, rng.choice([tarfile.SYMTYPE, tarfile.LNKTYPE]))
            info.linkname = rng.choice(["/etc/passwd", "../../../etc/shadow", "memory-store.json", name, "x" * 5000])
            entries[pick] = (info, None)
        case "special":
            entries[pick] = (
                _info(name, None, rng.choice([tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE, b"Z"])),
                None,
            )
        case "climb":
            entries[pick][0].name = rng.choice(["../", "/", "x-ctxvault/../../", "./../", "\\..\\"]) + name
        case "twice":
            other = rng.choice(members)[1]
            entries.insert(rng.randrange(len(entries) + 1), (_info(name, other), other))
    return entries, fmt, kind


def mutated_tar(rng: random.Random, members: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A tar of ``members`` with one structural mutation, then perhaps a header changed, an early end, a cut."""
    entries, fmt, kind = _entries(rng, members)
    blob = _tar(entries, fmt)
    steps = [kind]
    if rng.random() < 0.35:
        blob, steps = _set_size(blob, rng), [*steps, "size field"]
    if rng.random() < 0.35:
        blob, steps = _flip_header(blob, rng), [*steps, "header bytes"]
    if rng.random() < 0.1:
        at = rng.choice(_headers(blob))
        blob, steps = blob[:at] + b"\0" * 1024 + blob[at:], [*steps, "early end"]
    if rng.random() < 0.25:
        blob, steps = blob[: rng.randrange(len(blob))], [*steps, "cut"]
    return blob, "+".join(steps)


def run_tar(vault: VaultService, count: int, work: Path) -> tuple[Tally, dict[str, int]]:
    populate(vault, memories=6, documents=1)
    original = work / "bundle"
    vault.export_bundle(OWNER, Selection(), original, plaintext=True)
    members = _members(original)
    ident = x25519.Identity.generate()
    key = work / "key.txt"
    key.write_text(f"{ident}\n")
    tally, crashes, kinds = Tally(), list[str](), dict[str, int]()
    slowest = 0.0
    for n in range(count):
        rng = random.Random(f"{SEED}:tar:{n}")
        blob, kind = mutated_tar(rng, members)
        kinds[kind.split("+")[0]] = kinds.get(kind.split("+")[0], 0) + 1
        folder = work / str(n)
        folder.mkdir()
        path = folder / "bundle.tar"
        path.write_bytes(blob)
        if rng.random() < 0.25:
            path = folder / "bundle.age"
            path.write_bytes(pyrage.encrypt(blob, [ident.to_public()]))
        case = f"FUZZ_SEED={SEED} tar #{n} ({kind})"
        fmt = None if n % 4 == 3 else "bundle"
        start = time.monotonic()
        before = vault_state(vault)
        try:
            vault.import_source(OWNER, path, fmt, identity_file=key, dry_run=True)  # type: ignore[arg-type]
        except VaultError:
            pass
        except Exception as exc:  # the property under test, for the preview too
            crashes.append(f"{case}: preview: {type(exc).__name__}: {str(exc)[:200]}")
        if vault_state(vault) != before:
            crashes.append(f"{case}: the preview changed the vault")
        attempt(vault, path, fmt, tally, crashes, case, identity=key)
        took = time.monotonic() - start
        slowest = max(slowest, took)
        if took > INPUT_SECONDS:
            crashes.append(f"{case}: took {took:.0f} s")
        shutil.rmtree(folder)
    assert not crashes, "\n".join(crashes)
    print(f"fuzz tar: {tally.inputs} inputs, {tally.imported} imported, {tally.refused} refused, slowest {slowest:.1f} s, by kind {kinds}")
    return tally, kinds


def test_mutated_tar_bundles_import_or_are_refused_leaving_the_vault_unchanged(source: VaultService, tmp_path: Path) -> None:
    tally, kinds = run_tar(source, SHORT, tmp_path)
    assert tally.inputs == SHORT and tally.refused > 0
    assert len(kinds) >= 8  # most kinds of mutation were tried


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_long_fuzz_of_tar_bundles(source: VaultService, tmp_path: Path) -> None:
    run_tar(source, LONG, tmp_path)
