"""Preference acquisition against random over several pool/test splits: how much of a ratio is the split.

The preference suite (:mod:`curate.bench.preference_suite`) holds one seeded split per set fixed and varies only the
loops' seeds, so on a small set (UltraFeedback's 1,200 pairs: 250 test pairs, a binomial standard error of 0.03) a
figure can be the luck of one test set. Here :func:`run_splits` runs :func:`~curate.bench.preference_suite.run_set`
on ``splits`` seeded splits (repeated sub-sampling by prompt), a few loop seeds each, keeping every finished split in
``resume_dir`` (a rerun, or one after Ctrl-C, runs only the rest); :func:`pool_splits` pools the per-seed curves
(each strategy curve paired with random's on the same split and seed) into ratios, mean gains and a test of whether
random's curve still rises.

Every figure is test pairwise accuracy, higher = better; ratios are random's labels / the strategy's labels at
random's final accuracy (:func:`~curate.bench.label_efficiency_metrics.ratio_report`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.bench.label_efficiency_metrics import (
    mean_gain,
    ratio_report,
    round_or_none,
    summarise_curves,
    t_interval,
)
from curate.bench.label_efficiency_null import ratio_null
from curate.bench.preference_suite import PreferenceSet, ProgressFn, run_set
from curate.errors import InputError


def _split_path(resume_dir: Path, pset: PreferenceSet, key: Mapping[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return resume_dir / f"{pset.name}-split{key['split_seed']}-{digest}.json"


def run_splits(pset: PreferenceSet, candidates: Mapping[str, Mapping[str, Any]], *, splits: Sequence[int],
               seeds: int, features: str = "tfidf", cache_dir: Path | None = None,
               resume_dir: Path | None = None, progress: ProgressFn | None = None,
               say: Callable[[str], None] | None = None, null_streams: int = 0) -> list[dict[str, Any]]:
    """:func:`run_set` on each split seed in ``splits`` (``seeds`` loop seeds each); one report per split.
    ``null_streams``: random run again from that many other streams per split (:func:`run_set`).

    Finished splits are kept in ``resume_dir`` (keyed by the set, split, seeds, features and candidates) and read
    back instead of run again. ``say(message)`` is told each split's outcome.
    """
    if not splits:
        raise InputError("--splits must name at least one split seed.")
    reports = []
    for split_seed in splits:
        key = {"set": pset.name, "path": str(pset.path), "split_seed": int(split_seed), "seeds": seeds,
               "features": features, "candidates": {k: dict(v) for k, v in candidates.items()},
               "budgets": [pset.start, pset.batch, pset.budget, pset.test_size]}
        if null_streams:  # keyed only when asked, so the splits kept before it existed are still read back
            key["null_streams"] = null_streams
        path = _split_path(resume_dir, pset, key) if resume_dir is not None else None
        if path is not None and path.exists():
            report, how = json.loads(path.read_text(encoding="utf-8")), "read back"
        else:
            report = run_set(pset, candidates, seeds=seeds, features=features, cache_dir=cache_dir,
                             progress=progress, split_seed=int(split_seed), null_streams=null_streams)
            how = "ran"
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(report), encoding="utf-8")
        reports.append(report)
        if say is not None:
            ratios = report["runs"]["noise_0"]["ratios"]
            say(f"{pset.name} split {split_seed} ({how}): " + ", ".join(
                f"{name} {'never' if r['ratio'] is None else format(r['ratio'], '.2f')}" for name, r in ratios.items()))
    return reports


def add_curves(reports: Sequence[Mapping[str, Any]], earlier: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Copies of ``reports`` (one per split, as :func:`run_splits` returns) holding also the candidates of
    ``earlier``, a :func:`pool_splits` result on the same set, splits, loop seeds and budgets: a null run then reads
    candidates that ran before it, without running their loops again. Candidates already in ``reports`` are kept.

    Raises:
        InputError: ``earlier`` is of another set, splits, seeds or budgets, or random's curves differ (the two
            runs did not share their splits and seed sets, so their curves cannot be paired).
    """
    splits = [r["config"].get("split_seed", 0) for r in reports]
    runs = [r["runs"]["noise_0"] for r in reports]
    seeds = len(runs[0]["curves"]["random"]["per_seed"]) if runs else 0
    same = (earlier.get("set") == (reports[0]["set"] if reports else None) and earlier.get("splits") == splits
            and earlier.get("seeds_per_split") == seeds and runs and earlier.get("budgets") == runs[0]["budgets"])
    if not same:
        raise InputError(f"the earlier run ({earlier.get('set')}, splits {earlier.get('splits')}, "
                         f"{earlier.get('seeds_per_split')} seeds each) is not of this run's set, splits {splits} and "
                         f"{seeds} seeds with the same budgets: its curves cannot be paired with these.")
    random_now = np.asarray([c for run in runs for c in run["curves"]["random"]["per_seed"]], dtype=np.float64)
    random_then = np.asarray(earlier["curves"]["random"]["per_seed"], dtype=np.float64)
    if random_now.shape != random_then.shape or not np.allclose(random_now, random_then, atol=1e-9):
        raise InputError("random's curves differ between the earlier run and this one: they did not share their "
                         "splits and seed sets (or the features changed), so their curves cannot be paired.")
    out = [copy.deepcopy(dict(r)) for r in reports]
    for i, report in enumerate(out):
        run = report["runs"]["noise_0"]
        for name, curves in earlier["curves"].items():
            if name == "random" or name in run["curves"]:
                continue
            run["curves"][name] = {"per_seed": curves["per_seed"][i * seeds : (i + 1) * seeds]}
            run["ratios"][name] = {"ratio": earlier["per_split_ratio"][name][i]}
    return out


