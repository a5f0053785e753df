"""Cluster pick: k-means into ``k`` clusters, then the highest-scoring record of each cluster.

Balances score and coverage: every region of the embedding space gets one representative, and within a region
the scorer decides. Clusters that end up empty (k-means on duplicate points, or mini-batch k-means) are made up
for with the next best scores, so the batch still has ``min(k, m)`` records.

k-means runs in scikit-learn by default (``KMeans``, or ``MiniBatchKMeans`` above ``minibatch_threshold`` rows) or,
with ``backend="faiss"`` (the ``scale`` extra), in ``faiss.Kmeans``: Lloyd iterations on a sample of at most 256
rows per cluster from k-means++ centroids, then one nearest-centroid search over all rows. Both use float32 and
never an n x n matrix.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError, MissingDependencyError
from curate.selectors._geometry import F32, unit_rows
from curate.selectors.arrays import (
    as_embeddings,
    check_fraction,
    check_metric,
    check_rng,
    rank_desc,
    require_embeddings,
    scorable,
)
from curate.selectors.base import BaseSelector, FloatArray, Indices, validate

MINIBATCH_THRESHOLD = 10_000
BACKENDS = ("sklearn", "faiss")
FAISS_ITERATIONS = 20
FAISS_INITS = 3


def faiss_kmeans(x: F32, n_clusters: int, *, seed: int, iterations: int = FAISS_ITERATIONS,
                 n_init: int = FAISS_INITS,
                 sample_weight: npt.NDArray[np.float64] | None = None) -> tuple[npt.NDArray[np.int64], F32]:
    """k-means with ``faiss.Kmeans``: ``(label per row (m,), centroids (c, d))``; needs ``faiss-cpu``.

    ``n_init`` starts (as scikit-learn's ``MiniBatchKMeans``; one start lands in a worse local optimum often
    enough: 850-920 vs 801 inertia on 40 overlapping clusters), each from k-means++ centroids of a seeded sample
    (``3 * max(1024, 3 * c)`` rows, as ``MiniBatchKMeans`` initialises on; faiss's own random start gets stuck
    with two centroids in one cluster) and ``iterations`` Lloyd steps on at most 256 rows per cluster (faiss's
    default); the start with the lowest final objective wins, then every row goes to its nearest centroid.
    ``sample_weight`` (shape ``(m,)``, non-negative) weights the rows, as scikit-learn's. Requires
    ``1 <= n_clusters <= m``.
    """
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError("faiss-cpu", "scale", "k-means with backend='faiss'") from exc
    from sklearn.cluster import kmeans_plusplus

    data = np.ascontiguousarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    size = min(len(data), 3 * max(1024, 3 * n_clusters))
    weights = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float32)
    best: tuple[float, Any] | None = None
    for _ in range(max(1, n_init)):
        start = int(rng.integers(0, 2**31 - 1))
        sample = data if size == len(data) else data[np.sort(rng.choice(len(data), size=size, replace=False))]
        init, _ = kmeans_plusplus(sample, n_clusters, random_state=start)
        model = faiss.Kmeans(data.shape[1], n_clusters, niter=iterations, seed=start, verbose=False,
                             min_points_per_centroid=1, max_points_per_centroid=256)
        model.train(data, weights=weights, init_centroids=np.ascontiguousarray(init, dtype=np.float32))
        history: Any = model.obj  # the objective after each iteration
        objective = float(history[-1]) if history is not None and len(history) else float("inf")
        if best is None or objective < best[0]:
            best = (objective, model)
    assert best is not None
    _, labels = best[1].index.search(data, 1)
    return np.asarray(labels[:, 0], dtype=np.int64), np.asarray(best[1].centroids, dtype=np.float32)


def kmeans_labels(x: F32, n_clusters: int, *, rng: np.random.Generator,
                  minibatch_threshold: int = MINIBATCH_THRESHOLD, backend: str = "sklearn",
                  sample_weight: npt.NDArray[np.float64] | None = None) -> tuple[npt.NDArray[np.int64], F32]:
    """Fit k-means to ``x`` (shape ``(m, d)``) and return (cluster label per row ``(m,)``, centroids ``(c, d)``).

    ``backend="sklearn"`` uses scikit-learn's ``KMeans`` (k-means++, one initialisation) up to
    ``minibatch_threshold`` rows and ``MiniBatchKMeans`` (three initialisations, batches of at least 1,024 rows)
    above it; ``backend="faiss"`` uses :func:`faiss_kmeans` at any size. The seed is drawn from ``rng``, so the
    result is reproducible. ``sample_weight`` (shape ``(m,)``, non-negative) weights each row's pull on its
    centroid. Requires ``1 <= n_clusters <= m``.
    """
    if backend not in BACKENDS:
        raise InputError(f"k-means backend must be one of {list(BACKENDS)}; got {backend!r}")
    if backend == "faiss":
        return faiss_kmeans(x, n_clusters, seed=int(rng.integers(0, 2**31 - 1)), sample_weight=sample_weight)
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
        labels = model.fit_predict(x, sample_weight=sample_weight)
    return np.asarray(labels, dtype=np.int64), np.asarray(model.cluster_centers_, dtype=np.float32)


def _scorable_rows(who: str, scores: FloatArray, embeddings: FloatArray, rng: np.random.Generator,
                   metric: str) -> tuple[npt.NDArray[np.float64], F32, Indices]:
    """Checked inputs of a clustering pick: ``(scores (n,), embeddings (n, d) float32, scorable row indices)``."""
    check_rng(rng, who)
    check_metric(metric, who)
    values = np.asarray(scores, dtype=np.float64)
    x = as_embeddings(embeddings, who)
    if values.shape != (len(x),):
        raise InputError(f"{who}: scores must have shape ({len(x)},), one per embedding row; got {values.shape}")
    return values, x, scorable(values)


def _fill_up(values: npt.NDArray[np.float64], idx: Indices, reps: Indices, k: int) -> Indices:
    """``reps`` (one per non-empty cluster), then the best remaining scores of ``idx`` until there are ``k``."""
    if reps.size < k:
        rest = np.setdiff1d(idx, reps, assume_unique=True)
        reps = np.concatenate([reps, rank_desc(values, rest)[: k - reps.size]])
    return reps.astype(np.intp)


def cluster_pick(scores: FloatArray, embeddings: FloatArray, k: int, *, rng: np.random.Generator,
                 metric: str = "euclidean", minibatch_threshold: int = MINIBATCH_THRESHOLD,
                 backend: str = "sklearn") -> Indices:
    """One record per k-means cluster (the highest-scoring one), then fill-ins for empty clusters.

    Only rows with non-NaN scores are clustered. The cluster representatives come first, ordered by descending
    score; if fewer than ``k`` clusters are non-empty, the best remaining scores follow.

    Args:
        scores: Shape ``(n,)``, float, higher = better; NaN rows are never chosen.
        embeddings: Shape ``(n, d)``; ``metric="cosine"`` clusters the unit-normalised rows (spherical k-means).
        k: Number of clusters = batch size; ``k >= m`` returns every scorable row by descending score.
        rng: Seeds k-means.
        metric: ``"euclidean"`` or ``"cosine"``.
        minibatch_threshold: Above this many scorable rows, ``MiniBatchKMeans`` is used (scikit-learn backend).
        backend: ``"sklearn"`` or ``"faiss"`` (see :func:`kmeans_labels`).

    Returns:
        Shape ``(min(k, m),)`` ``intp`` indices into ``scores``.
    """
    values, x, idx = _scorable_rows("cluster_pick", scores, embeddings, rng, metric)
    if k <= 0 or idx.size == 0:
        return np.empty(0, dtype=np.intp)
    if k >= idx.size:
        return rank_desc(values, idx)
    sub = x if idx.size == len(x) else x[idx]
    if metric == "cosine":
        sub = unit_rows(sub)
    labels, _ = kmeans_labels(sub, int(k), rng=rng, minibatch_threshold=minibatch_threshold, backend=backend)
    order = rank_desc(values, idx)  # best first
    position = np.empty(len(x), dtype=np.int64)
    position[idx] = np.arange(idx.size)
    ordered_labels = labels[position[order]]
    _, first = np.unique(ordered_labels, return_index=True)
    first.sort()  # positions in ``order``: representatives by descending score
    return _fill_up(values, idx, order[first], k)


def centroid_pick(scores: FloatArray, embeddings: FloatArray, k: int, *, rng: np.random.Generator,
                  metric: str = "cosine", minibatch_threshold: int = MINIBATCH_THRESHOLD,
                  backend: str = "sklearn") -> Indices:
    """One record per cluster, the one nearest its centroid, of a k-means weighted by score.

    Zhdanov's (2019) "Diverse mini-batch active learning" (DBAL): the scores weight the k-means (a record counts
    ``max(score, 0) + 1e-6``), so centroids lean towards the high scores, and each cluster sends the record nearest
    its centroid: a typical record of an informative region rather than its most extreme one
    (:func:`cluster_pick` sends the best score). Only rows with non-NaN scores are clustered.

    Args:
        scores: Shape ``(n,)``, float, higher = more worth labelling (non-negative scores weight the k-means);
            NaN rows are never chosen.
        embeddings: Shape ``(n, d)``; ``metric="cosine"`` clusters the unit-normalised rows (spherical k-means).
        k: Number of clusters = batch size; ``k >= m`` returns every scorable row by descending score.
        rng: Seeds k-means.
        metric, minibatch_threshold, backend: as :func:`cluster_pick`.

    Returns:
        Shape ``(min(k, m),)`` ``intp`` indices into ``scores``, by descending score; clusters left empty are
        made up for with the best remaining scores.
    """
    values, x, idx = _scorable_rows("centroid_pick", scores, embeddings, rng, metric)
    if k <= 0 or idx.size == 0:
        return np.empty(0, dtype=np.intp)
    if k >= idx.size:
        return rank_desc(values, idx)
    sub = x[idx] if metric == "euclidean" else unit_rows(x[idx])
    labels, centroids = kmeans_labels(sub, int(k), rng=rng, minibatch_threshold=minibatch_threshold,
                                      backend=backend, sample_weight=np.maximum(values[idx], 0.0) + 1e-6)
    distance = np.linalg.norm(sub - centroids[labels], axis=1)
    nearest = np.lexsort((distance, labels))  # by cluster, nearest first
    _, first = np.unique(labels[nearest], return_index=True)
    return rank_desc(values, _fill_up(values, idx, idx[nearest[first]], k))


@dataclasses.dataclass(frozen=True)
class ClusterPick(BaseSelector):
    """Selector: k-means into ``k`` clusters, the best score of each (see :func:`cluster_pick`).

    Attributes:
        metric: ``"euclidean"`` or ``"cosine"`` (spherical k-means on unit rows).
        minibatch_threshold: Scorable-row count above which ``MiniBatchKMeans`` replaces ``KMeans``.
        backend: ``"sklearn"`` (default) or ``"faiss"`` (``faiss.Kmeans``; the ``scale`` extra).
        clusters_per_pick: ``max(k, ceil(clusters_per_pick * k))`` clusters; the ``k`` best representatives are
            taken (above 1: uncertainty within finer clusters, as the cluster strategies of the benchmark).
    """

    name: ClassVar[str] = "cluster"
    uses_embeddings: ClassVar[bool] = True
    metric: str = "euclidean"
    minibatch_threshold: int = MINIBATCH_THRESHOLD
    backend: str = "sklearn"
    clusters_per_pick: float = 1.0

    def __post_init__(self) -> None:
        check_metric(self.metric, "ClusterPick")
        check_fraction(self.clusters_per_pick, "ClusterPick", "clusters_per_pick", low=1.0, high=1e6)
        if self.backend not in BACKENDS:
            raise InputError(f"ClusterPick: backend must be one of {list(BACKENDS)}; got {self.backend!r}")
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
        n_clusters = max(int(k), math.ceil(self.clusters_per_pick * k))
        return cluster_pick(values, require_embeddings(embeddings, self.key()), n_clusters, rng=rng,
                            metric=self.metric, minibatch_threshold=self.minibatch_threshold,
                            backend=self.backend)[: int(k)]


def round_robin_pick(scores: FloatArray, labels: npt.ArrayLike, k: int, *, candidates: int,
                     rng: np.random.Generator, within: str = "random") -> Indices:
    """Cluster-Margin's pick (Citovsky et al., 2021) over fixed clusters: round-robin, smallest cluster first.

    The ``candidates`` highest-scoring rows are grouped by their cluster label; clusters are visited in ascending
    order of how many candidates they hold (ties: the cluster whose best candidate scores higher first), one
    row per cluster per pass, until ``k`` rows are taken. Within a cluster rows come in random order
    (``within="random"``, as in the paper) or by descending score (``within="score"``).

    Args:
        scores: Shape ``(n,)``, higher = better (e.g. negative margin); NaN rows are never chosen.
        labels: Shape ``(n,)`` integer cluster label per row (e.g. from :func:`kmeans_labels`, fitted once).
        k: Batch size.
        candidates: How many of the best-scoring rows the batch is drawn from (``>= k`` for diversity).
        rng: Orders rows within a cluster when ``within="random"``.
        within: ``"random"`` or ``"score"``.

    Returns:
        Shape ``(min(k, candidates, m),)`` ``intp`` indices into ``scores``, in the order picked.

    >>> s = np.array([0.9, 0.8, 0.7, 0.1])
    >>> round_robin_pick(s, np.array([0, 0, 1, 1]), 2, candidates=3, rng=np.random.default_rng(0),
    ...                  within="score").tolist()
    [2, 0]
    """
    who = "round_robin_pick"
    check_rng(rng, who)
    if within not in ("random", "score"):
        raise InputError(f"{who}: within must be 'random' or 'score'; got {within!r}")
    values = np.asarray(scores, dtype=np.float64)
    lab = np.asarray(labels).reshape(-1)
    if values.ndim != 1 or lab.shape != values.shape:
        raise InputError(f"{who}: scores and labels must both have shape (n,); got {values.shape} and {lab.shape}")
    cand = rank_desc(values, scorable(values))[: max(int(candidates), 0)]
    if k <= 0 or cand.size == 0:
        return np.empty(0, dtype=np.intp)
    score_rank = np.arange(cand.size)
    if within == "random":
        shuffle = rng.permutation(cand.size)
        cand, score_rank = cand[shuffle], score_rank[shuffle]
    clusters, inverse, counts = np.unique(lab[cand], return_inverse=True, return_counts=True)
    # clusters: fewest candidates first; ties: the cluster with the better best-scoring candidate first
    best = np.full(clusters.size, cand.size, dtype=np.int64)
    np.minimum.at(best, inverse, score_rank)
    cluster_rank = np.empty(clusters.size, dtype=np.int64)
    cluster_rank[np.lexsort((best, counts))] = np.arange(clusters.size)
    # position of each candidate within its cluster (order of appearance in ``cand``)
    order_in = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.empty(cand.size, dtype=np.int64)
    pos[order_in] = np.arange(cand.size) - np.repeat(starts, counts)
    picked = cand[np.lexsort((cluster_rank[inverse], pos))]
    return picked[: int(k)].astype(np.intp)


def pool_clusters(x: npt.ArrayLike, size: int, *, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Spherical k-means of every row of ``x`` (shape ``(n, d)``) into ``ceil(n / size)`` clusters: a label per row."""
    data = np.asarray(x, dtype=np.float32)
    n_clusters = min(len(data), max(1, math.ceil(len(data) / max(int(size), 1))))
    labels, _ = kmeans_labels(unit_rows(data), n_clusters, rng=rng)
    return labels


