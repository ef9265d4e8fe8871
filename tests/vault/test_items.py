from __future__ import annotations

import re
import sys
import time
import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from vault.items import encode_ulid, new_ids, normalize


@given(st.binary(min_size=16, max_size=16))
def test_ulid_encoding_matches_the_reference_library(value: bytes) -> None:
    assert encode_ulid(value) == str(ULID.from_bytes(value))


def test_new_ids_are_unique_ulids_of_now_and_decode_to_their_bytes() -> None:
    before = time.time()
    ids = new_ids(5000)
    assert len(set(ids)) == 5000 and all(len(i) == 26 for i in ids)
    for i in ids[:200]:
        parsed = ULID.from_str(i)
        assert encode_ulid(parsed.bytes) == i
        assert before - 1 <= parsed.timestamp <= time.time() + 1


SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]


def test_every_character_split_on_is_unprintable_except_the_space() -> None:
    # normalize() returns a printable text without double, leading or trailing spaces as it is.
    assert [c for c in SPACES if c.isprintable()] == [" "]


@given(
    st.text(alphabet=st.characters(codec="utf-8"))
    | st.text(alphabet=[*SPACES, "a", "Å", "e", "\u0301", "B"])
    | st.lists(st.sampled_from(["word", "Ünï", "e\u0301", " ", "  ", "\u00a0", "\t"]), max_size=8).map("".join)
)
def test_normalize_is_the_pam_rule(text: str) -> None:
    # PAM v1.0: trim, lowercase, NFC, collapse whitespace runs to one space.
    assert normalize(text) == re.sub(r"\s+", " ", unicodedata.normalize("NFC", text.strip().lower())).strip()
