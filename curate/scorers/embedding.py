"""Embedding scorers: novelty (far from what is labeled) and density (typical of the pool).

Both work on unit-norm sentence embeddings (see :class:`curate.runtime.embeddings.Embedder`), so a dot product is a
cosine similarity. The maths is in pure functions over arrays; the scorers embed records and call them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.ingest.records import Record
from curate.runtime.embeddings import Embedder, Vectors
from curate.scorers.base import BaseScorer, BuildContext, Scores

_CHUNK = 2048


def _check(vectors: npt.ArrayLike, who: str) -> Vectors:
    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim != 2:
        raise InputError(f"{who}: embeddings must have shape (n, d); got shape {out.shape}")
    return out


def novelty(pool: npt.ArrayLike, labeled: npt.ArrayLike) -> Scores:
    """Cosine distance of each pool row to its nearest labeled row: ``1 - max_j cos(pool_i, labeled_j)``.

    Args:
        pool: unit-norm embeddings, shape ``(n, d)``.
        labeled: unit-norm embeddings of labeled records, shape ``(m, d)``; with ``m = 0`` every score is 1.

    Returns:
        Shape ``(n,)`` float64 in ``[0, 2]``; higher = farther from anything labeled = more novel.
    """
    x, ref = _check(pool, "novelty"), _check(labeled, "novelty")
    if ref.shape[0] == 0 or x.shape[0] == 0:
        return np.ones(x.shape[0], dtype=np.float64)
    if ref.shape[1] != x.shape[1]:
        raise InputError(f"novelty: pool has {x.shape[1]} dimensions but labeled has {ref.shape[1]}")
    out = np.empty(x.shape[0], dtype=np.float64)
    for start in range(0, x.shape[0], _CHUNK):
        sims = x[start : start + _CHUNK] @ ref.T
        out[start : start + _CHUNK] = 1.0 - sims.max(axis=1)
    return out


def density(pool: npt.ArrayLike, *, k: int = 10) -> Scores:
    """Mean cosine similarity of each row to its ``k`` nearest other rows (representativeness).

    Exact, in chunks of rows (memory ``O(chunk x n)``, never ``n x n``).

    Args:
        pool: unit-norm embeddings, shape ``(n, d)``.
        k: neighbours per row (capped at ``n - 1``).

    Returns:
        Shape ``(n,)`` float64 in ``[-1, 1]``; higher = in a denser region = more typical of the pool.
    """
    x = _check(pool, "density")
    n = x.shape[0]
    if n <= 1:
        return np.zeros(n, dtype=np.float64)
    k = max(1, min(k, n - 1))
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        sims = x[start : start + _CHUNK] @ x.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -np.inf  # not its own neighbour
        top = np.partition(sims, n - k, axis=1)[:, n - k :]
        out[start : start + _CHUNK] = top.mean(axis=1)
    return out


def _digest(ids: Sequence[str]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for rid in sorted(ids):
        h.update(rid.encode())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class NoveltyScorer(BaseScorer):
    """Novelty: cosine distance to the nearest labeled record; higher = less like anything labeled so far.

    Args:
        embedder: the sentence embedder (excluded from the key; its name is in the model version).
        labeled: the records already labeled (their ids enter the model version, so the cache refreshes).
    """

    name: ClassVar[str] = "novelty"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"novelty": {}}
    embeddings_only: ClassVar[bool] = True
    key_exclude: ClassVar[frozenset[str]] = frozenset({"embedder", "labeled"})
    embedder: Embedder = dataclasses.field(default_factory=Embedder, compare=False)
    labeled: tuple[Record, ...] = dataclasses.field(default=(), compare=False)

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> NoveltyScorer:
        """Novelty against ``ctx.labeled`` with ``ctx``'s embedder."""
        return cls(embedder=ctx.make_embedder(), labeled=tuple(ctx.labeled), **options)

    def model_version(self) -> str:
        return f"{self.embedder.name}+labeled:{_digest([r.id for r in self.labeled])}"

    def score(self, records: Sequence[Record]) -> Scores:
        pool = self.embedder.embed_records(records)
        if not self.labeled:
            return np.ones(len(records), dtype=np.float64)
        return novelty(pool, self.embedder.embed_records(self.labeled))


@dataclasses.dataclass(frozen=True)
class DensityScorer(BaseScorer):
    """Density: mean similarity to the ``k`` nearest records of the scored pool; higher = more representative.

    The neighbours are the records passed to :meth:`score` together, so score the whole pool in one call.
    """

    name: ClassVar[str] = "density"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"density": {}}
    embeddings_only: ClassVar[bool] = True
    key_exclude: ClassVar[frozenset[str]] = frozenset({"embedder"})
    set_dependent: ClassVar[bool] = True
    k: int = 10
    embedder: Embedder = dataclasses.field(default_factory=Embedder, compare=False)

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> DensityScorer:
        """Density over ``ctx.k`` neighbours with ``ctx``'s embedder."""
        return cls(embedder=ctx.make_embedder(), k=ctx.k, **options)

    def model_version(self) -> str:
        return self.embedder.name

    def score(self, records: Sequence[Record]) -> Scores:
        return density(self.embedder.embed_records(records), k=self.k)
