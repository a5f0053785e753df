"""``curate bench label-efficiency``: learning curves of curate's strategies against random sampling.

Pipeline (pure and in memory; no workspace database): labelled file(s) with column mapping
(:mod:`~curate.bench.label_efficiency_data`) -> features, cached on disk
(:mod:`~curate.bench.label_efficiency_features`) -> for each oracle-noise level, seed and strategy the simulated
active-learning loop (:mod:`~curate.bench.label_efficiency_loops`) -> curves, label-efficiency ratios, final
accuracy, per-class precision / recall, calibration error (:mod:`~curate.bench.label_efficiency_metrics`) ->
JSON and a PNG plot (:mod:`~curate.bench.label_efficiency_plot`).

All strategies of one seed share the seed set and the oracle's answers (the same items are mislabelled), so
their curves differ only by what they chose. The test set and calibration slice are fixed across seeds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.bench import label_efficiency_loops as loops
from curate.bench import label_efficiency_preference_loops as pref_loops
from curate.bench.label_efficiency_data import (
    LabelledSet,
    Split,
    budget_for_pool,
    budget_steps,
    check_test_labels,
    curve_warnings,
    load_labelled,
    make_split,
    noisy_class_answers,
    noisy_preference_answers,
)
from curate.bench.label_efficiency_features import (
    EmbeddingPlusWords,
    HashingFeaturizer,
    MiniLMFeaturizer,
    PairFeaturizer,
    TextFeaturizer,
    TextPairFeaturizer,
    classify_features,
    lm_pair_features,
    prompt_features,
    tfidf_pair_features,
)
from curate.bench.label_efficiency_metrics import (
    mean_final,
    mean_gain,
    ratio_report,
    summarise_curves,
    t_interval,
    verdict,
)
from curate.bench.label_efficiency_null import with_null
from curate.errors import InputError
from curate.ingest.readers import tabular_columns
from curate.runtime.lm_features import LMHiddenStateFeaturizer, standardise
from curate.scorers.classifier_models import DEFAULT_C

ProgressFn = Callable[[str, int, int], None]
DEFAULTS: dict[str, dict[str, Any]] = {
    "classify": {"seeds": 3, "start": 2, "batch": 100, "budget": 1500, "target_ratio": 2.0,
                 "strategies": ("random", "margin", "entropy", "cluster-margin")},
    "preference": {"seeds": 5, "start": 50, "batch": 50, "budget": 1000, "target_ratio": 1.2,
                   "strategies": ("random", "disagreement", "bald", "entropy")},
}
FEATURES = {"classify": ("minilm", "minilm+words", "hashing"), "preference": ("minilm", "smollm2", "hashing", "tfidf")}


@dataclass(frozen=True)
class BenchConfig:
    """Settings of a benchmark run; ``None`` fields take the task's default (:data:`DEFAULTS`).

    Attributes:
        task: ``"classify"`` or ``"preference"``.
        seeds: seeds per strategy.
        strategies: ``loops.CLASSIFY_STRATEGIES`` or ``pref_loops.PREFERENCE_STRATEGIES``; must include "random".
        start: seed set: labels per class (classify) or random pairs (preference).
        batch / budget: labels per round and the last budget.
        random_mix: share of each batch drawn at random by the non-random strategies.
        oracle_noise: fraction of flipped oracle answers; the run covers 0 and this level (if > 0).
        clusters_per_pick / badge_candidates / candidates_per_pick / pool_cluster_size / round_robin_within / C /
            base / n_heads / l2: see :class:`loops.LoopConfig` (``base`` is set from the features).
        test_size / calibration_size / split_seed: see :func:`make_split`.
        pool_limit: keep only this many pool records (a seeded random subset; for slow features).
        features: ``minilm`` (default), ``smollm2`` (preference), ``tfidf`` (preference: word 1-2-gram TF-IDF of
            the response reduced by SVD, fitted on the pool; no model), ``minilm+words`` (classify: the loop's
            ``--embedder minilm+words``, words fitted on the pool) or ``hashing`` (no model).
        learner / prior_precision / novelty_beta: preference: see :class:`loops.LoopConfig`.
        max_prompt_chars: preference with a text embedder: prompt characters kept before the response.
        standardise: preference: centre and scale features by the pool's statistics (default: for smollm2, whose
            features are then scaled to a pool mean ``||a - b||`` of 1 as TF-IDF's are).
        null_streams: random run again from this many other streams, each read against random: the ratio's null.
    """

    task: str
    seeds: int | None = None
    strategies: tuple[str, ...] | None = None
    start: int | None = None
    batch: int | None = None
    budget: int | None = None
    random_mix: float = 0.1
    oracle_noise: float = 0.0
    clusters_per_pick: float = 2.0
    badge_candidates: int = 2000
    candidates_per_pick: float = 5.0
    pool_cluster_size: int = 20
    round_robin_within: str = "random"
    C: float = DEFAULT_C
    base: int | None = None
    n_heads: int = 8
    l2: float = 1e-2
    test_size: float | None = None
    calibration_size: float | None = None
    split_seed: int = 0
    pool_limit: int | None = None
    features: str = "minilm"
    max_prompt_chars: int | None = 600
    standardise: bool | None = None
    learner: str = "ensemble"
    prior_precision: float = 1.0
    novelty_beta: float = 0.3
    null_streams: int = 0

    def resolved(self) -> BenchConfig:
        """A copy with the task defaults filled in, validated."""
        if self.task not in DEFAULTS:
            raise InputError(f"--task must be one of {', '.join(DEFAULTS)}; got {self.task!r}.")
        d = DEFAULTS[self.task]
        cfg = dataclasses.replace(
            self, seeds=d["seeds"] if self.seeds is None else self.seeds,
            strategies=tuple(self.strategies or d["strategies"]),
            start=d["start"] if self.start is None else self.start,
            batch=d["batch"] if self.batch is None else self.batch,
            budget=d["budget"] if self.budget is None else self.budget,
            standardise=self.features == "smollm2" if self.standardise is None else self.standardise)
        known = loops.CLASSIFY_STRATEGIES if self.task == "classify" else pref_loops.PREFERENCE_STRATEGIES
        unknown = [s for s in cfg.strategies or () if s not in known]
        if unknown or "random" not in (cfg.strategies or ()):
            raise InputError(f"--strategies for {self.task} must include random and come from "
                             f"{', '.join(known)}; got {', '.join(cfg.strategies or ())}.")
        if self.features not in FEATURES[self.task]:
            raise InputError(f"--features for {self.task} must be one of {', '.join(FEATURES[self.task])}; "
                             f"got {self.features!r}.")
        for name in ("seeds", "start", "batch", "budget"):
            if int(getattr(cfg, name)) < 1:
                raise InputError(f"--{name} must be a positive integer; got {getattr(cfg, name)!r}.")
        if self.null_streams < 0:
            raise InputError(f"--null-streams must be 0 (none) or more; got {self.null_streams!r}.")
        if self.learner not in pref_loops.LEARNERS:
            raise InputError(f"--learner must be one of {', '.join(pref_loops.LEARNERS)}; got {self.learner!r}.")
        if self.task == "preference":
            own = pref_loops.LAPLACE_STRATEGIES if self.learner == "laplace" else pref_loops.ENSEMBLE_STRATEGIES
            wrong = [s for s in cfg.strategies or () if s not in own]
            if wrong:
                raise InputError(f"--strategies {', '.join(wrong)} do not go with --learner {self.learner}; "
                                 f"use some of {', '.join(own)}.")
        if not 0 <= self.random_mix < 1:
            raise InputError(f"--random-mix must be in [0, 1); got {self.random_mix!r}.")
        return cfg

    def loop_config(self, budgets: Sequence[int]) -> loops.LoopConfig:
        """The per-loop settings for these budgets."""
        return loops.LoopConfig(budgets=tuple(int(b) for b in budgets), random_mix=self.random_mix,
                                clusters_per_pick=self.clusters_per_pick, badge_candidates=self.badge_candidates,
                                candidates_per_pick=self.candidates_per_pick,
                                pool_cluster_size=self.pool_cluster_size,
                                round_robin_within=self.round_robin_within, C=self.C, base=self.base,
                                n_heads=self.n_heads, l2=self.l2, learner=self.learner,
                                prior_precision=self.prior_precision,
                                novelty_beta=self.novelty_beta)


@contextmanager
def rich_progress(*, transient: bool = False) -> Iterator[ProgressFn]:
    """Progress as a :data:`ProgressFn` ``(description, done, total)``: a bar on a terminal, plain lines with rate
    and ETA when piped (:func:`curate.cli.progress.bar_progress`), nothing with ``--quiet``."""
    from curate.cli.progress import bar_progress

    with bar_progress() as bar:
        tasks: dict[str, Any] = {}

        def update(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total, unit="steps")
            bar.update(tasks[description], completed=done, total=total)

        yield update


# --------------------------------------------------------------------------------------------- features


def _text_featurizer(cfg: BenchConfig, cache_dir: Path | None, progress: ProgressFn | None) -> TextFeaturizer:
    if cfg.features == "hashing":
        return HashingFeaturizer()
    minilm = MiniLMFeaturizer(cache_dir, progress)
    return EmbeddingPlusWords(minilm) if cfg.features == "minilm+words" else minilm


def _pair_featurizer(cfg: BenchConfig, cache_dir: Path | None, progress: ProgressFn | None) -> PairFeaturizer:
    if cfg.features == "smollm2":
        if cache_dir is None:
            raise InputError("--features smollm2 needs a --cache-dir (the converted model and features live there).")
        on = (lambda d, t: progress("SmolLM2 features", d, t)) if progress else None  # noqa: E731
        return LMHiddenStateFeaturizer(cache_dir, on_progress=on)
    return TextPairFeaturizer(_text_featurizer(cfg, cache_dir, progress), max_prompt_chars=cfg.max_prompt_chars)


def _featurizer_name(f: Any) -> str:
    return str(getattr(f, "name", type(f).__name__))


# --------------------------------------------------------------------------------------------- runs


def _classify_data(split: Split, x: np.ndarray, noise: float, seed: int) -> loops.ClassifyData:
    classes = tuple(sorted(set(split.pool.labels) | set(split.test.labels) | set(split.calibration.labels)))
    code = {c: i for i, c in enumerate(classes)}
    n_pool, n_test = len(split.pool), len(split.test)
    gold = np.array([code[c] for c in split.pool.labels], dtype=np.intp)
    answers = noisy_class_answers(gold, len(classes), noise, rng=np.random.default_rng([seed, 7]))
    return loops.ClassifyData(
        classes, x[:n_pool], answers, x[n_pool:n_pool + n_test],
        np.array([code[c] for c in split.test.labels], dtype=np.intp), x[n_pool + n_test:],
        np.array([code[c] for c in split.calibration.labels], dtype=np.intp))


def pref_data(split: Split, a: np.ndarray, b: np.ndarray, noise: float, seed: int,
              prompts: np.ndarray | None = None) -> pref_loops.PreferenceData:
    n_pool, n_test = len(split.pool), len(split.test)
    swapped = noisy_preference_answers(n_pool, noise, rng=np.random.default_rng([seed, 7]))
    prompt_ids = np.unique(np.asarray(split.pool.texts), return_inverse=True)[1].reshape(-1).astype(np.intp)
    return pref_loops.PreferenceData(a[:n_pool], b[:n_pool], swapped, a[n_pool:n_pool + n_test],
                                b[n_pool:n_pool + n_test], a[n_pool + n_test:], b[n_pool + n_test:], prompts,
                                prompt_ids)


@dataclass
class _Counter:
    label: str
    progress: ProgressFn | None
    done: int = 0
    total: int = 0

    def step(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.label, self.done, self.total)


def run_noise_level(cfg: BenchConfig, split: Split, features: tuple[np.ndarray, ...], noise: float, *,
                    progress: ProgressFn | None = None, only: Sequence[str] | None = None,
                    stream: int = 0) -> dict[str, Any]:
    """All seeds and strategies (``only``: just these) at one oracle-noise level: curves, ratios, final figures
    (JSON-ready); without random among them, ratios and mean gains are ``{}``. ``stream`` > 0 draws the loops'
    choices from another random stream (same seed sets and data): random against random, the ratio's null."""
    assert cfg.seeds is not None and cfg.strategies is not None and cfg.start is not None
    strategies = tuple(only) if only is not None else cfg.strategies
    per_seed: dict[str, list[list[float]]] = {s: [] for s in strategies}
    finals: dict[str, list[dict[str, Any]]] = {s: [] for s in strategies}
    seconds = dict.fromkeys(strategies, 0.0)
    budgets: list[int] = []
    flipped = 0
    data: loops.ClassifyData | pref_loops.PreferenceData | None = None
    counter = _Counter(f"{cfg.task} noise={noise:g}" + (f", random again from stream {stream}" if stream else ""),
                       progress)
    for seed in range(cfg.seeds):
        seed_rng = np.random.default_rng([seed, 1])
        if cfg.task == "classify":
            data = _classify_data(split, features[0], noise, seed)
            gold = np.array([data.classes.index(c) for c in split.pool.labels], dtype=np.intp)
            initial = loops.initial_per_class(gold, cfg.start, rng=seed_rng)
            flipped = int(np.sum(data.answers != gold))
        else:
            data = pref_data(split, features[0], features[1], noise, seed,
                             features[2] if len(features) > 2 else None)
            initial = np.sort(seed_rng.choice(len(split.pool), size=min(cfg.start, len(split.pool)),
                                              replace=False)).astype(np.intp)
            flipped = int(data.swapped.sum())
        budgets = budget_steps(len(initial), int(cfg.batch or 1), min(int(cfg.budget or 1), len(split.pool)))
        loop_cfg = cfg.loop_config(budgets)
        counter.total = cfg.seeds * len(strategies) * len(budgets)
        for strategy in strategies:
            rng = np.random.default_rng([seed, 2] if stream == 0 else [seed, 2, stream])

            started = time.perf_counter()
            if isinstance(data, loops.ClassifyData):
                result = loops.run_classify(strategy, data, initial, loop_cfg, rng=rng, step=counter.step)
            else:
                result = pref_loops.run_preference(strategy, data, initial, loop_cfg, rng=rng, step=counter.step)
            seconds[strategy] += time.perf_counter() - started
            per_seed[strategy].append(result.curve)
            finals[strategy].append(result.final)
    assert data is not None
    classes = data.classes if isinstance(data, loops.ClassifyData) else None
    whole_cfg, whole_rng = cfg.loop_config(budgets), np.random.default_rng(0)
    ceiling = (loops.classify_full_pool_metric(data, whole_cfg, rng=whole_rng) if isinstance(data, loops.ClassifyData)
               else pref_loops.preference_full_pool_metric(data, whole_cfg, rng=whole_rng))
    return {
        "oracle_noise": noise, "flipped_answers_in_pool": flipped, "budgets": budgets, "n_pool": len(split.pool),
        "n_test": len(split.test),
        "curves": {s: summarise_curves(per_seed[s]) for s in strategies},
        "ratios": ratio_report(budgets, per_seed) if "random" in per_seed else {},
        "mean_gain_over_random": mean_gain(per_seed) if "random" in per_seed else {},
        "final_accuracy": {s: t_interval([c[-1] for c in per_seed[s]]) for s in strategies},
        "final": {s: mean_final(finals[s], classes) for s in strategies},
        "full_pool_accuracy": ceiling,
        "seconds": {s: round(v, 2) for s, v in seconds.items()},
    }


