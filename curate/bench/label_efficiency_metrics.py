"""The figures of the label-efficiency benchmark: labels-to-reach, efficiency ratio, ECE, t-intervals, verdict.

Curves are a metric (higher = better, e.g. test accuracy) measured at increasing label budgets. The label
efficiency ratio of a strategy is ``labels random needs to reach its own final metric / labels the strategy
needs to reach that same metric``, both read off the curves with linear interpolation between measured points
(see :func:`labels_to_reach`), so a ratio of 2 means the strategy needs half the labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Reach:
    """Labels a curve needs to reach a target metric.

    Attributes:
        labels: interpolated labels (``None`` if never reached and not extrapolable).
        extrapolated: True when the curve ends below the target and ``labels`` continues its last slope.
        reason: why ``labels`` is ``None`` or extrapolated, else ``None``.
    """

    labels: float | None
    extrapolated: bool = False
    reason: str | None = None


def labels_to_reach(budgets: Sequence[float], metric: Sequence[float], target: float) -> Reach:
    """First point where the curve reaches ``target``, linearly interpolated between measured points.

    Args:
        budgets: ``(m,)`` increasing label counts.
        metric: ``(m,)`` metric at each budget; higher = better.
        target: the metric to reach.

    Returns:
        A :class:`Reach`. If the curve starts at or above ``target``, the first budget. If it never reaches it,
        the line through the last two points is extrapolated when it rises, else ``labels`` is ``None``.

    >>> labels_to_reach([100, 200, 300], [0.5, 0.7, 0.8], 0.6).labels
    150.0
    >>> labels_to_reach([100, 200], [0.5, 0.6], 0.7)
    Reach(labels=300.0, extrapolated=True, reason='never reached; extrapolated from the last two points')
    """
    b = np.asarray(budgets, dtype=np.float64)
    m = np.asarray(metric, dtype=np.float64)
    if b.ndim != 1 or b.shape != m.shape or b.size == 0:
        raise InputError(f"labels_to_reach: budgets and metric must be two (m,) arrays with m >= 1; got shapes "
                         f"{b.shape} and {m.shape}.")
    hit = np.flatnonzero(m >= target - 1e-12)
    if hit.size:
        i = int(hit[0])
        if i == 0:
            return Reach(float(b[0]))
        lo, hi = m[i - 1], m[i]
        frac = (target - lo) / (hi - lo) if hi > lo else 1.0
        return Reach(float(b[i - 1] + frac * (b[i] - b[i - 1])))
    if b.size >= 2 and m[-1] > m[-2]:
        slope = (m[-1] - m[-2]) / (b[-1] - b[-2])
        return Reach(float(b[-1] + (target - m[-1]) / slope), True,
                     "never reached; extrapolated from the last two points")
    return Reach(None, False, "never reached, and the curve is flat or falling at its end (no extrapolation)")


def efficiency_ratio(budgets: Sequence[float], random_curve: Sequence[float],
                     strategy_curve: Sequence[float]) -> dict[str, Any]:
    """Label efficiency of a strategy against random sampling (see the module docstring).

    Args:
        budgets: ``(m,)`` label counts shared by both curves.
        random_curve: ``(m,)`` random sampling's metric; its last value is the target.
        strategy_curve: ``(m,)`` the strategy's metric.

    Returns:
        ``{"ratio", "target", "random_labels", "strategy_labels", "extrapolated", "reason"}``; ``ratio`` is
        ``None`` (with ``reason``) when the strategy never reaches the target and cannot be extrapolated.

    >>> efficiency_ratio([100, 200, 300, 400], [0.5, 0.6, 0.7, 0.8], [0.6, 0.7, 0.8, 0.85])["ratio"]
    1.3333333333333333
    """
    target = float(random_curve[-1])
    rand = labels_to_reach(budgets, random_curve, target)
    strat = labels_to_reach(budgets, strategy_curve, target)
    ratio = None
    if rand.labels is not None and strat.labels is not None and strat.labels > 0:
        ratio = rand.labels / strat.labels
    return {"ratio": ratio, "target": target, "random_labels": rand.labels, "strategy_labels": strat.labels,
            "extrapolated": strat.extrapolated, "reason": strat.reason}


def round_or_none(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded for a report, ``None`` kept (a ratio that was never reached)."""
    return None if value is None else round(float(value), digits)


