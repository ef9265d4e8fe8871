from __future__ import annotations

from pathlib import Path

import pytest

from schemas.items import SearchQuery
from vault import Principal, VaultService
from vault.errors import InvalidInput, TooLarge


def _pdf(path: Path, text: str) -> None:
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    c.drawString(72, 720, text)
    c.save()


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "trip.md").write_text("# Lisbon trip\n\nWe fly to Lisbon in May and stay near Alfama.\n")
    (folder / "sub" / "recipe.txt").write_text("Grandma's lentil soup: lentils, cumin, lemon.\n" * 60)
    (folder / "page.html").write_text(
        "<html><head><title>Bike</title><script>var secret=1</script></head><body><p>Chain lube every 300 km</p></body></html>"
    )
    _pdf(folder / "manual.pdf", "The boiler pressure should read 1.5 bar")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (folder / ".hidden.md").write_text("hidden notes are skipped")
    return folder


def test_a_folder_is_added_with_every_supported_file(vault: VaultService, owner: Principal, notes: Path) -> None:
    ticks: list[tuple[int, int, str]] = []
    report = vault.add_folder(owner, notes, progress=lambda done, total, name: ticks.append((done, total, name)))
    assert (report.added, report.replaced, report.unchanged) == (4, 0, 0)
    assert [s.split(": ")[-1] for s in report.skipped] == ["unsupported type"]
    files = [(done, total) for done, total, name in ticks if name != "embedding chunks"]
    chunks = [(done, total) for done, total, name in ticks if name == "embedding chunks"]
    assert files[-1] == (5, 5)  # every file, supported or not, then the chunks of the added ones
    assert chunks[-1] == (sum(d.chunks for d in report.documents),) * 2
    for query, title in (("Alfama", "Lisbon trip"), ("cumin", "recipe"), ("lube", "Bike"), ("boiler", "manual")):
        hits = vault.search(owner, SearchQuery(text=query, mode="lexical")).hits
        assert hits and hits[0].title == title and hits[0].kind == "document"
    assert not vault.search(owner, SearchQuery(text="secret", mode="lexical")).hits


def test_re_adding_an_unchanged_folder_is_a_no_op(vault: VaultService, owner: Principal, notes: Path) -> None:
    vault.add_folder(owner, notes)
    units_before = vault.store.query("SELECT uid, text FROM units ORDER BY uid")
    report = vault.add_folder(owner, notes)
    assert (report.added, report.replaced, report.unchanged) == (0, 0, 4)
    assert vault.store.query("SELECT uid, text FROM units ORDER BY uid") == units_before


def test_a_changed_file_replaces_its_chunks(vault: VaultService, owner: Principal, notes: Path) -> None:
    first = vault.add_document(owner, notes / "trip.md")
    (notes / "trip.md").write_text("# Lisbon trip\n\nChanged plans: we now stay in Belem.\n")
    second = vault.add_document(owner, notes / "trip.md")
    assert second.action == "replaced" and second.item_id == first.item_id
    assert not vault.search(owner, SearchQuery(text="Alfama", mode="lexical")).hits
    assert vault.search(owner, SearchQuery(text="Belem", mode="lexical")).hits[0].item_id == first.item_id
    detail = vault.show_document(owner, first.item_id)
    assert detail.filename == "trip.md" and "Belem" in detail.chunks[0]


def test_long_documents_are_split_into_overlapping_chunks(vault: VaultService, owner: Principal, notes: Path) -> None:
    added = vault.add_document(owner, notes / "sub" / "recipe.txt")
    assert added.chunks > 1
    spans = vault.store.query("SELECT start, end FROM units WHERE item_id = ? ORDER BY seq", [added.item_id])
    assert all(spans[i + 1]["start"] < spans[i]["end"] for i in range(len(spans) - 1))


def test_unsupported_empty_or_huge_files_are_refused(vault: VaultService, owner: Principal, notes: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        vault.add_document(owner, notes / "photo.jpg")
    (tmp_path / "empty.txt").write_text("   \n")
    with pytest.raises(InvalidInput):
        vault.add_document(owner, tmp_path / "empty.txt")
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (vault.settings.max_document_bytes + 1))
    with pytest.raises(TooLarge):
        vault.add_document(owner, big)
    with pytest.raises(InvalidInput):
        vault.add_document(owner, tmp_path / "missing.md")
    assert vault.list_documents(owner).total == 0


def test_removing_a_document_takes_its_chunks_out_of_search(vault: VaultService, owner: Principal, notes: Path) -> None:
    added = vault.add_document(owner, notes / "trip.md")
    vault.remove_document(owner, added.item_id)
    assert not vault.search(owner, SearchQuery(text="Lisbon", mode="lexical")).hits
    assert vault.list_documents(owner).total == 0
