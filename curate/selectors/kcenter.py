"""k-center greedy core-set selection (Sener & Savarese, 2018), in O(n) memory.

Repeatedly pick the candidate farthest from every centre chosen so far (and from the already-labelled points),
so the batch covers the embedding space. The state is one ``(n,)`` float32 vector of squared distances to the
nearest centre plus the ``(n,)`` index of that centre; each new centre updates it chunk by chunk with float32
matrix-vector products (``||a||^2 - 2 a.b + ||b||^2``). No n x n matrix is ever built: besides the embeddings, the
selection allocates O(n) state plus fixed-size chunks (measured with tracemalloc: 11 MB at 100,000 x 384 and 44 MB
at 1,000,000 x 384, for k = 1,000; an n x n float32 matrix would be 37 GB and 3.6 TB).

Exact pruning: when centre ``c`` is added, a row ``x`` whose nearest centre is ``a`` can only move closer if
``d(x, c) < d(x, a)``; by the triangle inequality ``d(x, c) >= d(a, c) - d(x, a)``, so rows with
``d(a, c) >= 2 d(x, a)`` are skipped (Elkan's bound). The distances between centres cost O(k d) per step. On
clustered data most rows are skipped once every cluster holds a centre; on structureless data nothing is skipped
and each step is one pass over the embeddings. The result is the same either way (up to float32 round-off, which
the bound allows for with a margin).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.selectors._geometry import F32, GATHER_CHUNK, ROW_CHUNK, Geometry, one_blas_thread
from curate.selectors.arrays import (
    as_embeddings,
    as_indices,
    check_fraction,
    check_metric,
    check_rng,
    rank_desc,
    require_embeddings,
)
from curate.selectors.base import BaseSelector, FloatArray, Indices, validate

_FULL_PASS_FRACTION = 0.4  # above this share of rows to update, a contiguous pass beats gathering rows


class _State:
    """Squared distance of every row to its nearest centre (-1 = taken or not a candidate) and that centre."""

    def __init__(self, geom: Geometry, capacity: int, prune: bool) -> None:
        n = len(geom.x)
        self.geom = geom
        self.prune = prune
        self.min_d2: F32 = np.full(n, -1.0, dtype=np.float32)
        self.assign = np.zeros(n, dtype=np.int64)
        self.centres = np.empty(capacity, dtype=np.intp)
        self.t = 0
        self.tol = np.float32(1e-5 * geom.scale)

    def seed(self, points: Indices) -> None:
        """Initialise the distances from already-selected points (rows already -1 stay untouched)."""
        n = len(self.min_d2)
        for start in range(0, n, ROW_CHUNK):
            sl = slice(start, start + ROW_CHUNK)
            d2, arg = self.geom.nearest(points, sl)
            m = self.min_d2[sl]
            active = m >= 0
            m[active] = d2[active]
            self.assign[sl][active] = arg[active]
        self.centres[: points.size] = points
        self.t = points.size

    def add(self, centre: int) -> None:
        """Make row ``centre`` a centre and lower every row's distance accordingly."""
        n = len(self.min_d2)
        rows: Indices | None = None
        if self.prune and self.t > 0:
            cc = self.geom.to_point(centre, self.centres[: self.t])  # squared distances centre <-> old centres
            bound = cc[self.assign]
            need = (self.min_d2 >= 0) & (bound < self.min_d2 * np.float32(4.004) + self.tol)
            rows = np.flatnonzero(need)
            if rows.size > _FULL_PASS_FRACTION * n:
                rows = None
        if rows is None:
            for start in range(0, n, ROW_CHUNK):
                sl = slice(start, start + ROW_CHUNK)
                d2 = self.geom.to_point(centre, sl)
                m = self.min_d2[sl]
                upd = d2 < m
                np.copyto(m, d2, where=upd)
                self.assign[sl][upd] = self.t
        else:
            for start in range(0, rows.size, GATHER_CHUNK):
                r = rows[start:start + GATHER_CHUNK]
                d2 = self.geom.to_point(centre, r)
                upd = d2 < self.min_d2[r]
                ru = r[upd]
                self.min_d2[ru] = d2[upd]
                self.assign[ru] = self.t
        self.centres[self.t] = centre
        self.t += 1


def _score_weights(values: npt.NDArray[np.float64], candidates: Indices, weight: float, n: int) -> F32:
    """Percentile of each candidate's score in (0, 1], raised to ``2 * weight`` (distances are squared)."""
    v = values[candidates]
    ordered = np.sort(v)
    # average rank (1-based) of each value among the candidates, ties sharing the mean of their positions
    rank = (np.searchsorted(ordered, v, "left") + np.searchsorted(ordered, v, "right") + 1) / 2.0
    pct = rank / candidates.size
    out = np.ones(n, dtype=np.float32)
    out[candidates] = (pct ** (2.0 * weight)).astype(np.float32)
    return out


