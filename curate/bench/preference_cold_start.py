"""The cold branch of ``preference-rank``: which pairs to rank first, before any pair is ranked.

The preference suite (:mod:`curate.bench.preference_suite`) starts every loop from 50 random labels, so it never
measures the recipe's first round. Here the first ``start`` labels of every seed are picked with no label at all,
by each :data:`COLD_PICKS` strategy (each wrapped in the recipe's 10% random mix), and the loop then goes on to
``budget`` with a warm strategy: prompt coverage (the recipe's once pairs are ranked) or random. Same features,
learner (Laplace Bradley-Terry), splits and seeds as the suite.

Cold picks (higher score first, the product's scorers on the pool):

- ``random``: the suite's seed set.
- ``density``: ``density`` top-k over MiniLM embeddings of prompt + both responses (what the recipe ships).
- ``density-cluster``: ``density`` with the ``cluster`` selector (most typical record of each k-means cluster).
- ``prompt-coverage``: ``prompt_coverage`` with nothing covered (greedy farthest-first over the prompts).

Figures: test accuracy at every budget (higher = better), the paired gain over random-then-random at the first
budget (the cold pick alone) and over the budgets after it (:func:`mean_gain`), t-intervals over seeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.bench import label_efficiency_loops as loops
from curate.bench import label_efficiency_preference_loops as pref_loops
from curate.bench.label_efficiency import pref_data
from curate.bench.label_efficiency_data import budget_steps, load_labelled, make_split
from curate.bench.label_efficiency_features import prompt_features
from curate.bench.label_efficiency_metrics import mean_gain, summarise_curves, t_interval
from curate.bench.preference_suite import PreferenceSet, ProgressFn, pair_features
from curate.errors import InputError
from curate.scorers.embedding import density
from curate.scorers.prompt_coverage import coverage_scores
from curate.selectors import ClusterPick, RandomMix, TopK

Embed = Callable[[Sequence[str]], npt.NDArray[Any]]
COLD_PICKS = ("random", "density", "density-cluster", "prompt-coverage")
WARM = {"prompt-coverage": "novelty", "random": "random"}  # warm strategy label -> Laplace loop strategy
SHIPPED = "density"  # preference-rank's COLD_SCORER with its topk selector


def _minilm(cache_dir: Path | None, progress: ProgressFn | None) -> Embed:
    from curate.runtime.embeddings import Embedder

    embedder = Embedder("minilm", cache_dir=cache_dir)
    on = None if progress is None else (lambda done, total: progress("MiniLM pair texts", done, total))
    return lambda texts: embedder.embed_texts(texts, on_progress=on)


@dataclass(frozen=True)
class ColdScores:
    """What the cold picks rank by, per pool pair: ``embeddings (n, d)`` unit rows, ``density (n,)`` and
    ``coverage (n,)`` (higher = picked first)."""

    embeddings: npt.NDArray[np.float64]
    density: npt.NDArray[np.float64]
    coverage: npt.NDArray[np.float64]


def cold_scores(prompts: Sequence[str], texts: Sequence[str], *, embed: Embed) -> ColdScores:
    """The product's ``density`` (over ``embed(texts)``, prompt + responses as a record embeds) and
    ``prompt_coverage`` (over ``prompts``, nothing covered) of every pool pair; no label used."""
    emb = np.asarray(embed(list(texts)), dtype=np.float64)
    return ColdScores(emb, density(emb), coverage_scores(list(prompts), []))


def cold_picks(scores: ColdScores, k: int, *, seed: int, random_mix: float = 0.1) -> dict[str, npt.NDArray[np.intp]]:
    """Each :data:`COLD_PICKS` strategy's ``k`` sorted pool indices for one seed (each in a ``random_mix``)."""
    n = len(scores.density)
    if not 0 < k < n:
        raise InputError(f"cold start: the first batch must be between 1 and the pool size - 1 ({n - 1}); got {k}.")
    out = {"random": np.random.default_rng([seed, 1]).choice(n, size=k, replace=False)}
    for name, selector, values in (("density", TopK(), scores.density),
                                   ("density-cluster", ClusterPick(metric="cosine"), scores.density),
                                   ("prompt-coverage", TopK(), scores.coverage)):
        mixed = RandomMix(selector, fraction=random_mix)  # type: ignore[arg-type]
        out[name] = np.asarray(mixed.select(values, k, embeddings=scores.embeddings,
                                            rng=np.random.default_rng([seed, 3])))
    return {name: np.sort(idx).astype(np.intp) for name, idx in out.items()}


