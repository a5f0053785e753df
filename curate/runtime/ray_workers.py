"""The Ray actors of the Ray engine: each loads its model once and turns Arrow batches into results."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from curate.ingest.records import Record
from curate.runtime.catalog import BuildContext
from curate.runtime.embeddings import Embedder

if TYPE_CHECKING:
    import pyarrow as pa


def record_json(record: Record) -> str:
    return orjson.dumps({"id": record.id, "kind": record.kind, "fields": record.fields, "label": record.label,
                         "meta": record.meta}).decode()


def record_from_json(text: str) -> Record:
    d = orjson.loads(text)
    return Record(d["id"], d["kind"], d["fields"], label=d["label"], meta=d["meta"])


class _WorkerContext(BuildContext):
    """A build context for an actor: embedders without the disk cache (actors must not write shards at once)."""

    def make_embedder(self) -> Embedder:
        return Embedder(self.embedder)


def _usable_dir(path: str) -> Path:
    """``path`` if this node can write there (same machine, or a shared mount), else a node-local cache."""
    p = Path(path)
    return p if p.is_dir() and os.access(p, os.W_OK) else Path(tempfile.gettempdir()) / "curate-cache"


class ScoreWorker:
    """Actor: builds the scorer once; each input row is one scoring batch -> one output row per record."""

    def __init__(self, scorer: str, context: dict[str, Any], threads: int) -> None:
        import torch

        from curate.runtime.catalog import build_scorer

        torch.set_num_threads(threads)
        ctx = _WorkerContext(cache_dir=_usable_dir(context["cache_dir"]),
                             labeled=[record_from_json(r) for r in context["labeled"]],
                             **{k: context[k] for k in ("embedder", "model", "adapter", "k", "seed")})
        self.scorer = build_scorer(scorer, ctx)
        self.key = self.scorer.key()

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        from curate.scorers.base import as_scores

        ids: list[str] = []
        values: list[float] = []
        for unit in batch.column("records").to_pylist():
            records = [record_from_json(r) for r in unit]
            ids += [r.id for r in records]
            values += as_scores(self.scorer.score(records), len(records), who=self.key).tolist()
        return pa.table({"id": pa.array(ids, pa.string()), "value": pa.array(values, pa.float64()),
                         "key": pa.array([self.key] * len(ids), pa.string())})


class EmbedWorker:
    """Actor: loads the sentence embedder once; each input row is one chunk -> its vectors as float32 bytes."""

    def __init__(self, embedder: str, batch_size: int, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.embedder = Embedder(embedder, batch_size=batch_size)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        units, blobs, dims = [], [], []
        for unit, texts in zip(batch.column("unit").to_pylist(), batch.column("texts").to_pylist(), strict=True):
            vectors = self.embedder.embed_texts(texts)  # unique, longest first: encoded as one chunk, as locally
            units.append(unit)
            blobs.append(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
            dims.append(int(vectors.shape[1]))
        return pa.table({"unit": pa.array(units, pa.int64()), "vectors": pa.array(blobs, pa.binary()),
                         "dim": pa.array(dims, pa.int64())})


class MinHashWorker:
    """Actor: MinHash signatures of single texts -> ``uint64`` bytes per text."""

    def __init__(self, params: dict[str, Any]) -> None:
        from curate.filters.dedup_minhash import MinHashParams

        self.params = MinHashParams(**params)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        from curate.filters.dedup_minhash import signatures

        _, values, has = signatures(batch.column("text").to_pylist(), self.params)
        return pa.table({"i": batch.column("i"), "signature": pa.array([v.tobytes() for v in values], pa.binary()),
                         "has": pa.array(has, pa.bool_())})


class PiiWorker:
    """Actor: builds the PII analyzer (spaCy + recognizers) once; findings of single texts as JSON."""

    def __init__(self, entities: list[str], allow_list: list[str], threshold: float) -> None:
        from curate.filters.pii import build_analyzer

        self.options: dict[str, Any] = {"entities": entities, "allow_list": allow_list, "threshold": threshold}
        build_analyzer()

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        from curate.filters.pii import detect

        out = [orjson.dumps([[f.entity_type, f.start, f.end, f.score, f.recognizer] for f in detect(t, **self.options)])
               for t in batch.column("text").to_pylist()]
        return pa.table({"i": batch.column("i"), "findings": pa.array(out, pa.binary())})