def greedy_k_center(embeddings: FloatArray, k: int, *, already_selected: Indices | None = None,
                    rng: np.random.Generator, metric: str = "euclidean",
                    scores: FloatArray | None = None, score_weight: float = 0.0, prune: bool = True) -> Indices:
    """k-center greedy core-set: up to ``k`` rows that cover ``embeddings``, in the order picked.

    The first centre is the highest-scoring candidate (ties: lower index); without ``scores`` it is drawn
    uniformly with ``rng``. If ``already_selected`` rows are given (labelled points, or earlier batches) they seed
    the distances instead, and the first pick is already the farthest candidate from them. Every later pick
    maximises ``d_min(x) * s(x) ** score_weight``, where ``d_min`` is the distance to the nearest centre and
    ``s(x)`` in (0, 1] is the percentile of the candidate's score; ``score_weight = 0`` (default) is plain
    k-center, larger values trade coverage for score.

    Args:
        embeddings: Shape ``(n, d)``; used as float32 (no copy if already float32 and C-contiguous).
        k: How many centres to pick; more than the candidates returns all of them.
        already_selected: Indices of rows that are centres already (never returned; may have NaN scores).
        rng: Random generator; used only for the first centre when there are neither scores nor seeds.
        metric: ``"euclidean"`` or ``"cosine"`` (cosine uses the chord distance between unit vectors,
            which orders pairs exactly as ``1 - cos`` does).
        scores: Optional shape ``(n,)``, higher = better; rows with NaN scores are never picked.
        score_weight: Non-negative exponent of the score percentile in the pick rule (see above).
        prune: Skip rows whose distance cannot change (triangle inequality); same result, faster.

    Returns:
        Shape ``(min(k, m),)`` ``intp`` indices, ``m`` = number of candidates, in pick order.

    Raises:
        InputError: Bad shapes, non-finite embeddings, an unknown metric, out-of-range ``already_selected``.

    >>> x = np.array([[0.0], [1.0], [10.0], [4.0]])
    >>> greedy_k_center(x, 3, rng=np.random.default_rng(0), scores=np.array([1.0, 0.0, 0.0, 0.0])).tolist()
    [0, 2, 3]
    """
    who = "greedy_k_center"
    check_rng(rng, who)
    check_metric(metric, who)
    if not isinstance(k, int | np.integer) or k < 0:
        raise InputError(f"{who}: k must be a non-negative integer; got {k!r}")
    weight = check_fraction(score_weight, who, "score_weight", high=float("inf"))
    x = as_embeddings(embeddings, who)
    n = len(x)
    active = np.ones(n, dtype=bool)
    values: npt.NDArray[np.float64] | None = None
    if scores is not None:
        values = np.asarray(scores, dtype=np.float64)
        if values.shape != (n,):
            raise InputError(f"{who}: scores must have shape ({n},), one per embedding row; got {values.shape}")
        active &= ~np.isnan(values)
    seeds = np.unique(as_indices([] if already_selected is None else already_selected))
    if seeds.size and (seeds[0] < 0 or seeds[-1] >= n):
        raise InputError(
            f"{who}: already_selected must be row indices in [0, {n}); got values from {seeds[0]} to {seeds[-1]}"
        )
    active[seeds] = False
    candidates = np.flatnonzero(active).astype(np.intp)
    if k == 0 or candidates.size == 0:
        return np.empty(0, dtype=np.intp)
    with one_blas_thread():
        return _k_center(Geometry(x, metric), int(k), seeds, candidates, values, weight, rng, prune)


def _k_center(geom: Geometry, k: int, seeds: Indices, candidates: Indices,
              values: npt.NDArray[np.float64] | None, weight: float, rng: np.random.Generator,
              prune: bool) -> Indices:
    n = len(geom.x)
    k = min(k, candidates.size)
    state = _State(geom, seeds.size + k, prune)
    state.min_d2[candidates] = np.inf
    weights = None
    if values is not None and weight > 0:
        weights = _score_weights(values, candidates, weight, n)
    picks: list[int] = []
    if seeds.size:
        state.seed(seeds)
    else:
        first = int(rank_desc(values, candidates)[0]) if values is not None else int(rng.choice(candidates))
        picks.append(first)
        state.min_d2[first] = -1.0
        if k > 1:
            state.add(first)
    while len(picks) < k:
        priority = state.min_d2 if weights is None else state.min_d2 * weights
        i = int(np.argmax(priority))
        if priority[i] < 0:
            break
        picks.append(i)
        state.min_d2[i] = -1.0
        if len(picks) < k:
            state.add(i)
    return np.asarray(picks, dtype=np.intp)


@dataclasses.dataclass(frozen=True)
class KCenterGreedy(BaseSelector):
    """Selector: k-center greedy core-set over the rows with non-NaN scores (see :func:`greedy_k_center`).

    Attributes:
        metric: ``"euclidean"`` or ``"cosine"``.
        score_weight: 0 = pure coverage; larger values prefer high scores among far-away points.
    """

    name: ClassVar[str] = "kcenter"
    uses_embeddings: ClassVar[bool] = True
    metric: str = "euclidean"
    score_weight: float = 0.0

    def __post_init__(self) -> None:
        check_metric(self.metric, "KCenterGreedy")
        check_fraction(self.score_weight, "KCenterGreedy", "score_weight", high=float("inf"))

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator, already_selected: Indices | None = None) -> Indices:
        """At most ``k`` indices covering ``embeddings`` (shape ``(n, d)``), first the highest score.

        Args:
            scores: Shape ``(n,)``, higher = better; NaN rows are never picked.
            k: Batch size.
            embeddings: Shape ``(n, d)``, required.
            rng: Random generator (k-center itself is deterministic once the first centre is fixed).
            already_selected: Rows already labelled or chosen; they seed the distances and are never returned.
        """
        values = validate(scores, k, embeddings, need_embeddings=True, who=self.key())
        check_rng(rng, self.key())
        return greedy_k_center(require_embeddings(embeddings, self.key()), int(k), already_selected=already_selected,
                               rng=rng, metric=self.metric, scores=values, score_weight=self.score_weight)