@dataclasses.dataclass(frozen=True, eq=False)
class RoundRobin(BaseSelector):
    """Selector: Cluster-Margin's round-robin over clusters of the pool (see :func:`round_robin_pick`).

    The ``ceil(candidates_per_pick * k)`` best-scoring records are taken one per cluster per pass, smallest cluster
    first. The clusters are ``labels`` (shape ``(n,)``, fitted once for a loop, as in Citovsky et al., 2021) when
    given, else spherical k-means of ``embeddings`` into clusters of about ``cluster_size`` records.

    Attributes:
        candidates_per_pick: best-scoring records considered per record picked (``>= 1``).
        within: order within a cluster: ``"random"`` (the paper) or ``"score"``.
        cluster_size: average records per cluster when the pool is clustered here.
        labels: precomputed cluster label per record; not part of the key (data, not configuration).
    """

    name: ClassVar[str] = "round_robin"
    uses_embeddings: ClassVar[bool] = True
    candidates_per_pick: float = 10.0
    within: str = "random"
    cluster_size: int = 20
    labels: npt.NDArray[np.int64] | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_fraction(self.candidates_per_pick, "RoundRobin", "candidates_per_pick", low=1.0, high=1e6)
        if self.within not in ("random", "score"):
            raise InputError(f"RoundRobin: within must be 'random' or 'score'; got {self.within!r}")
        if not isinstance(self.cluster_size, int) or self.cluster_size < 1:
            raise InputError(f"RoundRobin: cluster_size must be a positive integer; got {self.cluster_size!r}")

    def needs_embeddings(self) -> bool:
        """Embeddings are needed only to cluster the pool, i.e. when no ``labels`` were given."""
        return self.labels is None

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices in the order picked; ``scores`` shape ``(n,)``, higher = better."""
        values = validate(scores, k, embeddings, need_embeddings=self.labels is None, who=self.key())
        check_rng(rng, self.key())
        labels = self.labels
        if labels is None:
            labels = pool_clusters(require_embeddings(embeddings, self.key()), self.cluster_size, rng=rng)
        m = max(int(k), math.ceil(self.candidates_per_pick * k))
        return round_robin_pick(values, labels, int(k), candidates=m, rng=rng, within=self.within)
