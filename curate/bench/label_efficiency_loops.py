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
* ``prefilter-centroid-margin``: Zhdanov's (2019) DBAL itself: the same ``candidates_per_pick * k`` lowest-margin
  records, a spherical k-means of them weighted by margin score, and the record nearest each centroid
  (:class:`curate.selectors.PrefilterCentroid`).
* ``rr-cluster-margin``: Cluster-Margin as in Citovsky et al. (2021): the pool is clustered once per loop
  (spherical k-means, ``pool_cluster_size`` records per cluster on average; the paper uses agglomerative
  clustering), then each round the ``candidates_per_pick * k`` lowest-margin records are taken round-robin over
  their clusters, smallest cluster first (:func:`curate.selectors.cluster.round_robin_pick`).
* ``badge``: k-means++ over gradient embeddings (:func:`curate.scorers.classifier_models.badge_embeddings`,
  :func:`curate.selectors.badge.kmeanspp_select`) of the ``badge_candidates`` records with the lowest margin
  (the full ``K * d`` gradient matrix of a large pool does not fit comfortably in memory).

The preference loops are in :mod:`curate.bench.label_efficiency_preference_loops`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.bench.label_efficiency_metrics import expected_calibration_error
from curate.errors import InputError
from curate.scorers.classifier_models import DEFAULT_C, ClassifierModel, GradientEmbeddings, fit_classifier
from curate.scorers.uncertainty import SINGLE_MODEL_METHODS
from curate.selectors import BADGE, ClusterPick, Prefilter, PrefilterCentroid, RandomMix, RoundRobin, TopK
from curate.selectors.base import Selector
from curate.selectors.cluster import pool_clusters

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
StepFn = Callable[[], None]
CLASSIFY_STRATEGIES = ("random", "margin", "entropy", "least_confidence", "cluster-margin", "cluster-entropy",
                       "badge", "prefilter-cluster-margin", "prefilter-centroid-margin", "rr-cluster-margin")
MARGIN_STRATEGIES = ("badge", "prefilter-cluster-margin", "prefilter-centroid-margin", "rr-cluster-margin")


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
        C: classify: inverse L2 strength of the logistic regression; base: its ``fit_classifier`` ``base`` (the
            columns before the word columns of ``minilm+words`` features; None: no word columns).
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
    base: int | None = None
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


def select_batch(selector: Selector, scores: FloatArray, labelled: npt.NDArray[np.bool_], k: int, *,
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
    if strategy == "prefilter-centroid-margin":
        return PrefilterCentroid(factor=cfg.candidates_per_pick)
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
                               previous=model, rng=rng, C=cfg.C, base=cfg.base)
        return float(np.mean(np.argmax(model.predict_proba(data.x_test), axis=1) == data.y_test))

    def pick(labelled: npt.NDArray[np.bool_], k: int) -> IntArray:
        assert model is not None
        scores, probs = _classify_scores(strategy, model, data)
        embeddings: Any = GradientEmbeddings(probs, data.x_pool) if strategy == "badge" else data.x_pool
        return select_batch(classify_selector(strategy, cfg, fixed), scores, labelled, k, embeddings=embeddings,
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


def classify_full_pool_metric(data: ClassifyData, cfg: LoopConfig, *, rng: np.random.Generator) -> float:
    """Test accuracy of the classifier trained on the whole pool (every oracle answer): the ceiling of the curves."""
    model = fit_classifier(data.x_pool, [data.classes[c] for c in data.answers], classes=data.classes, rng=rng,
                           C=cfg.C, max_iter=500, base=cfg.base)
    return float(np.mean(np.argmax(model.predict_proba(data.x_test), axis=1) == data.y_test))
