"""Selectors: turn scores (and embeddings) into a batch of indices (arrays in, indices out).

Contract (:mod:`curate.selectors.base`): ``select(scores, k, *, embeddings=None, rng) -> NDArray[intp]``, at most
``k`` unique indices, best first, never a NaN score; higher scores are preferred. Each selector is a frozen
dataclass with ``name`` and ``key()`` over a pure function (``TopK`` / :func:`top_k`, ``KCenterGreedy`` /
:func:`greedy_k_center`, ...). The wrappers in :mod:`curate.selectors.mix` also say why each index was chosen.
"""

from curate.selectors.badge import BADGE, kmeanspp_select
from curate.selectors.base import BaseSelector, EmptyPoolError, Indices, Selector, needs_embeddings, validate
from curate.selectors.cluster import (
    ClusterPick,
    RoundRobin,
    centroid_pick,
    cluster_pick,
    pool_clusters,
    round_robin_pick,
)
from curate.selectors.diversity import DEITA, near_duplicate_pairs, score_then_diversity, walk_diverse
from curate.selectors.kcenter import KCenterGreedy, greedy_k_center
from curate.selectors.mix import (
    NoNearDuplicates,
    Quota,
    RandomMix,
    TaggedSelection,
    TaggedSelector,
    quota_origin,
    select_tagged,
)
from curate.selectors.novelty import NoveltyBonus, PrefilterNovelty, novelty_bonus_pick
from curate.selectors.prefilter import Prefilter, PrefilterCentroid, PrefilterCluster
from curate.selectors.stream_gate import StreamGate
from curate.selectors.topk import TopK, top_k

__all__ = [
    "BADGE",
    "DEITA",
    "BaseSelector",
    "ClusterPick",
    "EmptyPoolError",
    "Indices",
    "KCenterGreedy",
    "NoNearDuplicates",
    "NoveltyBonus",
    "Prefilter",
    "PrefilterCentroid",
    "PrefilterCluster",
    "PrefilterNovelty",
    "Quota",
    "RandomMix",
    "RoundRobin",
    "Selector",
    "StreamGate",
    "TaggedSelection",
    "TaggedSelector",
    "TopK",
    "centroid_pick",
    "cluster_pick",
    "greedy_k_center",
    "kmeanspp_select",
    "near_duplicate_pairs",
    "novelty_bonus_pick",
    "needs_embeddings",
    "pool_clusters",
    "quota_origin",
    "round_robin_pick",
    "score_then_diversity",
    "select_tagged",
    "top_k",
    "validate",
    "walk_diverse",
]