def pool_splits(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pooled figures of one set's per-split reports (JSON-ready).

    Returns ``curves`` (per strategy: mean / sd / per-seed over ``splits x seeds`` curves), ``ratios`` and
    ``mean_gain_over_random`` over those pooled curves, ``per_split_ratio`` (each split's ratio on its own mean
    curves) and ``random_rise``: random's gain from the middle budget to the last, per curve, as a t-interval;
    ``random_curve_rises`` is True when that interval is above 0 (the curve keeps learning beyond split and seed
    noise). When the splits were run with null streams, ``null``: random against random over the pooled curves
    (:func:`~curate.bench.label_efficiency_null.ratio_null`), with each candidate's p-value.

    Raises:
        InputError: no reports, or reports of different sets, budgets or candidates.
    """
    if not reports:
        raise InputError("pool_splits needs at least one split's report.")
    first = reports[0]
    runs = [r["runs"]["noise_0"] for r in reports]
    names = list(runs[0]["curves"])
    for report, run in zip(reports, runs, strict=True):
        if report["set"] != first["set"] or run["budgets"] != runs[0]["budgets"] or list(run["curves"]) != names:
            raise InputError(f"pool_splits: the reports must share one set, its budgets and candidates; got "
                             f"{report['set']!r} with {list(run['curves'])} beside {first['set']!r} with {names}.")
    budgets = runs[0]["budgets"]
    pooled = {name: [curve for run in runs for curve in run["curves"][name]["per_seed"]] for name in names}
    random = np.asarray(pooled["random"], dtype=np.float64)
    rise = t_interval([float(g) for g in random[:, -1] - random[:, len(budgets) // 2]])
    ratios = ratio_report(budgets, pooled)
    null = None
    n_streams = {len(run.get("null_curves", [])) for run in runs}
    if n_streams != {0}:
        if len(n_streams) != 1:
            raise InputError(f"pool_splits: the splits were run with different numbers of null streams "
                             f"({sorted(n_streams)}); rerun them with one --null-streams.")
        streams = [[curve for run in runs for curve in run["null_curves"][i]] for i in range(n_streams.pop())]
        null = ratio_null(budgets, pooled["random"], streams, {n: r["ratio"] for n, r in ratios.items()},
                          {n: pooled[n] for n in names if n != "random"})
    out = {
        "set": first["set"], "source": first["data"]["pool_file"]["source"], "features": first["features"]["name"],
        "splits": [r["config"].get("split_seed", 0) for r in reports],
        "seeds_per_split": first["config"]["seeds"], "curves_per_strategy": len(pooled["random"]),
        "test_pairs": first["data"]["split"]["test"], "budgets": budgets,
        "curves": {name: summarise_curves(c) for name, c in pooled.items()},
        "ratios": ratios, "mean_gain_over_random": mean_gain(pooled),
        "per_split_ratio": {name: [round_or_none(run["ratios"][name]["ratio"]) for run in runs]
                            for name in names if name != "random"},
        "full_pool_accuracy": [run["full_pool_accuracy"] for run in runs],
        "random_rise": rise, "random_curve_rises": bool(rise.get("ci95") and rise["ci95"][0] > 0),
    }
    if null is not None:
        out["null"] = null
    return out


def as_report(pooled: Mapping[str, Any]) -> dict[str, Any]:
    """The pooled figures shaped as a one-noise-level ``run_benchmark`` report, for
    :func:`~curate.bench.label_efficiency_plot.plot_report`."""
    run = {"budgets": pooled["budgets"], "curves": pooled["curves"], "ratios": pooled["ratios"],
           "mean_gain_over_random": pooled["mean_gain_over_random"], "n_test": pooled["test_pairs"],
           "oracle_noise": 0.0, "flipped_answers_in_pool": 0,
           "full_pool_accuracy": float(np.mean(pooled["full_pool_accuracy"]))}
    if "null" in pooled:
        run["null"] = pooled["null"]
    return {"task": "preference", "config": {"seeds": f"{len(pooled['splits'])} splits x {pooled['seeds_per_split']}"},
            "metric": "test pairwise accuracy", "data": {"pool_file": {"source": pooled["source"]}},
            "features": {"name": pooled["features"]}, "runs": {"noise_0": run}}


__all__ = ["as_report", "pool_splits", "run_splits"]
