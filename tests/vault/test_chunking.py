from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.chunking import chunk_text


@given(text=st.text(min_size=1, max_size=5000), size=st.integers(20, 800), overlap_frac=st.floats(0, 0.5))
def test_chunks_cover_every_character_in_order(text: str, size: int, overlap_frac: float) -> None:
    overlap = int(size * overlap_frac)
    chunks = chunk_text(text, size, overlap)
    covered = [False] * len(text)
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert len(c.text) <= size
        for i in range(c.start, c.end):
            covered[i] = True
    uncovered = [i for i, done in enumerate(covered) if not done]
    # Only whitespace may be left out (whitespace-only chunks are dropped).
    assert all(text[i].isspace() for i in uncovered)
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_chunks_prefer_paragraph_breaks() -> None:
    text = ("First paragraph sentence. " * 20).strip() + "\n\n" + ("Second paragraph words. " * 20)
    chunks = chunk_text(text, size=600, overlap=50)
    assert chunks[0].text.endswith("\n\n")


def test_bad_chunk_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        chunk_text("abc", size=10, overlap=10)
