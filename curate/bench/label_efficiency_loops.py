"""The simulated active-learning loops of the label-efficiency benchmark (pure, in memory, no workspace).

One call runs one strategy for one seed: label the seed set, then repeatedly fit the model, measure it on the
frozen test set, score the unlabelled pool and let the strategy pick the next batch, whose answers come from the
simulated (optionally noisy) oracle. Strategies are curate's own scorers and selectors (also usable from
``curate select``); every strategy except ``random`` is wrapped in :class:`~curate.selectors.RandomMix`, so a
share of each batch is drawn at random.

Classify (multinomial logistic regression, :func:`curate.scorers.classifier_models.fit_classifier`, warm-started):

* ``random``: uniform draws from the unlabelled pool.
* ``margin``, ``entropy``, ``least_confidence``: top-k of that uncertainty (:mod:`curate.scorers.uncertainty`).
* ``cluster-margin`` / ``cluster-entropy``: uncertainty within clusters: spherical k-means of the embeddings of
  the unlabelled pool into ``clusters_per_pick * k`` clusters, the most uncertain record of each cluster, then
  the ``k`` most uncertain of those representatives (:func:`curate.selectors.cluster.cluster_pick`).
* ``prefilter-cluster-margin``: margin first, then diversity (in the spirit of Zhdanov, 2019, "Diverse mini-batch
  active learning"): the ``candidates_per_pick * k`` lowest-margin records (default 5 k, chosen on a validation
  split of the pool), spherical k-means of them into ``k`` clusters, the lowest-margin record of each.
* ``rr-cluster-margin``: Cluster-Margin as in Citovsky et al. (2021): the pool is clustered once per loop
  (spherical k-means, ``pool_cluster_size`` records per cluster on average; the paper uses agglomerative
  clustering), then each round the ``candidates_per_pick * k`` lowest-margin records are taken round-robin over
  their clusters, smallest cluster first (:func:`curate.selectors.cluster.round_robin_pick`).
* ``badge``: k-means++ over gradient embeddings (:func:`curate.scorers.classifier_models.badge_embeddings`,
  :func:`curate.selectors.badge.kmeanspp_select`) of the ``badge_candidates`` records with the lowest margin
  (the full ``K * d`` gradient matrix of a large pool does not fit comfortably in memory).

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
  prompts (:func:`curate.selectors.novelty.group_coverage_pick` over ``g_pool``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.bench.label_efficiency_metrics import expected_calibration_error, point_biserial
from curate.errors import InputError
from curate.scorers.classifier_models import DEFAULT_C, ClassifierModel, GradientEmbeddings, fit_classifier
from curate.scorers.reward import BradleyTerryEnsemble, pair_uncertainty
from curate.scorers.reward_laplace import LaplaceBradleyTerry
from curate.scorers.uncertainty import SINGLE_MODEL_METHODS
from curate.selectors import (
    BADGE,
    ClusterPick,
    NoveltyBonus,
    Prefilter,
    PrefilterCluster,
    PrefilterNovelty,
    RandomMix,
    RoundRobin,
    TopK,
)
from curate.selectors.base import Selector
from curate.selectors.cluster import pool_clusters
from curate.selectors.novelty import GroupCoverage

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
StepFn = Callable[[], None]
CLASSIFY_STRATEGIES = ("random", "margin", "entropy", "least_confidence", "cluster-margin", "cluster-entropy",
                       "badge", "prefilter-cluster-margin", "rr-cluster-margin")
MARGIN_STRATEGIES = ("badge", "prefilter-cluster-margin", "rr-cluster-margin")  # scored by margin
ENSEMBLE_STRATEGIES = ("random", "disagreement", "bald", "entropy")
LAPLACE_STRATEGIES = ("random", "entropy", "variance", "variance-novelty", "novelty", "bald",
                      "prefilter-cluster-entropy", "bald-coverage", "bald-per-prompt")
PREFERENCE_STRATEGIES = (*ENSEMBLE_STRATEGIES, *(s for s in LAPLACE_STRATEGIES if s not in ENSEMBLE_STRATEGIES))
PROMPT_STRATEGIES = ("variance-novelty", "novelty", "bald-coverage")  # need prompt features
LEARNERS = ("ensemble", "laplace")


@dataclass(frozen=True)
class LoopConfig:
    """Settings of one loop (shared by every strategy and seed of a run).

    Attributes:
        budgets: label counts at which the model is measured; the first is the seed set's size.
        random_mix: share of each batch drawn at random (strategies other than ``random``).
        clusters_per_pick: cluster strategies: k-means clusters per record picked.
        badge_candidates: BADGE: lowest-margin records it draws from.
        candidates_per_pick: prefilter / round-robin strategies: lowest-margin records considered per pick.
        pool_cluster_size: round-robin: average records per cluster of the once-clustered pool.
        round_robin_within: round-robin: order within a cluster, ``"random"`` (the paper) or ``"score"``.
        C: classify: inverse L2 strength of the logistic regression.
        n_heads / l2: preference: Bradley-Terry ensemble size and L2 penalty (ensemble learner).
        learner: preference: ``"ensemble"`` or ``"laplace"``; ``prior_precision``: the Laplace model's ``l2``.
        novelty_beta: ``variance-novelty``: weight of the prompt-novelty bonus.
    """

    budgets: tuple[int, ...]
    random_mix: float = 0.1
    clusters_per_pick: float = 1.0
    badge_candidates: int = 2000
    candidates_per_pick: float = 5.0
    pool_cluster_size: int = 20
    round_robin_within: str = "random"
    C: float = DEFAULT_C
    n_heads: int = 8
    l2: float = 1e-2
    learner: str = "ensemble"
    prior_precision: float = 1.0
    novelty_beta: float = 0.3


@dataclass
class SeedResult:
    """What one (strategy, seed) run measured; ``curve`` has one metric per budget (higher = better)."""

    curve: list[float]
    labelled: IntArray
    final: dict[str, Any] = field(default_factory=dict)


def _random_pick(unlabelled: IntArray, k: int, rng: np.random.Generator) -> IntArray:
    return np.asarray(rng.choice(unlabelled, size=min(k, unlabelled.size), replace=False), dtype=np.intp)


def _select(selector: Selector, scores: FloatArray, labelled: npt.NDArray[np.bool_], k: int, *,
            embeddings: npt.NDArray[Any] | None, mix: float, rng: np.random.Generator) -> IntArray:
    values = np.where(labelled, np.nan, scores)
    wrapped = RandomMix(selector, fraction=mix)  # type: ignore[arg-type]
    return np.asarray(wrapped.select(values, k, embeddings=embeddings, rng=rng), dtype=np.intp)


def initial_per_class(gold: IntArray, per_class: int, *, rng: np.random.Generator) -> IntArray:
    """Seed set: ``per_class`` random records of every class (all of a smaller class), sorted ``(m,)``."""
    parts = [rng.choice(np.flatnonzero(gold == c), size=min(per_class, int(np.sum(gold == c))), replace=False)
             for c in np.unique(gold)]
    return np.sort(np.concatenate(parts)).astype(np.intp)


def active_loop(initial: IntArray, n_pool: int, cfg: LoopConfig, *, fit: Callable[[IntArray], float],
                pick: Callable[[npt.NDArray[np.bool_], int], IntArray], random: bool, rng: np.random.Generator,
                step: StepFn | None = None) -> tuple[list[float], IntArray]:
    """The loop every task shares: at each budget ``fit(labelled indices) -> test metric``, then (but after the
    last budget) ``pick(labelled mask, k)`` or, for ``random``, ``k`` uniform draws. Returns the curve and the
    labelled indices in the order they were labelled."""
    labelled = np.zeros(n_pool, dtype=bool)
    labelled[initial] = True
    order = list(initial)
    curve: list[float] = []
    for i, budget in enumerate(cfg.budgets):
        curve.append(fit(np.asarray(order, dtype=np.intp)))
        if step is not None:
            step()
        if i + 1 == len(cfg.budgets):
            break
        k = min(cfg.budgets[i + 1] - budget, int((~labelled).sum()))
        picks = _random_pick(np.flatnonzero(~labelled), k, rng) if random else pick(labelled, k)
        labelled[picks] = True
        order.extend(int(p) for p in picks)
    return curve, np.asarray(order, dtype=np.intp)


# --------------------------------------------------------------------------------------------- classify


@dataclass(frozen=True)
class ClassifyData:
    """Features ``(n, d)`` and class codes ``(n,)`` of pool, test and calibration; ``answers`` = oracle codes."""

    classes: tuple[str, ...]
    x_pool: npt.NDArray[np.float32]
    answers: IntArray
    x_test: npt.NDArray[np.float32]
    y_test: IntArray
    x_cal: npt.NDArray[np.float32]
    y_cal: IntArray


def classify_selector(strategy: str, cfg: LoopConfig, labels: npt.NDArray[np.int64] | None = None) -> Selector:
    """The selector of a classify strategy (other than ``random``): one of curate's selectors, configured by ``cfg``.

    ``labels`` are the once-fitted pool clusters of ``rr-cluster-margin``.
    """
    if strategy.startswith("cluster-"):
        return ClusterPick(metric="cosine", clusters_per_pick=cfg.clusters_per_pick)
    if strategy == "badge":
        return BADGE(candidates=cfg.badge_candidates)
    if strategy == "prefilter-cluster-margin":
        return Prefilter(ClusterPick(metric="cosine"), factor=cfg.candidates_per_pick)
    if strategy == "rr-cluster-margin":
        return RoundRobin(candidates_per_pick=cfg.candidates_per_pick, within=cfg.round_robin_within, labels=labels)
    return TopK()


def _classify_scores(strategy: str, model: ClassifierModel, data: ClassifyData) -> tuple[FloatArray, FloatArray]:
    probs = model.predict_proba(data.x_pool)
    method = "margin" if strategy in MARGIN_STRATEGIES else strategy.removeprefix("cluster-")
    return SINGLE_MODEL_METHODS[method](probs), probs


def run_classify(strategy: str, data: ClassifyData, initial: IntArray, cfg: LoopConfig, *,
                 rng: np.random.Generator, step: StepFn | None = None) -> SeedResult:
    """One classify loop: accuracy on the test set at every budget of ``cfg.budgets``.

    Args:
        strategy: one of :data:`CLASSIFY_STRATEGIES`.
        data: features and labels; ``data.answers`` are the simulated annotators' answers ``(n_pool,)``.
        initial: ``(m,)`` pool indices of the seed set (``m == cfg.budgets[0]``).
        cfg: budgets and strategy settings.
        rng: this seed's generator (selection and fits).
        step: called after each budget is measured (progress).
    """
    if strategy not in CLASSIFY_STRATEGIES:
        raise InputError(f"unknown classify strategy {strategy!r}; use some of {', '.join(CLASSIFY_STRATEGIES)}.")
    names = data.classes
    fixed = pool_clusters(data.x_pool, cfg.pool_cluster_size, rng=rng) if strategy == "rr-cluster-margin" else None
    model: ClassifierModel | None = None

    def fit(idx: IntArray) -> float:
        nonlocal model
        model = fit_classifier(data.x_pool[idx], [names[c] for c in data.answers[idx]], classes=names,
                               previous=model, rng=rng, C=cfg.C)
        return float(np.mean(np.argmax(model.predict_proba(data.x_test), axis=1) == data.y_test))

    def pick(labelled: npt.NDArray[np.bool_], k: int) -> IntArray:
        assert model is not None
        scores, probs = _classify_scores(strategy, model, data)
        embeddings: Any = GradientEmbeddings(probs, data.x_pool) if strategy == "badge" else data.x_pool
        return _select(classify_selector(strategy, cfg, fixed), scores, labelled, k, embeddings=embeddings,
                       mix=cfg.random_mix, rng=rng)

    curve, order = active_loop(initial, len(data.x_pool), cfg, fit=fit, pick=pick, random=strategy == "random",
                               rng=rng, step=step)
    assert model is not None
    return SeedResult(curve, order, _classify_final(model, data))


def _classify_final(model: ClassifierModel, data: ClassifyData) -> dict[str, Any]:
    from sklearn.metrics import precision_recall_fscore_support

    p_test = model.predict_proba(data.x_test)
    pred = np.argmax(p_test, axis=1)
    prec, rec, _, support = precision_recall_fscore_support(data.y_test, pred, labels=np.arange(len(data.classes)),
                                                            zero_division=0)
    out: dict[str, Any] = {"precision": prec.tolist(), "recall": rec.tolist(), "support": support.tolist(),
                           "ece_test": expected_calibration_error(p_test.max(axis=1), pred == data.y_test)}
    if len(data.x_cal):
        p_cal = model.predict_proba(data.x_cal)
        out["ece_calibration"] = expected_calibration_error(p_cal.max(axis=1), p_cal.argmax(axis=1) == data.y_cal)
        out["accuracy_calibration"] = float(np.mean(p_cal.argmax(axis=1) == data.y_cal))
    return out


# --------------------------------------------------------------------------------------------- preference


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


def _laplace_scores(strategy: str, model: LaplaceBradleyTerry, data: PreferenceData) -> FloatArray:
    if strategy == "novelty":
        return np.zeros(len(data.a_pool))
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
        return _select(selector, _laplace_scores(strategy, model, data), labelled, k, embeddings=embeddings,
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
        return _select(TopK(), scores, labelled, k, embeddings=None, mix=cfg.random_mix, rng=rng)

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


def full_pool_metric(task: str, data: ClassifyData | PreferenceData, cfg: LoopConfig, *,
                     rng: np.random.Generator) -> float:
    """Test metric of the model trained on the whole pool (every oracle answer): the ceiling of the curves."""
    if isinstance(data, ClassifyData):
        model = fit_classifier(data.x_pool, [data.classes[c] for c in data.answers], classes=data.classes, rng=rng,
                               C=cfg.C, max_iter=500)
        return float(np.mean(np.argmax(model.predict_proba(data.x_test), axis=1) == data.y_test))
    if cfg.learner == "laplace":
        whole = _fit_laplace(data, np.arange(len(data.a_pool), dtype=np.intp), cfg)
        return float(np.mean(whole.margin(data.a_test, data.b_test) > 0))
    flip = data.swapped[:, None]
    ens = BradleyTerryEnsemble(n_heads=cfg.n_heads, l2=cfg.l2, min_pairs=2)
    ens.fit(np.where(flip, data.b_pool, data.a_pool), np.where(flip, data.a_pool, data.b_pool), rng=rng)
    return float(np.mean(ens.prob(data.a_test, data.b_test).mean(axis=0) > 0.5))
