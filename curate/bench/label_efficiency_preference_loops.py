"""The preference loops of the label-efficiency benchmark (pure, in memory, no workspace): one call runs one
strategy for one seed, through :func:`curate.bench.label_efficiency_loops.active_loop` like the classify loops.

Preference, learner ``ensemble`` (linear Bradley-Terry heads, :class:`curate.scorers.reward.BradleyTerryEnsemble`):

* ``random``; ``disagreement`` (sd of the heads' ``P(A > B)``), ``bald`` and ``entropy`` (of the mean
  ``P(A > B)``): top-k of :func:`curate.scorers.reward.pair_uncertainty`.

Preference, learner ``laplace`` (one linear Bradley-Terry model with a Laplace posterior,
:class:`curate.scorers.reward_laplace.LaplaceBradleyTerry`):

* ``random``; ``variance``: top-k of the posterior variance of ``r(A) - r(B)``; ``entropy``: of the predictive
  ``P(A > B)``; ``variance-novelty``: variance plus ``novelty_beta`` times the log cosine distance of the pair's
  prompt features to the nearest labelled or already picked prompt (BAL-PM's acquisition,
  :class:`curate.selectors.NoveltyBonus`); ``novelty``: the prompt-novelty term alone (greedy farthest prompt);
  ``bald``: the mutual information of label and weights (:meth:`LaplaceBradleyTerry.mutual_information`);
  ``prefilter-cluster-entropy``: classification's prefilter-cluster-margin carried over, the
  ``candidates_per_pick * k`` highest-entropy pairs clustered (spherical k-means) on ``phi_A - phi_B``, the
  direction of the pair's loss gradient, and the highest-entropy pair of each cluster; ``bald-coverage``: the
  ``candidates_per_pick * k`` highest-BALD pairs, then prompt coverage among them (greedy farthest prompt,
  :class:`curate.selectors.PrefilterNovelty`); ``bald-per-prompt``: the highest-BALD pair of the least-asked
  prompts (:func:`curate.selectors.novelty.group_coverage_pick` over ``g_pool``); ``epig``: top-k of the
  expected information about the labels of :data:`EPIG_TARGETS` pool pairs drawn afresh each round
  (:meth:`LaplaceBradleyTerry.epig`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.bench.label_efficiency_loops import (
    FloatArray,
    IntArray,
    LoopConfig,
    SeedResult,
    StepFn,
    active_loop,
    select_batch,
)
from curate.bench.label_efficiency_metrics import expected_calibration_error, point_biserial
from curate.errors import InputError
from curate.scorers.reward import BradleyTerryEnsemble, pair_uncertainty
from curate.scorers.reward_laplace import LaplaceBradleyTerry
from curate.selectors import NoveltyBonus, PrefilterCluster, PrefilterNovelty, TopK
from curate.selectors.base import Selector
from curate.selectors.novelty import GroupCoverage

ENSEMBLE_STRATEGIES = ("random", "disagreement", "bald", "entropy")
LAPLACE_STRATEGIES = ("random", "entropy", "variance", "variance-novelty", "novelty", "bald",
                      "prefilter-cluster-entropy", "bald-coverage", "bald-per-prompt", "epig")
PREFERENCE_STRATEGIES = (*ENSEMBLE_STRATEGIES, *(s for s in LAPLACE_STRATEGIES if s not in ENSEMBLE_STRATEGIES))
PROMPT_STRATEGIES = ("variance-novelty", "novelty", "bald-coverage")  # need prompt features
LEARNERS = ("ensemble", "laplace")


@dataclass(frozen=True)
class PreferenceData:
    """Features ``(n, d)`` of chosen (``a``) and rejected (``b``) responses; ``swapped`` = oracle said b > a."""

    a_pool: FloatArray
    b_pool: FloatArray
    swapped: npt.NDArray[np.bool_]
    a_test: FloatArray
    b_test: FloatArray
    a_cal: FloatArray
    b_cal: FloatArray
    p_pool: FloatArray | None = None  # (n_pool, d_prompt) prompt features for variance-novelty
    g_pool: IntArray | None = None  # (n_pool,) prompt id per pair, for bald-per-prompt


def _fit_laplace(data: PreferenceData, idx: IntArray, cfg: LoopConfig) -> LaplaceBradleyTerry:
    flip = data.swapped[idx][:, None]
    return LaplaceBradleyTerry(l2=cfg.prior_precision, min_pairs=2).fit(
        np.where(flip, data.b_pool[idx], data.a_pool[idx]), np.where(flip, data.a_pool[idx], data.b_pool[idx]))


EPIG_TARGETS = 256  # target pairs drawn from the pool each round for EPIG


def _laplace_scores(strategy: str, model: LaplaceBradleyTerry, data: PreferenceData,
                    rng: np.random.Generator) -> FloatArray:
    if strategy == "novelty":
        return np.zeros(len(data.a_pool))
    if strategy == "epig":
        targets = rng.choice(len(data.a_pool), size=min(EPIG_TARGETS, len(data.a_pool)), replace=False)
        return model.epig(data.a_pool, data.b_pool, data.a_pool[targets], data.b_pool[targets], rng=rng)
    if strategy in ("bald", "bald-coverage", "bald-per-prompt"):
        return model.mutual_information(data.a_pool, data.b_pool)
    if strategy in ("entropy", "prefilter-cluster-entropy"):
        p = np.clip(model.prob(data.a_pool, data.b_pool), 1e-12, 1 - 1e-12)
        return np.asarray(-(p * np.log(p) + (1 - p) * np.log(1 - p)), dtype=np.float64)
    return model.variance(data.a_pool, data.b_pool)


def run_preference_laplace(strategy: str, data: PreferenceData, initial: IntArray, cfg: LoopConfig, *,
                           rng: np.random.Generator, step: StepFn | None = None) -> SeedResult:
    """A preference loop with the Laplace learner (strategies :data:`LAPLACE_STRATEGIES`); as :func:`run_preference`."""
    if strategy not in LAPLACE_STRATEGIES:
        raise InputError(f"strategy {strategy!r} needs the ensemble learner; with --learner laplace use some of "
                         f"{', '.join(LAPLACE_STRATEGIES)}.")
    if strategy in PROMPT_STRATEGIES and data.p_pool is None:
        raise InputError(f"{strategy} needs prompt features (PreferenceData.p_pool).")
    model = LaplaceBradleyTerry()
    novel = strategy in PROMPT_STRATEGIES
    selector: Selector = NoveltyBonus(beta=cfg.novelty_beta) if novel else TopK()
    if strategy == "bald-coverage":
        selector = PrefilterNovelty(factor=cfg.candidates_per_pick)
    embeddings = data.p_pool if novel else None
    if strategy == "prefilter-cluster-entropy":
        selector, embeddings = PrefilterCluster(factor=cfg.candidates_per_pick), data.a_pool - data.b_pool
    if strategy == "bald-per-prompt":
        selector = GroupCoverage(np.arange(len(data.a_pool)) if data.g_pool is None else data.g_pool)

    def fit(idx: IntArray) -> float:
        nonlocal model
        model = _fit_laplace(data, idx, cfg)
        return float(np.mean(model.margin(data.a_test, data.b_test) > 0))

    def pick(labelled: npt.NDArray[np.bool_], k: int) -> IntArray:
        return select_batch(selector, _laplace_scores(strategy, model, data, rng), labelled, k, embeddings=embeddings,
                       mix=cfg.random_mix, rng=rng)

    curve, order = active_loop(initial, len(data.a_pool), cfg, fit=fit, pick=pick, random=strategy == "random",
                               rng=rng, step=step)
    p = model.prob(data.a_test, data.b_test)
    final: dict[str, Any] = {"ece_test": expected_calibration_error(np.maximum(p, 1 - p), p > 0.5)}
    if len(data.a_cal):
        pc = model.prob(data.a_cal, data.b_cal)
        final["accuracy_calibration"] = float(np.mean(pc > 0.5))
    return SeedResult(curve, order, final)


def run_preference(strategy: str, data: PreferenceData, initial: IntArray, cfg: LoopConfig, *,
                   rng: np.random.Generator, step: StepFn | None = None) -> SeedResult:
    """One preference loop: pairwise test accuracy (mean ``P(chosen > rejected)`` > 0.5) at every budget.

    Arguments as :func:`run_classify`; ``strategy`` is one of :data:`PREFERENCE_STRATEGIES`.
    """
    if strategy not in PREFERENCE_STRATEGIES:
        raise InputError(f"unknown preference strategy {strategy!r}; use some of "
                         f"{', '.join(PREFERENCE_STRATEGIES)}.")
    if cfg.learner == "laplace":
        return run_preference_laplace(strategy, data, initial, cfg, rng=rng, step=step)
    if strategy not in ENSEMBLE_STRATEGIES:
        raise InputError(f"strategy {strategy!r} needs the Laplace learner (--learner laplace).")
    ens = BradleyTerryEnsemble(n_heads=cfg.n_heads, l2=cfg.l2, min_pairs=2)

    def fit(idx: IntArray) -> float:
        flip = data.swapped[idx][:, None]
        ens.fit(np.where(flip, data.b_pool[idx], data.a_pool[idx]), np.where(flip, data.a_pool[idx], data.b_pool[idx]),
                rng=rng)
        return float(np.mean(ens.prob(data.a_test, data.b_test).mean(axis=0) > 0.5))

    def pick(labelled: npt.NDArray[np.bool_], k: int) -> IntArray:
        scores = pair_uncertainty(data.a_pool, data.b_pool, ensemble=ens, method=strategy)
        return select_batch(TopK(), scores, labelled, k, embeddings=None, mix=cfg.random_mix, rng=rng)

    curve, order = active_loop(initial, len(data.a_pool), cfg, fit=fit, pick=pick, random=strategy == "random",
                               rng=rng, step=step)
    return SeedResult(curve, order, _preference_final(ens, data))


def _preference_final(ens: BradleyTerryEnsemble, data: PreferenceData) -> dict[str, Any]:
    p_members = ens.prob(data.a_test, data.b_test)
    p = p_members.mean(axis=0)
    errors = p <= 0.5
    out: dict[str, Any] = {
        "ece_test": expected_calibration_error(np.maximum(p, 1 - p), ~errors),
        "uncertainty_vs_test_errors": {
            method: point_biserial(pair_uncertainty(data.a_test, data.b_test, ensemble=ens, method=method), errors)
            for method in ("disagreement", "bald", "entropy")},
    }
    if len(data.a_cal):
        pc = ens.prob(data.a_cal, data.b_cal).mean(axis=0)
        out["ece_calibration"] = expected_calibration_error(np.maximum(pc, 1 - pc), pc > 0.5)
        out["accuracy_calibration"] = float(np.mean(pc > 0.5))
    return out




def preference_full_pool_metric(data: PreferenceData, cfg: LoopConfig, *, rng: np.random.Generator) -> float:
    """Pairwise test accuracy of the model trained on the whole pool: the ceiling of the preference curves."""
    if cfg.learner == "laplace":
        whole = _fit_laplace(data, np.arange(len(data.a_pool), dtype=np.intp), cfg)
        return float(np.mean(whole.margin(data.a_test, data.b_test) > 0))
    flip = data.swapped[:, None]
    ens = BradleyTerryEnsemble(n_heads=cfg.n_heads, l2=cfg.l2, min_pairs=2)
    ens.fit(np.where(flip, data.b_pool, data.a_pool), np.where(flip, data.a_pool, data.b_pool), rng=rng)
    return float(np.mean(ens.prob(data.a_test, data.b_test).mean(axis=0) > 0.5))