def t_interval(values: Sequence[float | None], confidence: float = 0.95) -> dict[str, Any]:
    """Mean and two-sided Student-t confidence interval over seeds (``None`` values are left out).

    >>> t_interval([1.0, 2.0, 3.0])["ci95"]
    [-0.4841, 4.4841]
    """
    from scipy import stats

    vals = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    out: dict[str, Any] = {"n": int(vals.size), "mean": None, "sd": None, "ci95": None}
    if vals.size == 0:
        return out
    out["mean"] = float(vals.mean())
    if vals.size >= 2:
        sd = float(vals.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, vals.size - 1)) * sd / math.sqrt(vals.size)
        out["sd"] = sd
        out["ci95"] = [round(out["mean"] - half, 4), round(out["mean"] + half, 4)]
    return out


def expected_calibration_error(confidence: npt.ArrayLike, correct: npt.ArrayLike, *, n_bins: int = 10) -> float:
    """ECE with ``n_bins`` equal-width confidence bins: ``sum_b (n_b / n) * |accuracy_b - mean confidence_b|``.

    Args:
        confidence: ``(n,)`` the model's probability of its predicted answer, in ``[0, 1]``.
        correct: ``(n,)`` bool, whether the predicted answer was right.
        n_bins: number of bins over ``[0, 1]`` (a confidence of exactly 1 goes to the last bin).

    Returns:
        ECE in ``[0, 1]``; lower = better calibrated; NaN for ``n = 0``.

    >>> round(expected_calibration_error([0.9, 0.9, 0.6, 0.6], [True, False, True, True]), 3)
    0.4
    """
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    if conf.shape != ok.shape or conf.ndim != 1:
        raise InputError(f"expected_calibration_error: confidence and correct must be two (n,) arrays; got "
                         f"{conf.shape} and {ok.shape}.")
    if conf.size == 0:
        return float("nan")
    bins = np.minimum((conf * n_bins).astype(np.intp), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        sel = bins == b
        total += sel.sum() / conf.size * abs(float(ok[sel].mean()) - float(conf[sel].mean()))
    return float(total)


def summarise_curves(per_seed: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Mean, sample sd, min and max over seeds of ``(seeds, m)`` curves, each ``(m,)``."""
    arr = np.asarray(per_seed, dtype=np.float64)
    sd = arr.std(axis=0, ddof=1) if arr.shape[0] > 1 else np.zeros(arr.shape[1])
    out: dict[str, Any] = {"mean": _r(arr.mean(axis=0)), "sd": _r(sd), "min": _r(arr.min(axis=0)),
                           "max": _r(arr.max(axis=0)), "per_seed": [_r(row) for row in arr]}
    return out


def ratio_report(budgets: Sequence[float], curves: Mapping[str, Sequence[Sequence[float]]], *,
                 baseline: str = "random") -> dict[str, dict[str, Any]]:
    """Efficiency ratio of every strategy on the seed-mean curves, plus per-seed ratios and their t-interval.

    A seed whose strategy curve never reaches random's final value (and cannot be extrapolated) counts at its
    upper bound, random's labels / the last budget (<= 1), and is listed in ``per_seed_unreached``.

    Args:
        budgets: ``(m,)`` label counts.
        curves: strategy name -> ``(seeds, m)`` metric curves; must include ``baseline``.
        baseline: the strategy the others are compared with.
    """
    if baseline not in curves:
        raise InputError(f"the strategies must include {baseline!r} (the baseline the ratio compares with).")
    base = np.asarray(curves[baseline], dtype=np.float64)
    out: dict[str, dict[str, Any]] = {}
    for name, raw in curves.items():
        if name == baseline:
            continue
        arr = np.asarray(raw, dtype=np.float64)
        report = efficiency_ratio(budgets, base.mean(axis=0), arr.mean(axis=0))
        seeds, unreached = [], []
        for s in range(min(len(arr), len(base))):
            one = efficiency_ratio(budgets, base[s], arr[s])
            if one["ratio"] is None and one["random_labels"] is not None:
                # never reached within the budget: the ratio is below random's labels / the last budget; counting
                # that bound keeps a losing seed in the interval (leaving it out would lift the interval)
                one["ratio"] = one["random_labels"] / float(budgets[-1])
                unreached.append(s)
            seeds.append(one["ratio"])
        report["per_seed"] = [round_or_none(r) for r in seeds]
        report["per_seed_unreached"] = unreached
        report["per_seed_ci"] = t_interval(seeds)
        out[name] = report
    return out


def mean_gain(curves: Mapping[str, Sequence[Sequence[float]]], *, baseline: str = "random") -> dict[str, Any]:
    """Per strategy: the mean over budgets (after the shared first one) of its metric minus the baseline's,
    per seed, as a t-interval over seeds. Robust where ratios are not: on flat curves.

    >>> mean_gain({"random": [[0.5, 0.6], [0.5, 0.7]], "x": [[0.5, 0.7], [0.5, 0.7]]})["x"]["mean"]
    0.05
    """
    base = np.asarray(curves[baseline], dtype=np.float64)
    out: dict[str, Any] = {}
    for name, raw in curves.items():
        if name != baseline:
            diff = np.asarray(raw, dtype=np.float64)[:, 1:] - base[:, 1:]
            out[name] = t_interval([round(float(d), 6) for d in diff.mean(axis=1)])
    return out


def mean_final(finals: list[dict[str, Any]], classes: Sequence[str] | None) -> dict[str, Any]:
    """Seed means of the loops' final figures (ECE, calibration accuracy, per-class precision / recall for
    ``classes``, uncertainty-vs-error correlations), as t-intervals where they vary by seed."""
    out: dict[str, Any] = {}
    for key in ("ece_calibration", "ece_test", "accuracy_calibration"):
        if key in finals[0]:
            out[key] = t_interval([f[key] for f in finals])
    if classes is not None:
        prec = np.mean([f["precision"] for f in finals], axis=0)
        rec = np.mean([f["recall"] for f in finals], axis=0)
        support = finals[0]["support"]
        out["per_class"] = {c: {"precision": round(float(p), 4), "recall": round(float(r), 4), "support": int(s)}
                            for c, p, r, s in zip(classes, prec, rec, support, strict=True)}
    if "uncertainty_vs_test_errors" in finals[0]:
        out["uncertainty_vs_test_errors"] = {
            method: {stat: t_interval([f["uncertainty_vs_test_errors"][method][stat] for f in finals])["mean"]
                     for stat in ("pearson_r", "roc_auc")}
            for method in finals[0]["uncertainty_vs_test_errors"]}
    return out


def _r(values: npt.ArrayLike) -> list[float]:
    return [round(float(v), 5) for v in np.asarray(values, dtype=np.float64)]


def point_biserial(scores: npt.ArrayLike, errors: npt.ArrayLike) -> dict[str, float | None]:
    """How well an uncertainty score flags errors: Pearson correlation with the 0/1 error indicator and ROC AUC.

    Args:
        scores: ``(n,)`` uncertainty, higher = less sure.
        errors: ``(n,)`` bool, True where the prediction was wrong.
    """
    from sklearn.metrics import roc_auc_score

    s = np.asarray(scores, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if s.size < 3 or e.min() == e.max() or s.std() == 0:
        return {"pearson_r": None, "roc_auc": None}
    return {"pearson_r": round(float(np.corrcoef(s, e)[0, 1]), 4), "roc_auc": round(float(roc_auc_score(e, s)), 4)}


def flatness(run: dict[str, Any]) -> dict[str, Any]:
    """Does random's curve still rise over the second half of the budgets, beyond the test set's noise?"""
    rand = run["curves"]["random"]["mean"]
    final = rand[-1]
    gain = final - rand[len(rand) // 2]
    se = math.sqrt(max(final * (1 - final), 1e-12) / max(run["n_test"], 1))
    return {"random_gain_second_half": round(gain, 4), "test_standard_error": round(se, 4),
            "random_curve_flat": gain < se}


def verdict(runs: Mapping[str, dict[str, Any]], *, target: float, explain: bool = False) -> dict[str, Any]:
    """Best strategy per noise level; the target counts as met only if the ratio is also meaningful.

    ``runs``: noise level -> the report of :func:`curate.bench.label_efficiency.run_noise_level`. With
    ``explain`` and the target missed at the first level, ``why_not`` lists the reasons (preference task).

    Met = point ratio >= target, the per-seed ratios' 95% t-interval lies above 1, and random's curve is not
    flat (it gains more than one test-set standard error over the second half of the budgets; on a flat curve
    the labels at which it "reaches" its final value are decided by noise). When the run has a ``null``
    (:func:`~curate.bench.label_efficiency_null.with_null`), the ratio must also exceed every ratio random reads
    against random, and its ratio against the mean of all random streams every one stream reads against the mean of
    the others (``beyond_chance``).
    """
    out: dict[str, Any] = {"target_ratio": target, "rule": "ratio >= target, per-seed 95% CI above 1, random's "
                           "curve not flat (second-half gain > test standard error), and with null streams the "
                           "ratio above every random-vs-random ratio, against random's own stream and against the "
                           "mean of all random streams"}
    for key, run in runs.items():
        ratios = {s: r["ratio"] for s, r in run["ratios"].items()}
        best = max(ratios, key=lambda s: -1.0 if ratios[s] is None else ratios[s]) if ratios else None
        best_ratio = ratios.get(best) if best else None
        ci = run["ratios"][best]["per_seed_ci"].get("ci95") if best else None
        flat = flatness(run)
        point = best_ratio is not None and best_ratio >= target
        above_one = ci is not None and ci[0] > 1.0
        null = run.get("null")
        chance = {} if null is None else {"null_streams": null["streams"], "null_range": null["range"],
                                          "beyond_chance": best_ratio is not None and best_ratio > null["range"][1]}
        mean = (null or {}).get("mean_random")
        if mean and best in mean["ratios"]:  # and against the mean random curve, beyond each stream vs the others
            against_mean = mean["ratios"][best]
            chance["beyond_chance"] &= against_mean is not None and against_mean > mean["range"][1]
            chance["ratio_against_mean_random"] = against_mean
            chance["mean_random_null_range"] = mean["range"]
        out[key] = {"best_strategy": best, "best_ratio": best_ratio, "best_ratio_per_seed_ci95": ci,
                    "target_met_point_estimate": point, "ci_above_1": above_one, **flat, **chance,
                    "target_met": point and above_one and not flat["random_curve_flat"]
                    and chance.get("beyond_chance", True), "ratios": ratios}
    first = next(iter(runs))
    if explain and not out[first]["target_met"]:
        out["why_not"] = preference_diagnosis(runs[first], out[first])
    return out


def preference_diagnosis(run: dict[str, Any], verdict: dict[str, Any]) -> list[str]:
    """Plain-language reasons why a preference run missed its target, with what would help."""
    rand = run["curves"]["random"]["mean"]
    b = run["budgets"]
    notes = [f"random's test accuracy goes from {rand[0]:.3f} at {b[0]} labels to {rand[-1]:.3f} at {b[-1]}; over "
             f"the second half of the budgets it gains {verdict['random_gain_second_half']:+.3f}, against a test-set "
             f"standard error of {verdict['test_standard_error']:.3f} ({run['n_test']} pairs). The model trained on "
             f"the whole pool reaches {run['full_pool_accuracy']:.3f}: the features' ceiling is reached early, so "
             "the label count at which a curve 'reaches' random's final value is decided by noise."]
    ci = verdict["best_ratio_per_seed_ci95"]
    if verdict["best_ratio"] is not None and ci is None:
        notes.append(f"best point ratio {verdict['best_ratio']:.2f} ({verdict['best_strategy']}) from one seed: with "
                     "one seed there is no interval, so it is not distinguishable from 1; run --seeds 3 or more.")
    elif verdict["best_ratio"] is not None:
        notes.append(f"best point ratio {verdict['best_ratio']:.2f} ({verdict['best_strategy']}); the per-seed "
                     f"ratios' 95% CI is [{ci[0]:.2f}, {ci[1]:.2f}]"
                     + (": above 1." if ci[0] > 1.0 else ": not distinguishable from 1."))
    for name, gain in run["mean_gain_over_random"].items():
        if gain["mean"] is not None and gain["ci95"] is not None:
            notes.append(f"{name}: mean accuracy gain over random across budgets {gain['mean']:+.4f} "
                         f"(95% CI {gain['ci95'][0]:+.4f} to {gain['ci95'][1]:+.4f}).")
    for name, fin in run["final"].items():
        method = name if name != "random" else "disagreement"
        corr = fin.get("uncertainty_vs_test_errors", {}).get(method, {})
        if corr.get("pearson_r") is not None:
            notes.append(f"{name}: {method} of its final ensemble vs its test errors: r = {corr['pearson_r']:+.3f}, "
                         f"ROC AUC {corr['roc_auc']:.3f} (0.5 = no better than chance at finding the errors).")
    notes.append("What would help: features in which the preference is (nearly) linear, e.g. a trained reward model "
                 "or a LoRA-tuned LM instead of frozen embeddings with linear heads; a larger, more varied pool "
                 f"(here {run['n_pool']:,} pairs, and the last budget takes {b[-1] / run['n_pool']:.0%} of it); a "
                 f"larger test set ({run['n_test']} pairs give +-{verdict['test_standard_error']:.3f} per point); "
                 "uncertainty from a model that is itself accurate enough for its doubts to matter.")
    return notes