def run_benchmark(cfg: BenchConfig, data_path: Path, *, test_path: Path | None = None,
                  mapping: dict[str, str] | None = None, columns: list[str] | None = None, encoding: str = "utf-8",
                  test_mapping: dict[str, str] | None = None, cache_dir: Path | None = None,
                  text_featurizer: TextFeaturizer | None = None, pair_featurizer: PairFeaturizer | None = None,
                  progress: ProgressFn | None = None) -> dict[str, Any]:
    """Load, split, featurize, run every noise level / seed / strategy and return the JSON-ready report.

    ``text_featurizer`` (classify) or ``pair_featurizer`` (preference) replace the ``cfg.features`` model
    (tests pass a :class:`HashingFeaturizer`). ``columns`` names the columns of a headerless CSV/TSV pool file
    (and of the test file, when it is one too); ``encoding`` is that of both files. ``test_mapping``: the test
    file's own column mapping (default ``mapping``).
    """
    asked_budget, cfg = cfg.budget is not None, cfg.resolved()
    started = time.perf_counter()
    pool_file = load_labelled(data_path, cfg.task, mapping=mapping, columns=columns, encoding=encoding)
    test_file: LabelledSet | None = None
    if test_path is not None:
        test_file = load_labelled(test_path, cfg.task, mapping=mapping if test_mapping is None else test_mapping,
                                  columns=tabular_columns(test_path, columns), encoding=encoding)
    split = make_split(pool_file, cfg.task, test=test_file, test_size=cfg.test_size,
                       calibration_size=cfg.calibration_size, seed=cfg.split_seed)
    if cfg.pool_limit is not None and cfg.pool_limit < len(split.pool):
        keep = np.random.default_rng([cfg.split_seed, 3]).choice(len(split.pool), cfg.pool_limit, replace=False)
        split.pool = split.pool.take(np.sort(keep))
    budget, warnings = budget_for_pool(int(cfg.budget or 1), len(split.pool), asked=asked_budget)
    cfg = dataclasses.replace(cfg, budget=budget)
    if cfg.task == "classify" and test_file is not None:
        warnings = check_test_labels(split.pool, test_file) + warnings
    warnings += curve_warnings(split, cfg.task, start=int(cfg.start or 1), batch=int(cfg.batch or 1), budget=budget)
    t0 = time.perf_counter()
    parts = (split.pool, split.test, split.calibration)
    features: tuple[np.ndarray, ...]
    if cfg.task == "classify":
        featurize = text_featurizer or _text_featurizer(cfg, cache_dir, progress)
        x, C, base = classify_features(featurize, split, cfg.C)
        cfg = dataclasses.replace(cfg, C=C, base=base)
        features, feat_name = (x,), _featurizer_name(featurize)
    elif cfg.features == "tfidf" and pair_featurizer is None:
        features, feat_name = tfidf_pair_features(split), "tfidf-1-2gram-svd256(response)"
    elif cfg.features == "smollm2" and pair_featurizer is None:  # standardised, scaled to mean ||a - b|| = 1
        lm = _pair_featurizer(cfg, cache_dir, progress)
        features, feat_name = lm_pair_features(split, lm), _featurizer_name(lm)
    else:
        pair = pair_featurizer or _pair_featurizer(cfg, cache_dir, progress)
        prompts = [t for p in parts for t in p.texts]
        ab = np.asarray(pair(prompts + prompts, [r for p in parts for r in p.chosen]
                             + [r for p in parts for r in p.rejected]), dtype=np.float64)
        a, b = ab[: len(prompts)], ab[len(prompts):]
        if cfg.standardise:
            n_pool = len(split.pool)
            _, a, b = standardise(np.concatenate([a[:n_pool], b[:n_pool]]), a, b)
        features, feat_name = (a, b), _featurizer_name(pair)
    if cfg.task == "preference" and set(pref_loops.PROMPT_STRATEGIES) & set(cfg.strategies or ()):
        features = (*features[:2], prompt_features(split))
    feat_seconds = time.perf_counter() - t0
    levels = [0.0] + ([cfg.oracle_noise] if cfg.oracle_noise > 0 else [])
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the fits are small, and on a busy 2-core machine two threads run them ~10x slower.
    with threadpool_limits(limits=1):
        runs = {f"noise_{lvl:g}": run_noise_level(cfg, split, features, lvl, progress=progress) for lvl in levels}
        for lvl in levels if cfg.null_streams > 0 else ():
            with_null(runs[f"noise_{lvl:g}"], [run_noise_level(cfg, split, features, lvl, progress=progress, only=(
                "random",), stream=i)["curves"]["random"]["per_seed"] for i in range(1, cfg.null_streams + 1)])
    return {
        "benchmark": "label_efficiency", "task": cfg.task,
        "data": {"pool_file": pool_file.summary(), "test_file": test_file.summary() if test_file else None,
                 "mapping": mapping or {}, "split": split.summary(),
                 "test_ids_in_pool": len(set(split.test.ids) & set(split.pool.ids))},
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()},
        "features": {"name": feat_name, "dim": int(features[0].shape[1]), "seconds": round(feat_seconds, 2)},
        "metric": "test accuracy" if cfg.task == "classify" else "test pairwise accuracy (P(chosen > rejected) > 0.5)",
        "runs": runs,
        "verdict": verdict(runs, target=DEFAULTS[cfg.task]["target_ratio"], explain=cfg.task == "preference"),
        "warnings": warnings,
        "seconds": round(time.perf_counter() - started, 2),
    }
