"""Prefilter: keep the best-scoring candidates, then let another selector choose among them (score, then diversity).

``PrefilterCentroid`` (``prefilter_centroid``, Zhdanov's DBAL) is the one the label-teach recipe uses;
``PrefilterCluster`` (``prefilter_cluster``) sends each cluster's best score instead of its most central record.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from curate.selectors.arrays import check_fraction, check_rng, rank_desc, require_embeddings, scorable
from curate.selectors.base import BaseSelector, FloatArray, Indices, Selector, validate
from curate.selectors.cluster import ClusterPick, centroid_pick


def best_only(values: npt.NDArray[np.float64], k: int, factor: float) -> npt.NDArray[np.float64]:
    """``values`` (shape ``(n,)``) with NaN everywhere but the ``max(k, ceil(factor * k))`` best scores."""
    cand = rank_desc(values, scorable(values))[: max(int(k), math.ceil(factor * k))]
    masked = np.full_like(values, np.nan)
    masked[cand] = values[cand]
    return masked


@dataclasses.dataclass(frozen=True)
class Prefilter(BaseSelector):
    """Selector: the ``max(k, ceil(factor * k))`` best scores, then ``base`` chooses ``k`` among them.

    With ``base=ClusterPick(metric="cosine")`` this is the benchmark's ``prefilter-cluster-margin`` (in the spirit
    of Zhdanov, 2019, "Diverse mini-batch active learning"): the most uncertain records, spread over clusters.

    Attributes:
        base: the selector that picks among the candidates (it sees every other score as NaN).
        factor: candidates per record picked (``>= 1``).
    """

    name: ClassVar[str] = "prefilter"
    base: Selector
    factor: float = 10.0

    def __post_init__(self) -> None:
        check_fraction(self.factor, "Prefilter", "factor", low=1.0, high=1e6)

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices chosen by ``base`` among the best-scoring candidates; ``scores`` shape ``(n,)``."""
        values = validate(scores, k, embeddings, who=self.key())
        check_rng(rng, self.key())
        return self.base.select(best_only(values, k, self.factor), int(k), embeddings=embeddings, rng=rng)[: int(k)]


@dataclasses.dataclass(frozen=True)
class PrefilterCluster(BaseSelector):
    """Selector ``prefilter_cluster``: the ``max(k, ceil(factor * k))`` best scores, spherical k-means of their
    embeddings into ``k`` clusters, the best score of each (``Prefilter(ClusterPick(metric="cosine"), factor)``
    under one name, so the CLI and recipes can ask for it).

    With the margin scorer this is the label-efficiency benchmark's ``prefilter-cluster-margin``, chosen
    leave-one-data-set-out as the classifier loop's default (``benchmarks/bench_selection_classify.py``).

    Attributes:
        factor: candidates per record picked (``>= 1``).
    """

    name: ClassVar[str] = "prefilter_cluster"
    uses_embeddings: ClassVar[bool] = True
    factor: float = 5.0

    def __post_init__(self) -> None:
        check_fraction(self.factor, "PrefilterCluster", "factor", low=1.0, high=1e6)

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices, one per cluster of the best candidates' ``embeddings`` (``(n, d)``), best first."""
        validate(scores, k, embeddings, need_embeddings=True, who=self.key())
        return Prefilter(ClusterPick(metric="cosine"), factor=self.factor).select(scores, k, embeddings=embeddings,
                                                                                   rng=rng)


@dataclasses.dataclass(frozen=True)
class PrefilterCentroid(BaseSelector):
    """Selector ``prefilter_centroid``: Zhdanov's (2019) "Diverse mini-batch active learning" (DBAL). The
    ``max(k, ceil(factor * k))`` best scores, a k-means of their embeddings into ``k`` clusters weighted by score
    (spherical: unit rows), and from each cluster the record nearest its centroid (:func:`centroid_pick`).

    :class:`PrefilterCluster` sends each cluster's best score instead; the centroid sends a typical record of an
    uncertain region rather than its most extreme one. With the margin scorer this is the label-efficiency
    benchmark's ``prefilter-centroid-margin``, chosen by every leave-one-out fold of the classification suite.

    Attributes:
        factor: candidates per record picked (``>= 1``).
    """

    name: ClassVar[str] = "prefilter_centroid"
    uses_embeddings: ClassVar[bool] = True
    factor: float = 10.0

    def __post_init__(self) -> None:
        check_fraction(self.factor, "PrefilterCentroid", "factor", low=1.0, high=1e6)

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices, the most central of each cluster of the best candidates' ``embeddings``
        (``(n, d)``), by descending score; ``scores`` shape ``(n,)``, higher = more worth labelling."""
        values = validate(scores, k, embeddings, need_embeddings=True, who=self.key())
        check_rng(rng, self.key())
        return centroid_pick(best_only(values, k, self.factor), require_embeddings(embeddings, self.key()), int(k),
                             rng=rng)[: int(k)]
