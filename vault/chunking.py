"""Split document text into overlapping chunks (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chunk:
    seq: int
    start: int
    end: int
    text: str


_BREAKS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


def _cut(text: str, start: int, hard_end: int, size: int) -> int:
    """The best end for a chunk starting at ``start``: a paragraph, sentence or word break."""
    if hard_end >= len(text):
        return len(text)
    floor = start + size // 2
    for sep in _BREAKS:
        at = text.rfind(sep, floor, hard_end)
        if at != -1:
            return at + len(sep)
    return hard_end


def chunk_text(text: str, size: int = 1200, overlap: int = 200) -> list[Chunk]:
    """Chunks of at most ``size`` characters, each starting ``overlap`` before the previous end.

    Every character of ``text`` lies in at least one chunk; chunk boundaries prefer
    paragraph, then sentence, then word breaks.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError("need size > 0 and 0 <= overlap < size")
    chunks: list[Chunk] = []
    start = 0
    n = len(text)
    while start < n:
        end = _cut(text, start, min(start + size, n), size)
        chunks.append(Chunk(len(chunks), start, end, text[start:end]))
        if end >= n:
            break
        nxt = end - overlap
        if overlap:
            # Begin the overlap on a word boundary when one is near.
            space = text.find(" ", nxt, end)
            if space != -1 and space + 1 < end:
                nxt = space + 1
        start = max(nxt, start + 1)
    return [c for c in chunks if c.text.strip()] or ([Chunk(0, 0, n, text)] if text.strip() else [])
