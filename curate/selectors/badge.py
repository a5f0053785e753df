"""BADGE: batch active learning by diverse gradient embeddings (Ash et al., 2020).

The scorer side builds one gradient embedding per record (the gradient of the loss at the model's own predicted
label with respect to the last layer, so its norm measures uncertainty and its direction what would change).
Selection is k-means++ seeding over those rows: the first pick is the row with the largest gradient norm, every
later pick is drawn with probability proportional to its squared distance to the nearest pick so far (D^2
sampling). Large, mutually different gradients win: uncertainty and diversity in one rule.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.selectors._geometry import ROW_CHUNK, Geometry, one_blas_thread
from curate.selectors.arrays import as_embeddings, as_indices, check_rng, rank_desc, require_embeddings, scorable
from curate.selectors.base import BaseSelector, FloatArray, Indices, validate


def kmeanspp_select(grad_embeddings: FloatArray, k: int, *, rng: np.random.Generator,
                    candidates: Indices | None = None) -> Indices:
    """k-means++ seeding: up to ``k`` distinct rows of ``grad_embeddings``, in the order drawn.

    The first row is the candidate with the largest Euclidean norm (ties: lower index); each further row is
    drawn with probability ``d(x)^2 / sum d^2`` over the candidates not yet drawn, ``d`` being the distance to the
    nearest drawn row. If every remaining candidate coincides with a drawn row (all ``d = 0``), the next one is
    drawn uniformly. Cost O(n k d) time, O(n) extra memory (float32 chunked products, no n x n matrix).

    Args:
        grad_embeddings: Shape ``(n, g)``, one gradient embedding per record.
        k: How many to draw; more than the candidates returns all of them.
        rng: Random generator for the D^2 draws.
        candidates: Rows that may be drawn (default: all).

    Returns:
        Shape ``(min(k, m),)`` ``intp`` row indices, ``m`` = number of candidates.

    >>> g = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [0.0, 3.0]])
    >>> kmeanspp_select(g, 1, rng=np.random.default_rng(0)).tolist()
    [2]
    """
    who = "kmeanspp_select"
    check_rng(rng, who)
    if not isinstance(k, int | np.integer) or k < 0:
        raise InputError(f"{who}: k must be a non-negative integer; got {k!r}")
    x = as_embeddings(grad_embeddings, who)
    n = len(x)
    cand = np.arange(n, dtype=np.intp) if candidates is None else np.unique(as_indices(candidates))
    if cand.size and (cand[0] < 0 or cand[-1] >= n):
        raise InputError(f"{who}: candidates must be row indices in [0, {n}); got {cand[0]} to {cand[-1]}")
    k = min(int(k), cand.size)
    if k == 0:
        return np.empty(0, dtype=np.intp)
    with one_blas_thread():
        return _kmeanspp(Geometry(x, "euclidean"), cand, k, rng)


def _kmeanspp(geom: Geometry, cand: Indices, k: int, rng: np.random.Generator) -> Indices:
    n = len(geom.x)
    weight: npt.NDArray[np.float64] = np.zeros(n, dtype=np.float64)  # squared distance; 0 = cannot be drawn
    weight[cand] = np.inf
    open_ = np.zeros(n, dtype=bool)
    open_[cand] = True
    first = int(cand[np.argmax(geom.sq[cand])])
    picks = [first]
    while True:
        last = picks[-1]
        open_[last] = False
        weight[last] = 0.0
        if len(picks) == k:
            break
        for start in range(0, n, ROW_CHUNK):
            sl = slice(start, start + ROW_CHUNK)
            np.minimum(weight[sl], geom.to_point(last, sl), out=weight[sl])
        picks.append(_draw(weight, open_, rng))
    return np.asarray(picks, dtype=np.intp)


def _draw(weight: npt.NDArray[np.float64], open_: npt.NDArray[np.bool_], rng: np.random.Generator) -> int:
    """One index with probability proportional to ``weight``; uniform over ``open_`` if all weights are 0."""
    cumulative = np.cumsum(weight)
    total = float(cumulative[-1])
    if not total > 0 or not np.isfinite(total):
        return int(rng.choice(np.flatnonzero(open_)))
    i = int(np.searchsorted(cumulative, rng.random() * total, side="right"))
    i = min(i, len(weight) - 1)
    if weight[i] <= 0:  # float round-off at a boundary
        i = int(np.argmax(weight))
    return i


@dataclasses.dataclass(frozen=True)
class BADGE(BaseSelector):
    """Selector: k-means++ seeding over gradient embeddings (see :func:`kmeanspp_select`).

    ``embeddings`` must be the gradient embeddings (shape ``(n, g)``), not sentence embeddings: an array, or any
    object with ``ndim == 2``, a length and row indexing (``embeddings[rows] -> (m, g)``), so a large pool's
    gradient matrix can be built only for the candidates. ``scores`` (shape ``(n,)``) decide which rows are
    candidates: NaN rows are never chosen; the uncertainty lives in the gradient norms.

    Attributes:
        candidates: draw only from this many highest-scoring rows (``None``: every scorable row).
    """

    name: ClassVar[str] = "badge"
    uses_embeddings: ClassVar[bool] = True
    candidates: int | None = None

    def __post_init__(self) -> None:
        if self.candidates is not None and (not isinstance(self.candidates, int) or self.candidates < 1):
            raise InputError(f"BADGE: candidates must be a positive integer or None; got {self.candidates!r}")

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices drawn by k-means++ over the gradient embeddings, in the order drawn."""
        values = validate(scores, k, embeddings, need_embeddings=True, who=self.key())
        check_rng(rng, self.key())
        grads = require_embeddings(embeddings, self.key())
        if self.candidates is None:
            return kmeanspp_select(grads, int(k), rng=rng, candidates=scorable(values))
        cand = rank_desc(values, scorable(values))[: self.candidates]
        return cand[kmeanspp_select(np.asarray(grads[cand]), int(k), rng=rng)]
