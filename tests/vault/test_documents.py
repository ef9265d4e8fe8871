from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas.items import SearchQuery
from vault import Principal, VaultService
from vault.documents import binary_reason
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


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("program.txt", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 4),
        ("report.txt", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n" * 20),  # a PDF renamed .txt
        ("photo.md", b"\x89PNG\r\n\x1a\n" + b"IHDR" * 100),
        ("nul.html", b"<p>text</p>" + b"\x00" * 10),
        ("noise.txt", bytes(b % 32 for b in range(4000)).replace(b"\n", b"\x01")),
    ],
)
def test_binary_content_under_a_text_name_is_refused_by_sniffing(
    vault: VaultService, owner: Principal, tmp_path: Path, name: str, data: bytes
) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(InvalidInput):
        vault.add_document(owner, tmp_path / name)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / name).write_bytes(data)
    (folder / "real.txt").write_text("A real note about the garden shed.\n")
    report = vault.add_folder(owner, folder)
    assert report.added == 1 and len(report.skipped) == 1 and name in report.skipped[0]
    assert vault.list_documents(owner).total == 1


def test_latin1_and_unicode_text_is_not_taken_for_binary() -> None:
    assert binary_reason("Café crème, naïve façade — 日本語 ✓\n".encode()) is None
    assert binary_reason("Crème brûlée à la française\n".encode("latin-1")) is None  # a few invalid UTF-8 bytes
    assert binary_reason(b"") is None
    assert binary_reason(b"\x00") is not None


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=3000))
def test_any_printable_text_is_text(text: str) -> None:
    data = text.encode()
    assume(not any(data.startswith(magic) for magic in (b"%PDF-", b"PK\x03\x04", b"GIF8", b"age-encryption.org/")))
    assert binary_reason(data) is None


def test_a_corrupt_pdf_is_one_clear_error_and_pypdf_prints_nothing(
    vault: VaultService, owner: Principal, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _pdf(tmp_path / "whole.pdf", "The boiler pressure should read 1.5 bar")
    data = (tmp_path / "whole.pdf").read_bytes()
    (tmp_path / "half.pdf").write_bytes(data[: len(data) // 2])
    (tmp_path / "fake.pdf").write_bytes(b"just text named .pdf\n")
    for name in ("half.pdf", "fake.pdf"):
        with pytest.raises(InvalidInput) as raised:
            vault.add_document(owner, tmp_path / name)
        assert "PDF" in raised.value.message
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # before the fix: "EOF marker not found" on stderr
    assert vault.add_document(owner, tmp_path / "whole.pdf").chunks == 1
