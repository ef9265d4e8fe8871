"""Which characters of app- or import-controlled text a terminal or a page would act on rather than show.

Every Unicode control (Cc: C0, DEL, C1, with ESC starting CSI/OSC sequences and U+009B a
one-character CSI), every format character (Cf: bidi marks, embeddings, overrides and
isolates that reorder what follows them, zero-width spaces and joiners, the soft hyphen,
U+180E, U+FEFF, tag characters U+E0000–U+E007F) and the line and paragraph separators
(Zl, Zp). The CLI makes them visible (cli/output.py); names an app chooses refuse them.
"""

from __future__ import annotations

import unicodedata

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def is_unsafe(char: str) -> bool:
    """Whether one character is a control, format or separator character (``UNSAFE_CATEGORIES``)."""
    return unicodedata.category(char) in UNSAFE_CATEGORIES


def first_unsafe(text: str) -> str | None:
    """The first unsafe character of ``text``, or None."""
    return next((c for c in text if not (" " <= c <= "~") and is_unsafe(c)), None)
