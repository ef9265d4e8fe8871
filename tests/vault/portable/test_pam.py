"""PAM details: our fast integrity checksum equals the RFC 8785 reference, and content hashes agree."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from portable_ai_memory.core.integrity import compute_content_hash, compute_integrity_checksum

from vault.items import content_hash
from vault.portable.pam import integrity_checksum

SCALARS = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=30)
JSON = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({"id": st.text(max_size=12), "content": st.text(max_size=40), "metadata": JSON}), max_size=6))
def test_integrity_checksum_matches_the_rfc8785_reference(memories: list[dict[str, object]]) -> None:
    assert integrity_checksum(memories) == compute_integrity_checksum(memories)  # type: ignore[arg-type]


@given(st.text(max_size=200))
def test_vault_content_hash_is_pam_content_hash(text: str) -> None:
    assert content_hash(text) == compute_content_hash(text)
