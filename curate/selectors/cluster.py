"""Cluster pick: k-means into ``k`` clusters, then the highest-scoring record of each cluster.

Balances score and coverage: every region of the embedding space gets one representative, and within a region
the scorer decides. Clusters that end up empty (k-means on duplicate points, or mini-batch k-means) are made up
for with the next best scores, so the batch still has ``min(k, m)`` records.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.selectors._common import (
    BaseSelector,
    as_embeddings,
    check_metric,
    check_rng,
    rank_desc,
    require_embeddings,
    scorable,
)
from curate.selectors._geometry import F32, unit_rows
from curate.selectors.base import FloatArray, Indices, validate

MINIBATCH_THRESHOLD = 10_000


def kmeans_labels(x: F32, n_clusters: int, *, rng: np.random.Generator,
                  minibatch_threshold: int = MINIBATCH_THRESHOLD) -> tuple[npt.NDArray[np.int64], F32]:
    """Fit k-means to ``x`` (shape ``(m, d)``) and return (cluster label per row ``(m,)``, centroids ``(c, d)``).

    Uses scikit-learn's ``KMeans`` (k-means++, one initialisation) up to ``minibatch_threshold`` rows and
    ``MiniBatchKMeans`` (three initialisations, batches of at least 1,024 rows) above it. The seed is drawn from
    ``rng``, so the result is reproducible. Requires ``1 <= n_clusters <= m``.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans  # imported here: scikit-learn takes ~1.5 s to import
    from sklearn.exceptions import ConvergenceWarning

    seed = int(rng.integers(0, 2**31 - 1))
    model: KMeans | MiniBatchKMeans
    if len(x) > minibatch_threshold:
        model = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, n_init=3,
                                batch_size=max(1024, 3 * n_clusters))
    else:
        model = KMeans(n_clusters=n_clusters, random_state=seed, n_init=1)
    with warnings.catch_warnings():
        # duplicate points give fewer distinct clusters than asked for: handled by the caller's fill rule
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = model.fit_predict(x)
    return np.asarray(labels, dtype=np.int64), np.asarray(model.cluster_centers_, dtype=np.float32)


def cluster_pick(scores: FloatArray, embeddings: FloatArray, k: int, *, rng: np.random.Generator,
                 metric: str = "euclidean", minibatch_threshold: int = MINIBATCH_THRESHOLD) -> Indices:
    """One record per k-means cluster (the highest-scoring one), then fill-ins for empty clusters.

    Only rows with non-NaN scores are clustered. The cluster representatives come first, ordered by descending
    score; if fewer than ``k`` clusters are non-empty, the best remaining scores follow.

    Args:
        scores: Shape ``(n,)``, float, higher = better; NaN rows are never chosen.
        embeddings: Shape ``(n, d)``; ``metric="cosine"`` clusters the unit-normalised rows (spherical k-means).
        k: Number of clusters = batch size; ``k >= m`` returns every scorable row by descending score.
        rng: Seeds k-means.
        metric: ``"euclidean"`` or ``"cosine"``.
        minibatch_threshold: Above this many scorable rows, ``MiniBatchKMeans`` is used.

    Returns:
        Shape ``(min(k, m),)`` ``intp`` indices into ``scores``.
    """
    who = "cluster_pick"
    check_rng(rng, who)
    check_metric(metric, who)
    values = np.asarray(scores, dtype=np.float64)
    x = as_embeddings(embeddings, who)
    if values.shape != (len(x),):
        raise InputError(f"{who}: scores must have shape ({len(x)},), one per embedding row; got {values.shape}")
    idx = scorable(values)
    if k <= 0 or idx.size == 0:
        return np.empty(0, dtype=np.intp)
    if k >= idx.size:
        return rank_desc(values, idx)
    sub = x if idx.size == len(x) else x[idx]
    if metric == "cosine":
        sub = unit_rows(sub)
    labels, _ = kmeans_labels(sub, int(k), rng=rng, minibatch_threshold=minibatch_threshold)
    order = rank_desc(values, idx)  # best first
    position = np.empty(len(x), dtype=np.int64)
    position[idx] = np.arange(idx.size)
    ordered_labels = labels[position[order]]
    _, first = np.unique(ordered_labels, return_index=True)
    first.sort()  # positions in ``order``: representatives by descending score
    reps = order[first]
    if reps.size < k:
        taken = np.zeros(len(x), dtype=bool)
        taken[reps] = True
        rest = order[~taken[order]][: k - reps.size]
        reps = np.concatenate([reps, rest])
    return reps.astype(np.intp)


@dataclasses.dataclass(frozen=True)
class ClusterPick(BaseSelector):
    """Selector: k-means into ``k`` clusters, the best score of each (see :func:`cluster_pick`).

    Attributes:
        metric: ``"euclidean"`` or ``"cosine"`` (spherical k-means on unit rows).
        minibatch_threshold: Scorable-row count above which ``MiniBatchKMeans`` replaces ``KMeans``.
    """

    name: ClassVar[str] = "cluster"
    metric: str = "euclidean"
    minibatch_threshold: int = MINIBATCH_THRESHOLD

    def __post_init__(self) -> None:
        check_metric(self.metric, "ClusterPick")
        if not isinstance(self.minibatch_threshold, int) or self.minibatch_threshold < 1:
            raise InputError(f"ClusterPick: minibatch_threshold must be a positive integer; "
                             f"got {self.minibatch_threshold!r}")

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices, one per cluster of ``embeddings`` (shape ``(n, d)``), best score first.

        ``scores`` has shape ``(n,)``, higher = better; NaN rows are never chosen.
        """
        values = validate(scores, k, embeddings, need_embeddings=True, who=self.key())
        check_rng(rng, self.key())
        return cluster_pick(values, require_embeddings(embeddings, self.key()), int(k), rng=rng,
                            metric=self.metric, minibatch_threshold=self.minibatch_threshold)
