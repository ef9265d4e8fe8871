"""Export → import: lossless, idempotent, and readable by `age` and `pam validate` alone."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import select
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pyrage import x25519

from schemas.items import SearchQuery
from schemas.portable import Selection
from tests.vault.portable.conftest import pam_cli, populate, tool
from vault import OWNER, Principal, VaultService
from vault.errors import ScopeDenied
from vault.items import new_id
from vault.portable import bundle
from vault.portable.importers import read_source
from vault.portable.records import VectorSet

ITEM_SQL = "SELECT * FROM items ORDER BY id"


def snapshot(vault: VaultService) -> dict[str, object]:
    """Everything canonical and derived a round trip must carry, keyed by item id."""
    items = [dict(r) for r in vault.store.query(ITEM_SQL)]
    units = [tuple(r) for r in vault.store.query("SELECT item_id, seq, text, start, end FROM units ORDER BY item_id, seq")]
    files = [
        tuple(r) for r in vault.store.query("SELECT item_id, path, filename, mime, size, sha256, data FROM doc_files ORDER BY item_id")
    ]
    vectors = [
        tuple(r)
        for r in vault.store.query(
            "SELECT u.item_id, u.seq, m.name, m.dim, v.vec FROM vectors v JOIN models m ON m.id = v.model JOIN units u USING (uid) ORDER BY 1, 2"
        )
    ]
    return {"items": items, "units": units, "files": files, "vectors": vectors}


@pytest.fixture
def identity(tmp_path: Path) -> tuple[x25519.Identity, Path]:
    ident = x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"# test key\n{ident}\n")
    return ident, key


def test_round_trip_of_thousands_of_items_is_identical_and_reimport_changes_nothing(
    source: VaultService, make_vault: Callable[..., VaultService], identity: tuple[x25519.Identity, Path], tmp_path: Path
) -> None:
    populate(source)
    ident, key = identity
    out = tmp_path / "vault.age"
    summary = source.export_bundle(OWNER, Selection(), out, recipients=[str(ident.to_public())])
    assert summary.counts.memories == 3000 and summary.counts.documents == 5 and summary.counts.preference_versions == 3
    assert bundle.is_age_file(out)

    target = make_vault()
    first = target.import_source(OWNER, out, identity_file=key)
    assert first.detected == "bundle" and first.new == 3000 + 5 + 6 and first.skipped == []
    assert first.vectors_reused == summary.counts.vectors
    assert snapshot(target) == snapshot(source)
    assert target.preference_history(OWNER, "diet") == source.preference_history(OWNER, "diet")
    for text in ("zürich café", "Paragraph 7 document 3", "vegetarian", "東京"):
        query = SearchQuery(text=text, limit=20, mode="lexical")
        assert target.search(OWNER, query).hits == source.search(OWNER, query).hits

    again = target.import_source(OWNER, out, identity_file=key)
    assert (again.new, again.updated, len(again.skipped), again.unchanged) == (0, 0, 0, first.new)
    assert snapshot(target) == snapshot(source)


def test_dry_run_reports_counts_and_writes_nothing(source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path) -> None:
    populate(source, memories=20, documents=1)
    source.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    target = make_vault()
    before = snapshot(target)
    report = target.import_source(OWNER, tmp_path / "plain", dry_run=True)
    assert report.dry_run and report.new == 20 + 1 + 6 and report.by_kind == {"memory": 20, "document": 1, "preference": 6}
    assert snapshot(target) == before


def test_every_bundle_passes_pam_validate_and_so_does_its_embeddings_file(source: VaultService, tmp_path: Path) -> None:
    populate(source, memories=50, documents=2)
    out = tmp_path / "plain"
    source.export_bundle(OWNER, Selection(), out, plaintext=True)
    pam = pam_cli()
    whole = subprocess.run([pam, "validate", str(out)], capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    alone = subprocess.run([pam, "validate", str(out / "embeddings.json")], capture_output=True, text=True, timeout=120)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    store = json.loads((out / "memory-store.json").read_text())
    assert len(store["memories"]) == 50 + 6 and store["integrity"]["total_memories"] == 56


def test_debian_age_opens_a_recipient_export(source: VaultService, identity: tuple[x25519.Identity, Path], tmp_path: Path) -> None:
    populate(source, memories=30, documents=1)
    ident, key = identity
    out = tmp_path / "vault.age"
    source.export_bundle(OWNER, Selection(), out, recipients=[str(ident.to_public())])
    plain = subprocess.run([tool("age"), "-d", "-i", str(key), str(out)], capture_output=True, timeout=60, check=True).stdout
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run([tool("tar"), "-x", "-C", str(unpacked)], input=plain, check=True, timeout=60)
    assert (unpacked / "memory-store.json").is_file() and (unpacked / "x-ctxvault" / "manifest.json").is_file()
    result = subprocess.run([pam_cli(), "validate", str(unpacked)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout


def _age_decrypt_through_pty(path: Path, out: Path, passphrase: str) -> int:
    """Run `age -d` with a controlling terminal (it reads passphrases from /dev/tty only)."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execv(tool("age"), ["age", "-d", "-o", str(out), str(path)])
    sent, buffer = False, b""
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            os.kill(pid, 9)
            break
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        buffer += chunk
        if not sent and b"passphrase" in buffer.lower():
            os.write(fd, passphrase.encode() + b"\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status)


def test_debian_age_opens_a_passphrase_export_through_a_pty(source: VaultService, tmp_path: Path) -> None:
    tool("age")
    populate(source, memories=10, documents=0)
    out = tmp_path / "vault.age"
    source.export_bundle(OWNER, Selection(), out, passphrase="bundle passphrase 42")
    assert bundle.is_passphrase_file(out)
    plain = tmp_path / "vault.tar"
    assert _age_decrypt_through_pty(out, plain, "bundle passphrase 42") == 0
    listing = subprocess.run([tool("tar"), "-t", "-f", str(plain)], capture_output=True, text=True, check=True, timeout=60).stdout
    assert "memory-store.json" in listing.split()


def test_passphrase_bundle_round_trips(source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path) -> None:
    populate(source, memories=40, documents=1)
    out = tmp_path / "vault.age"
    source.export_bundle(OWNER, Selection(), out, passphrase="bundle passphrase 42")
    target = make_vault()
    assert target.import_source(OWNER, out, passphrase="bundle passphrase 42").new == 40 + 1 + 6
    assert snapshot(target) == snapshot(source)


def test_import_reuses_embeddings_only_when_the_model_matches(
    source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path
) -> None:
    populate(source, memories=10, documents=1)
    source.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    same = make_vault("same").import_source(OWNER, tmp_path / "plain", dry_run=True)
    other = make_vault("other", model="some-other-model").import_source(OWNER, tmp_path / "plain", dry_run=True)
    assert same.vectors_reused > 10 and other.vectors_reused == 0


def test_scoped_export_holds_only_the_selected_slice(source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path) -> None:
    populate(source, memories=30, documents=2)
    selection = Selection(spaces=["work"], kinds=["memory"], max_sensitivity="medium")
    summary = source.export_bundle(OWNER, selection, tmp_path / "plain", plaintext=True)
    target = make_vault()
    target.import_source(OWNER, tmp_path / "plain")
    items = target.list_items(OWNER, limit=1000).items
    assert summary.counts.memories == len(items) == 10
    assert all(i.space == "work" and i.kind == "memory" and i.sensitivity in ("low", "medium") for i in items)
    assert subprocess.run([pam_cli(), "validate", str(tmp_path / "plain")], capture_output=True, timeout=120).returncode == 0


def test_markdown_profile_lists_preferences_and_memories_by_space(source: VaultService) -> None:
    populate(source, memories=6, documents=1)
    text = source.export_profile(OWNER, Selection())
    assert "## Preferences" in text and "- **diet**: vegetarian" in text and "- **travel.seat**: window" in text
    assert "### Work" in text and "### Health" in text and "Document 0" in text
    work_only = source.export_profile(OWNER, Selection(spaces=["work"]))
    assert "### Health" not in work_only and "diet" not in work_only


def test_export_and_import_are_owner_only(source: VaultService, tmp_path: Path) -> None:
    app = Principal.app("app-1", "some app")
    with pytest.raises(ScopeDenied):
        source.export_bundle(app, Selection(), tmp_path / "x", plaintext=True)
    with pytest.raises(ScopeDenied):
        source.import_source(app, tmp_path)


def test_newer_preference_from_a_bundle_supersedes_the_vaults_value_and_keeps_history(
    source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from tests.vault.portable.conftest import fake_vectors

    target = make_vault()
    monkeypatch.setattr(target._retriever, "sync", lambda *a, **k: fake_vectors(target))
    target.set_preference(OWNER, "diet", "omnivore", now=datetime(2025, 1, 1, tzinfo=UTC))
    source.set_preference(OWNER, "diet", "vegan", now=datetime(2025, 6, 1, tzinfo=UTC))
    source.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    target.import_source(OWNER, tmp_path / "plain")
    assert target.get_preference(OWNER, "diet").value == "vegan"
    assert [i.text for i in target.preference_history(OWNER, "diet")] == ["vegan", "omnivore"]

    later = make_vault("later")
    monkeypatch.setattr(later._retriever, "sync", lambda *a, **k: fake_vectors(later))
    later.set_preference(OWNER, "diet", "pescatarian", now=datetime(2025, 9, 1, tzinfo=UTC))
    later.import_source(OWNER, tmp_path / "plain")  # the bundle's value is older: it joins the history
    assert later.get_preference(OWNER, "diet").value == "pescatarian"
    assert [i.text for i in later.preference_history(OWNER, "diet")] == ["pescatarian", "vegan"]


def test_item_forgotten_in_the_vault_is_not_brought_back(source: VaultService, tmp_path: Path) -> None:
    populate(source, memories=3, documents=0)
    source.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    gone = source.list_items(OWNER, kinds=["memory"], limit=1).items[0]
    source.forget(OWNER, gone.id)
    report = source.import_source(OWNER, tmp_path / "plain")
    assert [s.reason for s in report.skipped] == ["forgotten in this vault"] and report.new == 0


def test_ssh_key_recipient_export_opens_with_the_ssh_private_key(
    source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path
) -> None:
    populate(source, memories=5, documents=0)
    key = tmp_path / "id_ed25519"
    subprocess.run([tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    out = tmp_path / "vault.age"
    source.export_bundle(OWNER, Selection(), out, recipients=[str(key.with_suffix(".pub"))])
    assert make_vault().import_source(OWNER, out, identity_file=key).new == 5 + 6


def test_units_the_source_has_no_vector_for_are_embedded_after_a_bulk_import(
    source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path
) -> None:
    """A bulk import records its units itself (no per-row trigger); the ones without a vector must still be embedded."""
    populate(source, memories=12, documents=0)
    source.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    batch = read_source(tmp_path / "plain")
    assert batch.vectors is not None
    dropped = sorted(batch.vectors.keys)[:3]
    rows = {k: v for k, v in batch.vectors.by_key().items() if k not in dropped}
    batch = dataclasses.replace(batch, vectors=VectorSet.from_rows(batch.vectors.model, batch.vectors.dim, rows))
    target = make_vault()
    target._retriever.sync()  # the once-per-process scan for units lacking vectors is behind us
    summary = target.import_items(OWNER, batch)
    assert summary.vectors_reused == len(rows)
    stats = target._retriever.stats()
    assert stats.units > len(rows)  # some units came without a vector
    assert stats.missing_vectors == 0 and stats.vectors == stats.index_size == stats.units


def test_an_import_that_updates_items_keeps_the_index_in_step_with_the_vectors_table(
    source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path
) -> None:
    """Updated items lose their units (and vectors) inside the import's transaction while new vectors are
    indexed batch by batch beside it: the index must end up holding exactly the table's vectors."""
    populate(source, memories=12, documents=0)
    source.export_bundle(OWNER, Selection(), tmp_path / "plain", plaintext=True)
    batch = read_source(tmp_path / "plain")
    target = make_vault()
    target._retriever.sync()
    first = target.import_items(OWNER, batch)
    assert first.vectors_reused > 0
    old = {r[0] for r in target.store.query("SELECT uid FROM vectors")}
    memories = [r for r in batch.records if r.kind == "memory"][:3]
    changed = {
        r.id: dataclasses.replace(
            r, text=f"revised note {n}: the harbour ferry leaves at noon", hash=None, updated_at=r.updated_at.replace(year=2099)
        )
        for n, r in enumerate(memories)
    }
    # New records with vectors in the same batch: the vault indexes those beside the transaction.
    added = [dataclasses.replace(r, id=new_id(), text=f"fresh note {n}", hash=None) for n, r in enumerate(memories)]
    assert batch.vectors is not None
    have = batch.vectors.by_key()
    rows = {**have, **{(a.id, 0): have[(r.id, 0)] for a, r in zip(added, memories, strict=True)}}
    batch = dataclasses.replace(
        batch,
        records=(*(changed.get(r.id, r) for r in batch.records), *added),
        vectors=VectorSet.from_rows(batch.vectors.model, batch.vectors.dim, rows),
    )
    second = target.import_items(OWNER, batch)
    assert second.updated == 3 and second.new == 3 and second.vectors_reused == 3
    retriever = target._retriever
    retriever.sync()  # embeds the revised units (their source vectors were for the old texts)
    table = {r[0] for r in target.store.query("SELECT uid FROM vectors")}
    assert len(table - old) == 6 and len(old - table) == 3
    assert set(retriever._ensure_index().ids().tolist()) == table
    hits = target.search(OWNER, SearchQuery(text="harbour ferry at noon", limit=3, mode="dense")).hits
    assert hits and hits[0].text.startswith("revised note")


def test_history_travels_in_the_bundle_and_every_export_with_it_passes_pam_validate(
    source: VaultService, make_vault: Callable[..., VaultService], tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from schemas.items import MemoryIn

    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    item = source.remember(OWNER, MemoryIn(text="My daughter Alice is 7 years old"), now=t0).item
    source.edit(OWNER, item.id, text="My daughter Alice is 8 years old", tags=["family"], now=t1)
    doc = tmp_path / "plan.md"
    doc.write_text("# Plan\n\nBrew the tea.\n")
    added = source.add_document(OWNER, doc).item_id
    source.edit(OWNER, added, space="work", now=t1)
    out = tmp_path / "plain"
    source.export_bundle(OWNER, Selection(), out, plaintext=True)
    result = subprocess.run([pam_cli(), "validate", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    target = make_vault()
    target.import_source(OWNER, out)
    assert target.item_history(OWNER, item.id).versions == source.item_history(OWNER, item.id).versions
    assert [v.space for v in target.item_history(OWNER, added).versions] == ["personal"]
    # A scoped export leaves out a version outside its selection, as it would an item.
    source.edit(OWNER, item.id, sensitivity="high", now=datetime(2026, 3, 1, tzinfo=UTC))
    source.edit(OWNER, item.id, sensitivity="low", now=datetime(2026, 4, 1, tzinfo=UTC))
    source.export_bundle(OWNER, Selection(max_sensitivity="low"), tmp_path / "low", plaintext=True)
    store = json.loads((tmp_path / "low" / "memory-store.json").read_text())
    (exported,) = [m for m in store["memories"] if m["id"] == item.id]
    assert [v["sensitivity"] for v in exported["metadata"]["x-ctxvault"]["history"]] == ["low", "low"]
    assert subprocess.run([pam_cli(), "validate", str(tmp_path / "low")], capture_output=True, timeout=120).returncode == 0


def test_a_pasted_identity_opens_a_recipient_bundle_like_its_file(
    source: VaultService, make_vault: Callable[..., VaultService], identity: tuple[x25519.Identity, Path], tmp_path: Path
) -> None:
    from schemas.items import MemoryIn
    from vault.errors import InvalidInput

    source.remember(OWNER, MemoryIn(text="Standup is at 10:00", space="work"))
    ident, key = identity
    out = tmp_path / "pasted.age"
    source.export_bundle(OWNER, Selection(), out, recipients=[str(ident.to_public())])
    target = make_vault("pasted")
    # The console's identity field: the key file's text, comments and blank lines included.
    summary = target.import_source(OWNER, out, identity="# created by age-keygen\n\n" + key.read_text() + "\n", dry_run=True)
    assert summary.new == 1 and summary.detected == "bundle"
    with pytest.raises(InvalidInput, match="no age identity"):
        target.import_source(OWNER, out, identity="not a key")
