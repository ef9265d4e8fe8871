"""Local sentence embeddings: one small seam, a torch backend and an ONNX backend of the same model.

Any sentence-transformers model can be used (``CTXVAULT_MODEL`` for a new vault, `ctxvault
reindex --model` for an existing one: vault/vault_model.py); its id is recorded with every vector. The model's files and the derived ONNX exports are vault/model_files.py.

The ONNX backend encodes a query in about half the time of torch with the same vectors
(BRIEF §6; tests/vault/test_embed.py checks the agreement), so ``auto`` picks it whenever
the export can be made. Queries are encoded on one thread: on this 2-core machine a second
thread makes single-query latency several times worse under load (BRIEF §6).

Bulk encoding (``encode`` of many texts) is length-bucketed: the texts are tokenised once,
run in batches of similar token counts (a batch is padded to its longest text) of at most
``BATCH_TOKENS`` tokens, and the vectors are put back in input order. The batches are shared
out to ``bulk_threads()`` workers (both cores here), each running its own one-thread session:
data parallel, not one session's intra-op threads, because an intra-op pool waits at every
operator for its slowest thread, and on a shared machine one of them is always descheduled
(2 intra-op threads ran at 0.53-0.56x of one thread at load average 5: docs/benchmarks.md, "Second pass").
A query never waits for bulk work, since the query session is separate and the background
embedder runs in a lower-priority process that pauses while a command is served (vault/backlog.py).

torch, transformers, sentence_transformers and onnxruntime are imported inside
functions only, so commands that never search never pay for them.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from vault.errors import EmbedderUnavailable
from vault.model_files import cache_dir, export_onnx, model_path, offline, onnx_file, split_variant
from vault.settings import Settings

if TYPE_CHECKING:
    from numpy.typing import NDArray

Progress = Callable[[int, int], None]
Backend = Literal["auto", "onnx", "torch"]


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


def bulk_threads() -> int:
    """Intra-op threads for bulk encoding: ``CTXVAULT_EMBED_THREADS``, else every core."""
    env = os.environ.get("CTXVAULT_EMBED_THREADS", "")
    return max(1, int(env)) if env.isdigit() else os.cpu_count() or 1


def bucket_order(lengths: Sequence[int]) -> NDArray[np.int64]:
    """Positions shortest first (stable): consecutive batches hold texts of similar lengths and pad little."""
    return np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")


# Tokens per bulk batch (rows x padded width). Small batches keep a layer's activations in the
# caches: 1 KB chunks (~225 tokens) ran 1.7x faster 4 to a batch than 64 to a batch, short
# memories (~20 tokens) 1.8x faster 16 than 256 to a batch; budgets from 256 to 1,024 tokens
# were within noise of each other (int8, one thread, load average 5-7, medians of 3 in this change;
# `python -m bench embed --budgets 0 512` compares them with the 64-texts batches of before).
BATCH_TOKENS = 512


def token_batches(lengths: Sequence[int], order: Sequence[int], max_texts: int, budget: int = BATCH_TOKENS) -> list[list[int]]:
    """Consecutive runs of ``order`` whose padded size (count x longest) stays within ``budget`` and ``max_texts``.

    A text longer than the budget gets a batch of its own; ``order`` shortest first pads least.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    widest = 0
    for i in order:
        width = max(widest, lengths[i])
        if current and ((len(current) + 1) * width > budget or len(current) >= max_texts):
            batches.append(current)
            current, width = [], lengths[i]
        current.append(int(i))
        widest = width
    if current:
        batches.append(current)
    return batches


def _normalise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


class TorchEmbedder:
    """sentence-transformers on torch (it sorts each call's texts by length itself)."""

    backend = "torch"

    def __init__(self, model: str) -> None:
        if split_variant(model)[1] != "fp32":
            raise EmbedderUnavailable(f"{model!r} is an ONNX variant: use the onnx backend")
        offline()
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
        with self._lock, torch_threads(threads):
            out = self._st.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        return _normalise(np.asarray(out, dtype=np.float32).reshape(len(texts), self._dim))

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Progress | None = None) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        step = max(batch_size, 512)  # a progress report every few batches
        for start in range(0, len(texts), step):
            chunk = list(texts[start : start + step])
            out[start : start + len(chunk)] = self._run(chunk, bulk_threads(), batch_size)
            if progress:
                progress(start + len(chunk), len(texts))
        return out

    def encode_query(self, text: str) -> NDArray[np.float32]:
        vec: NDArray[np.float32] = self._run([text], 1, 1)[0]
        return vec


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set for the block and restored after it (it is process-wide)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# Fewer texts than this are encoded on the query session: building the bulk session costs
# 0.4-0.9 s here (measured in a fresh process), far more than a few texts take on one thread,
# and an `add` embeds one text (bench/cli_latency.py).
FEW_TEXTS = 8


