"""Sentence embeddings of texts, batched and cached on disk by text hash.

The cache lives in ``<workspace>/cache/embeddings/<model-key>/`` as append-only shards (``ids-00000.npy`` with
16-byte BLAKE2b text hashes, ``vecs-00000.npy`` with float32 rows), so re-embedding an unchanged pool reads
files instead of running the model. Finished vectors are written as a shard at least every
:data:`SHARD_SECONDS` seconds and when the run stops (Ctrl-C included), so an interrupted run loses at most a few
seconds of work and a crash never leaves a half shard. The ONNX backend
(``backend="onnx"``, :class:`curate.runtime.onnx_embedder.OnnxEncoder`) keeps its vectors in a folder of its own
(``<model-key>__onnx``), so they never mix with the exact path's.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.ingest.records import Record, as_text
from curate.runtime.checkpoint import Checkpoint, checkpoint_seconds

Vectors = npt.NDArray[np.float32]
#: Longest time finished vectors wait in memory before they are written as a cache shard.
SHARD_SECONDS = 5.0
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def text_hash(text: str) -> bytes:
    """16-byte BLAKE2b digest of a text (the cache key)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def record_text(record: Record) -> str:
    """The text that stands for a record when it is embedded: prompt and response(s), or the text itself."""
    f = record.fields
    if record.kind == "text":
        return as_text(f["text"])
    if "messages" in f:
        return as_text(f["messages"])
    parts = [as_text(f.get("prompt"))]
    for name in ("completion", "chosen", "rejected"):
        if name in f:
            parts.append(as_text(f[name]))
    parts.extend(as_text(c) for c in f.get("completions", []))
    return "\n\n".join(p for p in parts if p)


class EmbeddingCache:
    """Append-only on-disk map from text hash to a float32 vector, for one embedding model."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._index: dict[bytes, tuple[int, int]] = {}
        self._shards: list[Vectors] = []
        for ids_file in sorted(folder.glob("ids-*.npy")):
            vec_file = ids_file.with_name(ids_file.name.replace("ids-", "vecs-"))
            if not vec_file.exists():
                continue
            ids = np.load(ids_file)
            vecs = np.load(vec_file, mmap_mode="r")
            if len(ids) != len(vecs):
                continue  # a shard cut short by a crash: ignore it, its texts are embedded again
            shard = len(self._shards)
            self._shards.append(vecs)
            for row, key in enumerate(ids):
                self._index[bytes(key).ljust(16, b"\0")] = (shard, row)  # numpy S16 drops trailing NULs

    def __len__(self) -> int:
        return len(self._index)

    def get(self, keys: Sequence[bytes]) -> tuple[list[int], Vectors | None]:
        """Rows found: (positions in ``keys`` that hit, their vectors stacked) ."""
        hits = [i for i, key in enumerate(keys) if key in self._index]
        if not hits:
            return [], None
        vectors = np.stack([self._shards[s][r] for s, r in (self._index[keys[i]] for i in hits)])
        return hits, vectors.astype(np.float32, copy=False)

    def put(self, keys: Sequence[bytes], vectors: Vectors) -> None:
        """Write one new shard (ids first to a temp name, then both renamed, so a crash leaves no half shard)."""
        fresh = [(k, v) for k, v in zip(keys, vectors, strict=True) if k not in self._index]
        if not fresh:
            return
        number = len(list(self.folder.glob("ids-*.npy")))
        while (self.folder / f"ids-{number:05d}.npy").exists():
            number += 1
        ids = np.array([k for k, _ in fresh], dtype="S16")
        vecs = np.stack([v for _, v in fresh]).astype(np.float32)
        for stem, array in (("vecs", vecs), ("ids", ids)):
            tmp = self.folder / f".{stem}-{number:05d}.tmp.npy"
            np.save(tmp, array)
            os.replace(tmp, self.folder / f"{stem}-{number:05d}.npy")
        shard = len(self._shards)
        self._shards.append(vecs)
        for row, key in enumerate(ids):
            self._index[bytes(key).ljust(16, b"\0")] = (shard, row)  # numpy S16 drops trailing NULs


class Embedder:
    """Batched, cached sentence embeddings (unit-normalised, so a dot product is a cosine similarity).

    Args:
        name: ``"minilm"`` (the packaged all-MiniLM-L6-v2, 384 dimensions), a local folder or a Hub id.
        cache_dir: the workspace cache; ``None`` disables the disk cache.
        batch_size: texts per forward pass.
        encode: an alternative encoding function ``texts -> (n, d)`` (tests, or another library).
        backend: ``"torch"`` (sentence-transformers, the exact path) or ``"onnx"`` (the model exported once to
            ONNX and run with ONNX Runtime; needs ``onnxruntime`` and ``onnx``, the ``scale`` extra).
    """

    def __init__(self, name: str = "minilm", *, cache_dir: Path | None = None, batch_size: int = 64,
                 encode: Callable[[list[str]], Any] | None = None, backend: str = "torch") -> None:
        from curate.runtime.onnx_embedder import EMBEDDER_BACKENDS

        if backend not in EMBEDDER_BACKENDS:
            raise InputError(f"Embedder backend must be one of {list(EMBEDDER_BACKENDS)}; got {backend!r}")
        self.name = name
        self.backend = backend
        self.batch_size = batch_size
        self._encode = encode
        self._model: Any = None
        self._cache_dir = cache_dir
        folder = _SAFE.sub("_", name) + ("" if backend == "torch" else f"__{backend}")
        self.cache = EmbeddingCache(cache_dir / "embeddings" / folder) if cache_dir else None
        self.computed_ = 0

    @property
    def call_size(self) -> int:
        """Texts per model call (one forward batch): the unit of progress and of the cache's checkpoints."""
        return max(self.batch_size, 1)

    @property
    def key(self) -> str:
        """The model name, plus ``+onnx`` for the ONNX backend: which vectors these are."""
        return self.name if self.backend == "torch" else f"{self.name}+{self.backend}"

    def _encode_batch(self, texts: list[str]) -> Vectors:
        if self._encode is not None:
            out = np.asarray(self._encode(texts), dtype=np.float32)
        elif self.backend == "onnx":
            if self._model is None:
                from curate.runtime.onnx_embedder import OnnxEncoder

                self._model = OnnxEncoder(self.name, cache_dir=self._cache_dir, batch_size=self.batch_size)
            out = self._model(texts)
        else:
            if self._model is None:
                from curate.runtime.models import load_embedder

                if self.name.endswith("+words"):
                    raise InputError(f"embedder {self.name!r}: word features are fitted per workspace, so this "
                                     "embedder is built by curate.runtime.word_features.workspace_embedder (the "
                                     "loop, curate select and curate seed do); this command takes a model name.")
                self._model = load_embedder(self.name)
            out = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                     normalize_embeddings=False, show_progress_bar=False).astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str], *,
                    on_progress: Callable[[int, int], None] | None = None) -> Vectors:
        """Unit-norm embeddings, shape ``(len(texts), d)`` float32; cached texts are not embedded again.

        ``on_progress(done, total)`` is called with the number of texts embedded so far and the number this call
        embeds (the uncached unique texts), after each model call.
        """
        keys = [text_hash(t) for t in texts]
        out: Vectors | None = None
        missing = list(range(len(texts)))
        if self.cache is not None and len(self.cache):
            hits, vectors = self.cache.get(keys)
            if hits and vectors is not None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                out[hits] = vectors
                hit_set = set(hits)
                missing = [i for i in missing if i not in hit_set]
        # Longest texts first in each batch keeps padding low; unique texts only.
        unique: dict[bytes, int] = {}
        for i in missing:
            unique.setdefault(keys[i], i)
        todo = sorted(unique.values(), key=lambda i: len(texts[i]), reverse=True)
        chunk = self.call_size
        cache = self.cache

        def write(items: list[tuple[bytes, npt.NDArray[np.float32]]]) -> None:
            if cache is not None:
                cache.put([k for k, _ in items], np.stack([v for _, v in items]))

        every = checkpoint_seconds(SHARD_SECONDS)
        with Checkpoint(write, f"embeddings ({self.key})", every=every) as checkpoint:
            for start in range(0, len(todo), chunk):
                part = todo[start : start + chunk]
                vectors = self._encode_batch([texts[i] for i in part])
                self.computed_ += len(part)
                if out is None:
                    out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                for i, vec in zip(part, vectors, strict=True):
                    out[i] = vec
                checkpoint.add([(keys[i], vec) for i, vec in zip(part, vectors, strict=True)])
                if on_progress:
                    on_progress(start + len(part), len(todo))
        if out is None:
            return np.zeros((0, 0), dtype=np.float32)
        for i in missing:  # duplicates of a text embedded in this call
            first = unique[keys[i]]
            if first != i:
                out[i] = out[first]
        return out

    def embed_records(self, records: Sequence[Record], **kwargs: Any) -> Vectors:
        """Embeddings of :func:`record_text` of each record, shape ``(n, d)``."""
        return self.embed_texts([record_text(r) for r in records], **kwargs)

    def __call__(self, texts: Sequence[str]) -> Vectors:
        """A featurizer: ``texts -> (n, d)`` float32."""
        return self.embed_texts(texts)


