"""The tar probe reads one header block: a big file of zeros is refused at once, with the right words."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import BadBundle
from vault.portable.bundle import looks_like_tar
from vault.portable.importers import detect


def make_tar(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            data = name.encode() * 3
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_large_file_of_zeros_is_not_a_tar_and_is_refused_by_content(tmp_path: Path) -> None:
    zeros = tmp_path / "backup.tar"
    with zeros.open("wb") as fh:
        fh.truncate(2 << 30)  # 2 GiB, sparse: reading it all would take minutes
    assert not looks_like_tar(zeros)
    with pytest.raises(BadBundle, match=r"cannot tell what backup\.tar is"):
        detect(zeros)


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_real_tars_of_every_format_are_bundles(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "b.bin"
    with tarfile.open(path, "w", format=fmt) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    assert looks_like_tar(path) and detect(path) == "bundle"


@settings(max_examples=50, deadline=None)
@given(
    names=st.lists(
        st.text(alphabet="abcdefghij_/.é", min_size=1, max_size=120).filter(lambda n: not n.startswith("/")), min_size=1, max_size=3
    )
)
def test_whatever_tarfile_writes_the_probe_accepts(tmp_path_factory: pytest.TempPathFactory, names: list[str]) -> None:
    path = make_tar(tmp_path_factory.mktemp("t") / "x.tar", names)
    assert looks_like_tar(path) == tarfile.is_tarfile(path) == True  # noqa: E712


@settings(max_examples=100, deadline=None)
@given(head=st.binary(min_size=0, max_size=1024))
def test_random_bytes_are_rarely_a_tar_and_never_crash_the_probe(tmp_path_factory: pytest.TempPathFactory, head: bytes) -> None:
    path = tmp_path_factory.mktemp("r") / "x.bin"
    path.write_bytes(head)
    if looks_like_tar(path):
        assert tarfile.is_tarfile(path)


def test_bundles_carry_the_manifest_first_and_an_unlisted_or_resized_member_is_refused_unread(tmp_path: Path) -> None:
    import hashlib
    import json

    from vault.portable.bundle import MANIFEST_MEMBER, untar

    manifest = json.dumps({"files": {"memory-store.json": {"sha256": hashlib.sha256(b"{}").hexdigest(), "size": 2}}}).encode()

    def archive(members: list[tuple[str, bytes]]) -> io.BytesIO:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        buf.seek(0)
        return buf

    ok = untar(archive([(MANIFEST_MEMBER, manifest), ("memory-store.json", b"{}")]))
    assert set(ok) == {MANIFEST_MEMBER, "memory-store.json"}
    with pytest.raises(BadBundle, match="not listed in the manifest"):
        untar(archive([(MANIFEST_MEMBER, manifest), ("memory-store.json", b"{}"), ("junk.bin", b"x" * 10_000)]))
    with pytest.raises(BadBundle, match="another size than the manifest"):
        untar(archive([(MANIFEST_MEMBER, manifest), ("memory-store.json", b"{ }")]))
    with pytest.raises(BadBundle, match="does not match the manifest's sha256"):  # checked as it streams, not after the archive
        untar(archive([(MANIFEST_MEMBER, manifest), ("memory-store.json", b"[]")]))


def test_an_export_writes_the_manifest_as_the_first_file(tmp_path: Path) -> None:
    from vault.portable.bundle import MANIFEST_MEMBER, _write_tar

    buf = io.BytesIO()
    _write_tar({"a.json": b"{}", MANIFEST_MEMBER: b"{}", "documents/x.txt": b"x"}, buf, 0.0)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        regular = [m.name for m in tar.getmembers() if m.isreg()]
    assert regular[0] == MANIFEST_MEMBER and sorted(regular[1:]) == ["a.json", "documents/x.txt"]
