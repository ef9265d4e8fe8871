"""Bad input of every kind → BadBundle, and a vault unchanged byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pyrage import x25519

from schemas.portable import Selection
from tests.vault.portable.conftest import FIXTURES, populate, vault_files_digest
from vault import OWNER, VaultService, search
from vault.errors import BadBundle, VaultError
from vault.portable import merge, records
from vault.portable.importers import read_source
from vault.portable.merge import apply

HOSTILE = FIXTURES / "hostile"


@pytest.fixture
def sealed(source: VaultService, tmp_path: Path) -> tuple[Path, Path]:
    """A small recipient bundle and its key file."""
    populate(source, memories=30, documents=1)
    ident = x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"{ident}\n")
    out = tmp_path / "vault.age"
    source.export_bundle(OWNER, Selection(), out, recipients=[str(ident.to_public())])
    return out, key


@pytest.fixture
def plain(source: VaultService, tmp_path: Path) -> Path:
    populate(source, memories=10, documents=1)
    out = tmp_path / "plain"
    source.export_bundle(OWNER, Selection(), out, plaintext=True)
    return out


def refused(target: VaultService, path: Path, **kwargs: object) -> None:
    """Import must raise BadBundle and leave every file of the vault as it was."""
    before = vault_files_digest(target)
    with pytest.raises(BadBundle):
        target.import_source(OWNER, path, **kwargs)  # type: ignore[arg-type]
    assert vault_files_digest(target) == before


def test_truncated_bundle_is_refused(make_vault: Callable[..., VaultService], sealed: tuple[Path, Path], tmp_path: Path) -> None:
    out, key = sealed
    cut = tmp_path / "cut.age"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size - 100])
    refused(make_vault(), cut, identity_file=key)


def test_tampered_bundle_is_refused(make_vault: Callable[..., VaultService], sealed: tuple[Path, Path], tmp_path: Path) -> None:
    out, key = sealed
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "bad.age"
    bad.write_bytes(bytes(data))
    refused(make_vault(), bad, identity_file=key)


def test_wrong_identity_is_refused(make_vault: Callable[..., VaultService], sealed: tuple[Path, Path], tmp_path: Path) -> None:
    out, _ = sealed
    other = tmp_path / "other.txt"
    other.write_text(f"{x25519.Identity.generate()}\n")
    refused(make_vault(), out, identity_file=other)
    refused(make_vault("no-key"), out)


def test_wrong_passphrase_is_refused(source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path) -> None:
    populate(source, memories=5, documents=0)
    out = tmp_path / "vault.age"
    source.export_bundle(OWNER, Selection(), out, passphrase="the right passphrase")
    target = make_vault()
    refused(target, out, passphrase="a wrong passphrase")
    refused(target, out)


def test_unknown_format_version_is_refused(make_vault: Callable[..., VaultService], plain: Path) -> None:
    manifest = plain / "x-ctxvault" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = 99
    manifest.write_text(json.dumps(data))
    refused(make_vault(), plain)


def test_edited_member_is_refused_by_the_manifest(make_vault: Callable[..., VaultService], plain: Path) -> None:
    store = plain / "memory-store.json"
    store.write_text(store.read_text().replace("Memory 3:", "Memory 4:"))
    refused(make_vault(), plain)


def test_vectors_that_are_not_finite_numbers_are_refused(make_vault: Callable[..., VaultService], plain: Path) -> None:
    """A NaN would poison every distance the index computes; the manifest is rewritten to match, as a hostile author would."""
    vectors = plain / "x-ctxvault" / "vectors.f32"
    data = bytearray(vectors.read_bytes())
    data[4:8] = struct.pack("<f", float("nan"))
    vectors.write_bytes(bytes(data))
    manifest = plain / "x-ctxvault" / "manifest.json"
    spec = json.loads(manifest.read_text())
    spec["files"]["x-ctxvault/vectors.f32"]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest.write_text(json.dumps(spec))
    refused(make_vault(), plain)


def test_file_the_manifest_does_not_list_is_refused(make_vault: Callable[..., VaultService], plain: Path) -> None:
    (plain / "x-ctxvault" / "extra.json").write_text("{}")
    refused(make_vault(), plain)


def test_link_inside_a_bundle_folder_is_refused(make_vault: Callable[..., VaultService], plain: Path) -> None:
    os.symlink("/etc/passwd", plain / "x-ctxvault" / "passwd")
    refused(make_vault(), plain)


@pytest.mark.parametrize(
    ("fixture", "fmt"),
    [
        ("deep-nesting.json", None),
        ("deep-nesting.json", "pam"),
        ("nan.json", "pam"),
        ("tampered-hash.json", None),
        ("huge-count.json", None),
        ("pam-v2.json", None),
        ("traversal.tar", None),
        ("absolute.tar", None),
        ("symlink.tar", None),
        ("hardlink.tar", None),
        ("bomb.tar", None),
    ],
)
def test_hostile_fixture_is_refused(vault: VaultService, fixture: str, fmt: str | None) -> None:
    refused(vault, HOSTILE / fixture, fmt=fmt)


def test_huge_string_is_refused(vault: VaultService, tmp_path: Path) -> None:
    text = "x" * (records.MAX_TEXT_CHARS + 1)
    entry = {"id": "1", "memory": text, "created_at": "2025-01-01T00:00:00Z"}
    path = tmp_path / "mem0.json"
    path.write_text(json.dumps({"results": [entry]}))
    refused(vault, path, fmt="mem0")


def test_unpaired_surrogate_is_refused(vault: VaultService, tmp_path: Path) -> None:
    """JSON may escape half a surrogate pair; UTF-8 cannot hold it, so nothing may be written."""
    path = tmp_path / "mem0.json"
    path.write_text('[{"id": "ok", "memory": "fine"}, {"id": "bad", "memory": "half a pair \\ud83d here"}]')
    refused(vault, path, fmt="mem0")


def test_unpaired_surrogate_in_a_pam_tag_is_refused(vault: VaultService, tmp_path: Path) -> None:
    """pydantic raised UnicodeEncodeError on it; every JSON file now refuses unpaired surrogates as it is parsed."""
    store = json.loads((FIXTURES / "pam" / "memory-store.json").read_text())
    store["memories"][0]["tags"].append("\ud800x")
    path = tmp_path / "memory-store.json"
    path.write_text(json.dumps(store))
    refused(vault, path)


def test_chatgpt_timestamp_out_of_range_skips_that_conversation_only(vault: VaultService, tmp_path: Path) -> None:
    """datetime.fromtimestamp(1e20) raises OverflowError: that conversation is skipped with the reason, the other imported
    (issue 28: one bad conversation no longer refuses the whole export)."""
    conversations = json.loads((FIXTURES / "chatgpt" / "conversations.json").read_text())
    conversations[0]["create_time"] = 1e20
    folder = tmp_path / "chatgpt"
    folder.mkdir()
    (folder / "conversations.json").write_text(json.dumps(conversations))
    report = vault.import_source(OWNER, folder)
    assert report.new == 1 and [s.ref for s in report.skipped] == [conversations[0]["id"]]
    assert report.skipped[0].reason.startswith("unreadable conversation: OverflowError")
    conversations[1]["create_time"] = "soon"
    (folder / "conversations.json").write_text(json.dumps(conversations))
    refused(vault, folder)  # nothing readable left: NothingToImport, a BadBundle


def test_huge_count_is_refused(vault: VaultService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "MAX_ITEMS", 10)
    path = tmp_path / "memory.jsonl"
    path.write_text("\n".join(json.dumps({"type": "relation", "from": f"a{n}", "to": "b", "relationType": "knows"}) for n in range(11)))
    refused(vault, path)


def test_failure_while_writing_rolls_back_the_whole_import(vault: VaultService, tmp_path: Path) -> None:
    """Two live values for one preference key pass parsing but break a unique index mid-write."""
    good = tmp_path / "mem0.json"
    good.write_text(json.dumps([{"id": f"m{n}", "memory": f"fact {n}"} for n in range(5)]))
    batch = read_source(good, "mem0")
    from dataclasses import replace

    clash = [replace(batch.records[0], id=f"p{n}", kind="preference", key="diet", text=f"value {n}") for n in range(2)]
    bad = replace(batch, records=(*batch.records, *clash))
    before = vault.store.one("SELECT count(*) FROM items")
    with pytest.raises(VaultError):
        apply(vault.store, bad, vault.settings, actor="owner", dry_run=False)
    assert vault.store.one("SELECT count(*) FROM items")[0] == before[0]  # type: ignore[index]


def test_a_failure_after_the_vectors_are_staged_leaves_no_trace_in_the_index(
    plain: Path, make_vault: Callable[..., VaultService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index is built beside the open transaction; a rollback must take its vectors and temp file away too."""
    target = make_vault()
    monkeypatch.setattr(search, "SAVE_EVERY", 1)  # seal at once: a temp index file exists when the failure comes
    staged: list[search.StagedVectors] = []
    real_written = search.StagedVectors.written

    def written_then_fail(self: search.StagedVectors, lacking: np.ndarray) -> None:
        real_written(self, lacking)
        staged.append(self)
        raise VaultError("the disk went away")

    monkeypatch.setattr(search.StagedVectors, "written", written_then_fail)
    with pytest.raises(VaultError, match="disk went away"):
        target.import_source(OWNER, plain)
    assert staged, "the vectors were not being indexed when the import failed"
    assert target.store.one("SELECT count(*) FROM items")[0] == 0  # type: ignore[index]
    assert len(target._retriever._ensure_index()) == 0
    assert not [p for p in target.settings.index_dir.iterdir() if ".tmp" in p.name]
    monkeypatch.setattr(search.StagedVectors, "written", real_written)
    summary = target.import_source(OWNER, plain)  # and the same import then succeeds, index in step
    assert summary.vectors_reused > 0
    assert len(target._retriever._ensure_index()) == summary.vectors_reused


def test_an_id_twice_is_refused_after_earlier_rows_were_written(
    vault: VaultService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning streams into writing: the duplicate is found inside the transaction, which must roll back whole."""
    monkeypatch.setattr(merge, "ROWS_PER_STATEMENT", 2)  # rows are on their way to the table when the duplicate comes
    entries = [{"id": f"m{n}", "memory": f"fact number {n}", "created_at": f"2025-01-0{n + 1}T00:00:00Z"} for n in range(8)]
    entries.append({"id": "m0", "memory": "a different fact", "created_at": "2025-02-01T00:00:00Z"})
    path = tmp_path / "mem0.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(BadBundle, match="appears twice"):
        vault.import_source(OWNER, path, fmt="mem0")
    for table in ("items", "units", "units_fts"):
        assert vault.store.one(f"SELECT count(*) FROM {table}")[0] == 0, table  # type: ignore[index]
    assert vault.import_source(OWNER, _without_last(path), fmt="mem0").new == 8


def _without_last(path: Path) -> Path:
    entries = json.loads(path.read_text())[:-1]
    out = path.with_name("ok.json")
    out.write_text(json.dumps(entries))
    return out
