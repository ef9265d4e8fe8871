from __future__ import annotations

import numpy as np
import pytest

from vault.embed import Embedder, OnnxEmbedder, TorchEmbedder, load_embedder, model_path
from vault.errors import EmbedderUnavailable
from vault.settings import DEFAULT_MODEL, Settings

SENTENCES = [
    "I prefer window seats on long flights",
    '(1:56 pm on 8 May, 2023) Caroline said, "I went to a LGBTQ support group yesterday and it was so powerful."',
    "short",
    "Le café est fermé le dimanche.",
]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return load_embedder(Settings(home=__import__("pathlib").Path("unused")))


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
    assert onnx._bulk is None  # building it costs more than the texts take
    for i, text in enumerate(SENTENCES):
        assert float(onnx.encode_query(text) @ vecs[i]) > 0.9999
