from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vault.embed import (
    Embedder,
    OnnxEmbedder,
    TorchEmbedder,
    bucket_order,
    load_embedder,
    model_path,
    onnx_file,
    token_batches,
    torch_threads,
)
from vault.errors import EmbedderUnavailable
from vault.model_files import INT8_SUFFIX
from vault.settings import DEFAULT_MODEL, Settings

SENTENCES = [
    "I prefer window seats on long flights",
    '(1:56 pm on 8 May, 2023) Caroline said, "I went to a LGBTQ support group yesterday and it was so powerful."',
    "short",
    "Le café est fermé le dimanche.",
]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The fp32 model: these tests pin its id and its exact agreement between batches and queries."""
    return load_embedder(Settings(home=Path("unused"), model=DEFAULT_MODEL))


def test_default_model_loads_from_the_bundled_package() -> None:
    assert model_path(DEFAULT_MODEL).endswith("model")


def test_encoded_vectors_are_unit_length_rows(embedder: Embedder) -> None:
    vecs = embedder.encode(SENTENCES)
    assert vecs.shape == (len(SENTENCES), embedder.dim) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_a_query_encodes_like_the_same_text_in_a_batch(embedder: Embedder) -> None:
    batch = embedder.encode(SENTENCES)
    for i, text in enumerate(SENTENCES):
        assert float(embedder.encode_query(text) @ batch[i]) > 0.9999


def test_onnx_backend_gives_the_same_vectors_as_torch() -> None:
    onnx = OnnxEmbedder(DEFAULT_MODEL)
    torch = TorchEmbedder(DEFAULT_MODEL)
    cos = (onnx.encode(SENTENCES) * torch.encode(SENTENCES)).sum(axis=1)
    assert cos.min() > 0.9999
    assert float(onnx.encode_query(SENTENCES[0]) @ torch.encode_query(SENTENCES[0])) > 0.9999


def test_auto_backend_prefers_onnx(embedder: Embedder) -> None:
    assert embedder.backend == "onnx" and embedder.model_id == DEFAULT_MODEL


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(EmbedderUnavailable):
        load_embedder(Settings(home=__import__("pathlib").Path("unused")), backend="tpu")  # type: ignore[arg-type]


def test_a_few_texts_are_encoded_on_the_query_session_without_building_the_bulk_one() -> None:
    onnx = OnnxEmbedder(DEFAULT_MODEL)
    vecs = onnx.encode(SENTENCES)
    assert onnx._bulk == []  # building them costs more than the texts take
    for i, text in enumerate(SENTENCES):
        assert float(onnx.encode_query(text) @ vecs[i]) > 0.9999


# -- bulk encoding: buckets, threads, the int8 variant ------------------------------------------

# Lengths from one word to past the 256-token limit, in an order no sort produces.
MIXED = [("word " * n).strip() + f" {n}" for n in (40, 1, 300, 7, 120, 3, 60, 2, 15, 200, 9, 80)]


def test_bucket_order_sorts_by_length_and_keeps_ties_in_input_order() -> None:
    assert bucket_order([5, 1, 5, 3, 1]).tolist() == [1, 4, 3, 0, 2]


def test_bucketed_encoding_keeps_input_order_and_the_unbucketed_vectors() -> None:
    onnx = OnnxEmbedder(DEFAULT_MODEL)
    bucketed = onnx.encode(MIXED, batch_size=3)
    onnx.bucketing = False
    plain = onnx.encode(MIXED, batch_size=3)
    one_by_one = np.stack([onnx.encode_query(t) for t in MIXED])
    assert np.allclose(bucketed, plain, atol=1e-5)
    assert np.allclose(bucketed, one_by_one, atol=1e-5)  # row i is text i, whatever batch it ran in


def test_progress_counts_every_text_once() -> None:
    seen: list[tuple[int, int]] = []
    OnnxEmbedder(DEFAULT_MODEL).encode(MIXED, batch_size=5, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (len(MIXED), len(MIXED)) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_bulk_work_runs_on_one_single_thread_session_per_worker_and_queries_keep_one_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CTXVAULT_EMBED_THREADS", "2")
    onnx = OnnxEmbedder(DEFAULT_MODEL)
    onnx.budget = 16  # many small batches: both workers take some
    parallel = onnx.encode(MIXED)
    sessions = onnx.bulk_sessions()
    assert len(sessions) == 2 and all(s.get_session_options().intra_op_num_threads == 1 for s in sessions)
    assert onnx._query.get_session_options().intra_op_num_threads == 1
    assert np.allclose(parallel, onnx.encode(MIXED, session=onnx._query), atol=1e-5)  # same rows as one worker


def test_token_batches_stay_within_the_budget_and_cover_every_text_once() -> None:
    lengths = [3, 200, 7, 7, 50, 600, 12, 1, 90]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = token_batches(lengths, order, max_texts=3, budget=100)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100  # a text past the budget goes alone


def test_torch_thread_count_is_restored_after_bulk_work() -> None:
    import torch

    before = torch.get_num_threads()
    model = TorchEmbedder(DEFAULT_MODEL)
    model.encode(MIXED)
    model.encode_query("one")
    assert torch.get_num_threads() == before
    with torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_the_int8_variant_is_its_own_model_id_close_to_fp32() -> None:
    int8 = load_embedder(Settings(home=Path("unused"), model=DEFAULT_MODEL + INT8_SUFFIX))
    fp32 = OnnxEmbedder(DEFAULT_MODEL)
    assert int8.model_id == DEFAULT_MODEL + "#int8" and int8.backend == "onnx"
    assert onnx_file(int8.model_id) != onnx_file(DEFAULT_MODEL) and onnx_file(int8.model_id).exists()
    cos = (int8.encode(SENTENCES + MIXED) * fp32.encode(SENTENCES + MIXED)).sum(axis=1)
    assert cos.mean() > 0.97 and cos.min() > 0.85  # close, not equal: never mixed with fp32 vectors
    # Activations are quantised per batch (one scale per tensor): a text's vector moves a little with its batch.
    assert float(int8.encode_query(SENTENCES[0]) @ int8.encode(SENTENCES)[0]) > 0.98


def test_torch_refuses_the_int8_variant() -> None:
    with pytest.raises(EmbedderUnavailable):
        load_embedder(Settings(home=Path("unused"), model=DEFAULT_MODEL + INT8_SUFFIX), backend="torch")


def test_switching_to_int8_marks_the_fp32_vectors_stale_instead_of_mixing_them(settings: Settings) -> None:
    from dataclasses import replace

    from schemas.items import MemoryIn
    from tests.conftest import PASSPHRASE
    from vault import OWNER, init_vault, open_vault, vault_model

    fp32 = replace(settings, model=DEFAULT_MODEL)
    init_vault(fp32, PASSPHRASE)
    svc = open_vault(fp32, PASSPHRASE)
    svc.remember(OWNER, MemoryIn(text="I keep bees on the roof"))
    assert svc.retrieval_stats(OWNER).vectors == 1
    svc.close()
    svc = open_vault(settings, PASSPHRASE)
    try:
        with svc.store.transaction():  # the switch as `reindex --model` records it, without its re-embedding
            vault_model.record(svc.store, DEFAULT_MODEL + INT8_SUFFIX)
        svc.close()
        svc = open_vault(settings, PASSPHRASE)
        svc.remember(OWNER, MemoryIn(text="My sister lives in Lisbon"))
        report = svc.retrieval_stats(OWNER)
        assert report.stale_vectors and report.vectors == 0  # nothing embedded by int8 beside fp32 vectors
        svc.reindex(OWNER)
        report = svc.retrieval_stats(OWNER)
        assert not report.stale_vectors and report.vectors == 2 and report.model == DEFAULT_MODEL + "#int8"
    finally:
        svc.close()