def run_cold_start(pset: PreferenceSet, *, seeds: int, features: str = "smollm2", cache_dir: Path | None = None,
                   embed: Embed | None = None, start: int = 50, batch: int = 100, budget: int = 550,
                   progress: ProgressFn | None = None) -> dict[str, Any]:
    """Every cold pick followed by every warm strategy on one set, ``seeds`` seeds; JSON-ready.

    ``embed``: texts -> ``(n, d)`` unit-norm embeddings for density (default MiniLM, cached in ``cache_dir``).
    Curves are keyed ``"<cold> -> <warm>"``; ``"random -> random"`` is the baseline.
    """
    started = time.perf_counter()
    split = make_split(load_labelled(pset.path, "preference", mapping=pset.mapping), "preference",
                       test_size=pset.test_size)
    a, b, feature_name = pair_features(split, features, cache_dir, None, progress)
    pool = split.pool
    texts = ["\n\n".join(t for t in (p, c, r) if t) for p, c, r in zip(pool.texts, pool.chosen, pool.rejected,
                                                                          strict=True)]
    scores = cold_scores(pool.texts, texts, embed=embed or _minilm(cache_dir, progress))
    budgets = budget_steps(start, batch, min(budget, len(pool)))
    cfg = loops.LoopConfig(budgets=tuple(budgets), random_mix=0.1, novelty_beta=1.0, learner="laplace")
    data = pref_data(split, a, b, 0.0, 0, prompt_features(split))  # noise 0: no answer flipped, whatever the seed
    per_seed: dict[str, list[list[float]]] = {}
    total, done = seeds * len(COLD_PICKS) * len(WARM), 0
    for seed in range(seeds):
        picks = cold_picks(scores, start, seed=seed)
        for cold in COLD_PICKS:
            for warm, strategy in WARM.items():
                result = pref_loops.run_preference_laplace(strategy, data, picks[cold], cfg,
                                                      rng=np.random.default_rng([seed, 2]))
                per_seed.setdefault(f"{cold} -> {warm}", []).append(result.curve)
                done += 1
                if progress is not None:
                    progress(f"cold start {pset.name}", done, total)
    base = "random -> random"
    first = {k: t_interval([c[0] - r[0] for c, r in zip(v, per_seed[base], strict=True)])
             for k, v in per_seed.items() if k != base}
    later = mean_gain({("random" if k == base else k): v for k, v in per_seed.items()})
    return {
        "benchmark": "preference_cold_start", "set": pset.name, "judge": pset.judge, "seeds": seeds,
        "budgets": budgets, "n_pool": len(pool), "n_test": len(split.test), "features": feature_name,
        "shipped": SHIPPED,
        "metric": "test pairwise accuracy (higher = better)",
        "curves": {k: summarise_curves(v) for k, v in per_seed.items()},
        "first_budget_gain_over_random": first, "later_gain_over_random": later,
        "seconds": round(time.perf_counter() - started, 1),
    }


def cold_start_verdict(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per cold pick: its first-budget gain over random on each judge set (mean and 95% interval), and whether it
    lost (interval below 0) on any; ``shipped_loses`` for the recipe's own cold pick."""
    judges = [r for r in reports if r.get("judge", True)]
    out: dict[str, Any] = {}
    for cold in COLD_PICKS[1:]:
        key = f"{cold} -> random"
        gains = {r["set"]: r["first_budget_gain_over_random"][key] for r in judges}
        out[cold] = {"first_budget_gain": gains,
                     "loses_somewhere": any(g["ci95"] is not None and g["ci95"][1] < 0 for g in gains.values())}
    return {"per_pick": out, "shipped": SHIPPED, "shipped_loses": out[SHIPPED]["loses_somewhere"]}
