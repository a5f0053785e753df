"""The defaults of `curate bench label-efficiency`: the strategies and settings the recipes ship."""

from __future__ import annotations

from typing import Any

#: What `curate bench label-efficiency` runs unless told otherwise: the settings the recipes ship (label-teach:
#: Zhdanov's DBAL over the 10 k lowest margins, no random share, on MiniLM beside word features; preference-rank:
#: prompt coverage, measured with a Laplace Bradley-Terry model on TF-IDF features), each beside random and the
#: alternatives it was chosen over.
PRODUCT_DEFAULTS: dict[str, dict[str, Any]] = {
    "classify": {"strategies": ("random", "prefilter-centroid-margin", "margin", "cluster-margin"), "random_mix": 0.0,
                 "candidates_per_pick": 10.0, "features": "minilm+words"},
    "preference": {"strategies": ("random", "novelty", "variance-novelty", "entropy"), "random_mix": 0.1,
                   "features": "tfidf", "learner": "laplace"},
}


def product_defaults(task: str, learner: str | None, strategies: tuple[str, ...] | None, random_mix: float | None,
                     features: str | None, candidates_per_pick: float | None = None
                     ) -> tuple[str, tuple[str, ...] | None, float, str, float]:
    """``(learner, strategies, random_mix, features, candidates_per_pick)`` with what was not given taken from
    :data:`PRODUCT_DEFAULTS` (the ensemble learner keeps its own strategies, :data:`DEFAULTS`; candidates per pick
    default to 5 where no recipe ships one)."""
    shipped = PRODUCT_DEFAULTS.get(task, {})
    learner = learner or shipped.get("learner", "ensemble")
    if strategies is None and (task == "classify" or learner == "laplace"):
        strategies = shipped.get("strategies")
    return (learner, strategies, shipped.get("random_mix", 0.1) if random_mix is None else random_mix,
            features or shipped.get("features", "minilm"),
            shipped.get("candidates_per_pick", 5.0) if candidates_per_pick is None else candidates_per_pick)
