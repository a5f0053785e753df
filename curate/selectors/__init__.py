"""Selectors: turn scores (and embeddings) into a batch of indices; cold start, stream gate, stopping.

Contract (:mod:`curate.selectors.base`): ``select(scores, k, *, embeddings=None, rng) -> NDArray[intp]``, at most
``k`` unique indices, best first, never a NaN score; higher scores are preferred. Each selector is a frozen
dataclass with ``name`` and ``key()`` over a pure function (``TopK`` / :func:`top_k`, ``KCenterGreedy`` /
:func:`greedy_k_center`, ...). The wrappers in :mod:`curate.selectors.mix` also say why each index was chosen.
"""

from curate.loop.stopping import StoppingReport, marginal_gain, prediction_agreement, stopping_report
from curate.rounds.coldstart import (
    ClassRules,
    RuleSeed,
    SeedModelReport,
    centroid_seed,
    check_seed_model,
    load_rules,
    match_rules,
    rule_seed,
    stratified_seed,
)
from curate.selectors.badge import BADGE, kmeanspp_select
from curate.selectors.base import EmptyPoolError, Indices, Selector, validate
from curate.selectors.cluster import ClusterPick, cluster_pick
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
from curate.selectors.stream_gate import StreamGate
from curate.selectors.topk import TopK, top_k

__all__ = [
    "BADGE",
    "DEITA",
    "ClassRules",
    "ClusterPick",
    "EmptyPoolError",
    "Indices",
    "KCenterGreedy",
    "NoNearDuplicates",
    "Quota",
    "RandomMix",
    "RuleSeed",
    "SeedModelReport",
    "Selector",
    "StoppingReport",
    "StreamGate",
    "TaggedSelection",
    "TaggedSelector",
    "TopK",
    "centroid_seed",
    "check_seed_model",
    "cluster_pick",
    "greedy_k_center",
    "kmeanspp_select",
    "load_rules",
    "marginal_gain",
    "match_rules",
    "near_duplicate_pairs",
    "prediction_agreement",
    "quota_origin",
    "rule_seed",
    "score_then_diversity",
    "select_tagged",
    "stopping_report",
    "stratified_seed",
    "top_k",
    "validate",
    "walk_diverse",
]
