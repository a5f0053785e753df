"""Scorers: one number per record, higher = more worth a human's time (see :mod:`curate.scorers.base`).

Imported lazily, so ``import curate.scorers`` does not load torch or scikit-learn until a scorer is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from curate.scorers.base import BaseScorer, Scorer, Scores, as_scores

_LAZY = {
    "NoveltyScorer": "embedding", "DensityScorer": "embedding", "novelty": "embedding", "density": "embedding",
    "PerplexityScorer": "perplexity", "IFDScorer": "perplexity", "completion_nll": "nll",
    "ExpectedGradientLengthScorer": "egl",
    "ClassifierUncertaintyScorer": "classifier", "CommitteeScorer": "classifier", "fit_classifier": "classifier_models",
    "fit_committee": "classifier_models", "badge_embeddings": "classifier_models",
    "RewardUncertaintyScorer": "reward", "BradleyTerryEnsemble": "reward", "preference_features": "reward",
    "least_confidence": "uncertainty", "margin": "uncertainty", "entropy": "uncertainty",
    "vote_entropy": "uncertainty", "kl_to_mean": "uncertainty", "bald": "uncertainty",
    "bt_entropy": "uncertainty", "disagreement": "uncertainty",
    "FeedbackScorer": "feedback", "overrule_rate": "feedback",
}

__all__ = ["BaseScorer", "Scorer", "Scores", "as_scores", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'curate.scorers' has no attribute {name!r}")
    return getattr(importlib.import_module(f"curate.scorers.{module}"), name)