class OnnxEmbedder:
    """The same model run by onnxruntime: mean pooling and normalisation done here.

    ``model`` may name the int8 variant (vault/model_files.py); both sessions then run it.
    """

    backend = "onnx"

    def __init__(self, model: str, onnx_path: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = Path(model_path(model))
        self._model_id = model
        self.variant = split_variant(model)[1]
        self._file = onnx_path or export_onnx(model)
        max_len = 256
        cfg = path / "sentence_bert_config.json"
        if cfg.exists():
            max_len = int(json.loads(cfg.read_text()).get("max_seq_length", max_len))
        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.enable_truncation(max_length=max_len)
        self._tok.no_padding()
        self._ort = ort
        self._query = self.session(1)
        self._bulk: list[Any] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self.bucketing = True  # off only to measure what it saves (bench/embed.py)
        self.budget = BATCH_TOKENS  # changed only to measure other budgets (bench/embed.py)
        self._dim = int(self.encode_query("dimension probe").shape[0])

    def session(self, threads: int) -> Any:
        """A new onnxruntime session on ``threads`` intra-op threads."""
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

    def bulk_sessions(self) -> list[Any]:
        """One one-thread session per bulk worker (``bulk_threads()``), built on first use."""
        if not self._bulk:
            self._bulk = [self.session(1) for _ in range(bulk_threads())]
        return self._bulk

    def _workers(self, n: int) -> ThreadPoolExecutor:
        if self._pool is None or self._pool_size != n:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="ctxvault-encode")
            self._pool_size = n
        return self._pool

    def _forward(self, session: Any, encs: Sequence[Any]) -> NDArray[np.float32]:
        """Vectors of tokenised texts, padded to the longest of them."""
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

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Progress | None = None,
        session: Any = None,
        sessions: Sequence[Any] | None = None,
    ) -> NDArray[np.float32]:
        """Vectors in input order; batches of at most ``batch_size`` texts and ``self.budget`` tokens.

        ``session`` (one) or ``sessions`` (one worker each) override the choice of the query
        session (a few texts) or the bulk sessions.
        """
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        if session is not None:
            sessions = [session]
        elif sessions is None:
            sessions = [self._query] if len(texts) < FEW_TEXTS else self.bulk_sessions()
        encs = self._tok.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encs]
        order = bucket_order(lengths) if self.bucketing else np.arange(len(texts))
        batches = token_batches(lengths, order.tolist(), max(1, batch_size), self.budget)
        done = 0
        lock = threading.Lock()

        def run(rows: list[int], sess: Any) -> None:
            nonlocal done
            out[rows] = self._forward(sess, [encs[i] for i in rows])
            if progress:
                with lock:
                    done += len(rows)
                    progress(done, len(texts))

        if len(sessions) == 1 or len(batches) == 1:
            for rows in batches:
                run(rows, sessions[0])
            return out
        # Each worker takes the next batch when it is free (onnxruntime releases the GIL in run()),
        # so a worker slowed by another process's load holds up one batch, not every operator.
        queue = iter(batches)
        free = list(sessions)

        def worker() -> None:
            sess = free.pop()
            while True:
                with lock:
                    rows = next(queue, None)
                if rows is None:
                    return
                run(rows, sess)

        for f in [self._workers(len(sessions)).submit(worker) for _ in sessions]:
            f.result()
        return out

    def encode_query(self, text: str) -> NDArray[np.float32]:
        vec: NDArray[np.float32] = self._forward(self._query, [self._tok.encode(text)])[0]
        return vec


_LOADED: dict[tuple[str, str], Embedder] = {}
_LOAD_LOCK = threading.Lock()


def load_embedder(settings: Settings, backend: Backend | None = None) -> Embedder:
    """The process-wide embedder for the configured model (loaded once, on first use).

    ``auto`` (the default, or ``CTXVAULT_EMBED_BACKEND``) picks ONNX when it can be
    exported and loaded, torch otherwise. A ``#int8`` model is ONNX only.

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
    if backend == "torch":
        return TorchEmbedder(model)  # it refuses an ONNX-only variant
    try:
        return OnnxEmbedder(model)
    except (EmbedderUnavailable, ImportError) as exc:
        if backend == "onnx" or split_variant(model)[1] != "fp32":
            raise EmbedderUnavailable(f"the ONNX backend is unavailable for {model!r}: {exc}") from exc
    return TorchEmbedder(model)


__all__ = [
    "BATCH_TOKENS",
    "Embedder",
    "OnnxEmbedder",
    "TorchEmbedder",
    "bucket_order",
    "bulk_threads",
    "cache_dir",
    "export_onnx",
    "load_embedder",
    "model_path",
    "onnx_file",
    "token_batches",
    "torch_threads",
]
