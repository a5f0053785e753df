"""Faster paths for scoring on a CPU: an ONNX Runtime sentence embedder, and the torch thread count.

The ONNX embedder is opt-in and keyed apart from the exact path, so fast and exact numbers never mix in a cache:

* :class:`OnnxEncoder`: a sentence-transformers model (a Hugging Face encoder with mean or CLS pooling) exported
  once with ``torch.onnx.export`` into the workspace cache and run with ONNX Runtime. Used by
  ``Embedder(backend="onnx")``, whose embeddings are cached in their own folder.
* :func:`torch_threads`: run a block with a given number of torch threads (scorers' ``threads`` option).

The ONNX path is checked to keep rankings: the Spearman correlation of its similarities and novelty scores with
the exact path's is at least 0.99 on real records (``tests/integration/test_fast_paths.py``,
``benchmarks/bench_speed.py``). An int8 copy of SmolLM2 for perplexity/IFD was measured and not shipped: with
SmoothQuant and per-token scales it kept Spearman 0.985 at 1.1x the speed, 0.996 without int8 ``down_proj`` at
0.97x (``benchmarks/int8_experiment.py``); on this CPU float32 scoring already runs at ~0.6 of matmul peak.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError, MissingDependencyError, ModelError

__all__ = ["EMBEDDER_BACKENDS", "OnnxEncoder", "export_onnx", "torch_threads"]

EMBEDDER_BACKENDS: tuple[str, ...] = ("torch", "onnx")
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OPSET = 17


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads (``None``: leave torch's setting), then restore it."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise InputError(f"threads must be >= 1 (or None for torch's setting); got {threads}")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _pooling(st_model: Any) -> str:
    pooling = next((m for m in st_model if type(m).__name__ == "Pooling"), None)
    if pooling is None:
        raise ModelError("the ONNX embedder needs a sentence-transformers model with a Pooling module")
    mode = str(getattr(pooling, "pooling_mode", "") or "")
    if not mode:
        mode = "mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else (
            "cls" if getattr(pooling, "pooling_mode_cls_token", False) else "other")
    if mode not in ("mean", "cls"):
        raise ModelError(f"the ONNX embedder supports mean or CLS pooling; this model pools with {mode!r}. "
                         "Use Embedder(backend='torch').")
    return mode


def _model_digest(path: str) -> str:
    from curate.runtime.models import file_digest

    folder = Path(path)
    if folder.exists():
        return file_digest(folder)
    return hashlib.blake2b(path.encode(), digest_size=8).hexdigest()


def export_onnx(st_model: Any, out: Path) -> Path:
    """Export a sentence-transformers model's encoder plus its pooling to ``out`` (atomically; idempotent).

    The graph takes ``input_ids``, ``attention_mask`` (and ``token_type_ids`` if the encoder uses them), with
    dynamic batch and sequence axes, and returns the pooled, not yet normalised, embedding ``(batch, d)``.
    """
    if out.exists():
        return out
    import torch

    try:
        import onnx  # noqa: F401  (torch.onnx.export writes through it)
    except ImportError as exc:
        raise MissingDependencyError("onnx", "scale", "Exporting the embedder to ONNX") from exc
    mode = _pooling(st_model)
    encoder = st_model[0].auto_model
    uses_types = int(getattr(encoder.config, "type_vocab_size", 0) or 0) > 0
    names = [n for n in _ONNX_INPUTS if n != "token_type_ids" or uses_types]

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, *inputs: Any) -> Any:
            hidden = self.encoder(**dict(zip(names, inputs, strict=True))).last_hidden_state
            if mode == "cls":
                return hidden[:, 0]
            mask = inputs[1].unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    sample = st_model.tokenizer(["an example", "a second, longer example text"], padding=True, return_tensors="pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"embedding": {0: "batch"}}
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(Pooled().eval(), tuple(sample[n] for n in names), str(tmp), input_names=names,
                              output_names=["embedding"], dynamic_axes=axes, opset_version=_OPSET, dynamo=False)
        os.replace(tmp, out)
    except Exception as exc:
        raise ModelError(f"could not export the embedder to ONNX at {out}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return out


class OnnxEncoder:
    """``texts -> (n, d)`` float32 pooled embeddings from an ONNX export of a sentence-transformers model.

    Tokenises with the model's own tokenizer (same truncation: its ``max_seq_length``), batches texts of similar
    token length together (longest first, so padding is minimal) and runs ONNX Runtime with all graph
    optimisations on ``threads`` intra-op threads (default: torch's current thread count, so one knob governs
    both backends).

    Args:
        name: the embedder (``"minilm"``, a folder or a Hub id; see :func:`curate.runtime.models.load_embedder`).
        cache_dir: workspace cache; the export goes to ``<cache_dir>/models/onnx/`` (default: the temp folder).
        batch_size: texts per ONNX Runtime call.
        threads: intra-op threads of the session.
    """

    def __init__(self, name: str, *, cache_dir: Path | None = None, batch_size: int = 64,
                 threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime", "scale", "Embedder(backend='onnx')") from exc
        from curate.runtime.models import embedder_path, load_embedder

        st_model = load_embedder(name)
        self.tokenizer = st_model.tokenizer
        self.max_length = int(st_model.max_seq_length or 512)
        self.pad_id = int(self.tokenizer.pad_token_id or 0)
        self.batch_size = max(1, batch_size)
        root = (cache_dir / "models" / "onnx") if cache_dir else Path(tempfile.gettempdir()) / "curate-onnx"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        self.path = export_onnx(st_model, root / f"{safe}-{_model_digest(embedder_path(name))}.onnx")
        del st_model
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Pooled embeddings, shape ``(len(texts), d)`` float32 (not normalised)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([-len(i) for i in ids], kind="stable")
        out: npt.NDArray[np.float32] | None = None
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = len(ids[rows[0]])  # the longest of the batch: right padding up to it
            feed = {"input_ids": np.full((len(rows), width), self.pad_id, dtype=np.int64),
                    "attention_mask": np.zeros((len(rows), width), dtype=np.int64)}
            for r, i in enumerate(rows):
                feed["input_ids"][r, :len(ids[i])] = ids[i]
                feed["attention_mask"][r, :len(ids[i])] = 1
            if "token_type_ids" in self.input_names:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
            vectors = np.asarray(self.session.run(None, feed)[0], dtype=np.float32)
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        assert out is not None
        return out