def encoder_from_spec(spec: str) -> Callable[[list[str]], Any] | None:
    """The encoding function ``package.module:function`` (texts -> ``(n, d)``) that ``spec`` names, or ``None``
    for a model name or folder."""
    if ":" not in spec:
        return None
    import importlib

    module, _, attr = spec.partition(":")
    try:
        encode: Callable[[list[str]], Any] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"--embedder {spec}: cannot import it ({exc}); give minilm, a model folder, or "
                         "package.module:function of an installed module") from exc
    return encode


def embedder_from_spec(spec: str, cache_dir: Path | None) -> Embedder:
    """``--embedder``: minilm, a folder, a Hub id (cached in ``cache_dir``), or ``package.module:function``
    (not cached: the function may change). ``<one of those>+words``:
    :func:`curate.runtime.word_features.embedder_for_spec`."""
    encode = encoder_from_spec(spec)
    return Embedder(spec, cache_dir=None if encode else cache_dir, encode=encode)


class MemoEmbedder(Embedder):
    """An :class:`Embedder` that remembers vectors in memory instead of writing a disk shard per call.

    One record at a time would otherwise write one cache file per record; labeled sets that a scorer embeds on
    every call are embedded once.
    """

    def __init__(self, name: str = "minilm", *, encode: Callable[[list[str]], Any] | None = None,
                 max_items: int = 100_000) -> None:
        super().__init__(name, cache_dir=None, encode=encode)
        self._memo: OrderedDict[bytes, Vectors] = OrderedDict()
        self.max_items = max_items

    def embed_texts(self, texts: Sequence[str], *,
                    on_progress: Callable[[int, int], None] | None = None) -> Vectors:
        """Unit-norm embeddings ``(len(texts), d)`` float32, from memory where possible."""
        keys = [text_hash(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._memo))
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            vectors = super().embed_texts([texts[first[k]] for k in missing])
            for key, vec in zip(missing, vectors, strict=True):
                self._memo[key] = vec
            while len(self._memo) > self.max_items:
                self._memo.popitem(last=False)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._memo[k] for k in keys]).astype(np.float32, copy=False)
