"""How far a label-efficiency ratio goes by chance: random sampling run again from other random streams and read
against random as if it were a strategy (``--null-streams``).

Two readings. Against random's own stream (:func:`ratio_null`): each other stream's ratio, the range, and each
candidate's p-value in it. Against the mean of every random stream (:func:`mean_random_null`): one stream's luck is
averaged out of the baseline; the null is each stream read against the mean of the others. A strategy whose curve
rises fast and then levels off can beat an unlucky random stream's final accuracy early and never reach the
average random curve's: the second reading tells them apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from curate.bench.label_efficiency_metrics import efficiency_ratio, mean_gain, ratio_report, round_or_none
from curate.errors import InputError

Curves = Sequence[Sequence[float]]


def p_values(null: Sequence[float], ratios: Mapping[str, float | None]) -> dict[str, float]:
    """``(1 + null values at least the ratio) / (1 + len(null))`` per candidate (never reached = 0)."""
    arr = np.asarray(null, dtype=np.float64)
    return {name: round(float((1 + np.sum(arr >= (r or 0.0))) / (1 + len(arr))), 4) for name, r in ratios.items()}


def mean_random_null(budgets: Sequence[float], random: Curves, streams: Sequence[Curves],
                     candidates: Mapping[str, Curves]) -> dict[str, Any]:
    """Ratios against the mean curve of all ``1 + n_streams`` random streams, and their null.

    Args:
        budgets: ``(m,)`` label counts. random: ``(seeds, m)`` random's own curves. streams: ``(n_streams, seeds, m)``
        random from other streams. candidates: name -> ``(seeds, m)`` curves.

    Returns ``ratios`` (candidate's mean curve against the mean random curve; ``None`` = never reaches its final
    value), ``mean_gain`` (candidate minus mean random, averaged over the budgets after the first), ``null`` (each
    random stream's mean curve against the mean of the others, never reached = 0), ``range``, ``null_mean_gain_range``
    and ``p_value`` per candidate (as in :func:`ratio_null`, over ``1 + n_streams`` null values). By budget, for the
    plot: ``gain_by_budget`` (candidate -> ``(m,)`` its mean curve minus the mean random curve) and ``null_band``
    (``low`` / ``high``: ``(m,)`` the least and most any random stream reads against the mean of the others).
    """
    means = np.stack([np.asarray(c, dtype=np.float64).mean(axis=0) for c in [random, *streams]])
    base = means.mean(axis=0)
    null, null_diffs = [], []
    for i in range(len(means)):
        others = np.delete(means, i, axis=0).mean(axis=0)
        null.append(float(efficiency_ratio(budgets, others, means[i])["ratio"] or 0.0))
        null_diffs.append(means[i] - others)
    ratios, gains, by_budget = {}, {}, {}
    for name, curves in candidates.items():
        mean = np.asarray(curves, dtype=np.float64).mean(axis=0)
        ratios[name] = round_or_none(efficiency_ratio(budgets, base, mean)["ratio"])
        gains[name] = round(float((mean - base)[1:].mean()), 5)
        by_budget[name] = [round(float(g), 5) for g in mean - base]
    band = np.stack(null_diffs)  # (1 + n_streams, m)
    null_gains = band[:, 1:].mean(axis=1)
    return {"streams": len(means), "ratios": ratios, "mean_gain": gains, "null": [round(v, 4) for v in null],
            "range": [round(min(null), 4), round(max(null), 4)],
            "null_mean_gain_range": [round(float(null_gains.min()), 5), round(float(null_gains.max()), 5)],
            "p_value": p_values(null, ratios), "gain_by_budget": by_budget,
            "null_band": {"low": [round(float(v), 5) for v in band.min(axis=0)],
                          "high": [round(float(v), 5) for v in band.max(axis=0)]}}


def ratio_null(budgets: Sequence[float], random: Curves, streams: Sequence[Curves],
               ratios: Mapping[str, float | None], candidates: Mapping[str, Curves] | None = None) -> dict[str, Any]:
    """What the ratio reads when random is compared with random: its null distribution, and where each
    candidate's ratio falls in it.

    Args:
        budgets: ``(m,)`` label counts. random: ``(seeds, m)`` random's curves, the ones candidates are compared with.
        streams: ``(n_streams, seeds, m)`` random sampling again, the same seeds and seed sets but other draws.
        ratios: candidate -> its ratio against ``random`` (``None`` = never reached).
        candidates: candidate -> ``(seeds, m)`` curves; when given, ``mean_random`` holds :func:`mean_random_null`.

    Returns ``ratios`` (each stream's ratio against ``random``, never reached = 0), ``range``,
    ``per_seed_ci_above_1`` (streams whose per-seed interval lies above 1: how often that test passes by chance),
    ``mean_gain_range``, and ``p_value`` per candidate: ``(1 + streams reading at least its ratio) / (1 +
    n_streams)``, the smallest possible being ``1 / (1 + n_streams)``; lower = further beyond chance.
    """
    if not streams:
        raise InputError("ratio_null needs at least one random stream besides random's own.")
    values, above, gains = [], 0, []
    for stream in streams:
        report = ratio_report(budgets, {"random": random, "null": stream})["null"]
        values.append(float(report["ratio"] or 0.0))
        ci = report["per_seed_ci"].get("ci95")
        above += int(bool(ci) and ci[0] > 1.0)
        gains.append(float(mean_gain({"random": random, "null": stream})["null"]["mean"]))
    out = {
        "streams": len(values), "ratios": [round(v, 4) for v in values],
        "range": [round(min(values), 4), round(max(values), 4)], "per_seed_ci_above_1": above,
        "mean_gain_range": [round(min(gains), 5), round(max(gains), 5)], "p_value": p_values(values, ratios),
    }
    if candidates:
        out["mean_random"] = mean_random_null(budgets, random, streams, candidates)
    return out


def null_spread(null: Mapping[str, Any], target: str = "random's final accuracy") -> str:
    """``"0.75-1.12 (2 never reach random's final accuracy)"``: the range of a :func:`ratio_null` result's reached
    ratios, and how many streams never reach ``target`` (their ratio is stored as 0)."""
    reached = [r for r in null["ratios"] if r > 0]
    never = len(null["ratios"]) - len(reached)
    spread = f"{min(reached):.2f}-{max(reached):.2f}" if reached else "no ratio"
    return spread + (f" ({never} never {'reaches' if never == 1 else 'reach'} {target})" if never else "")


def mean_random_line(null: Mapping[str, Any], name: str) -> str:
    """``"against the mean of 21 random streams: novelty never reaches its final accuracy (each stream against the
    others: 1.03-1.50, 11 never; p = 1.00)"`` for candidate ``name``, or ``""`` without that reading."""
    mean = null.get("mean_random")
    if not mean or name not in mean["ratios"]:
        return ""
    r = mean["ratios"][name]
    read = "never reaches its final accuracy" if r is None else f"{r:.2f}"
    spread = null_spread({"ratios": mean["null"]}, "the others' final accuracy")
    return (f"against the mean of {mean['streams']} random streams {name} reads {read}, mean gain "
            f"{mean['mean_gain'][name]:+.4f} (each stream against the others: {spread}, mean gains "
            f"{mean['null_mean_gain_range'][0]:+.4f} to {mean['null_mean_gain_range'][1]:+.4f}; p = "
            f"{mean['p_value'][name]:.3f})")


def with_null(run: dict[str, Any], streams: Sequence[Curves]) -> dict[str, Any]:
    """``run`` (a :func:`~curate.bench.label_efficiency.run_noise_level` report with random) with ``null``: random's
    ``(n_streams, seeds, m)`` curves from other streams read against its own and against their mean
    (:func:`ratio_null`)."""
    run["null"] = ratio_null(run["budgets"], run["curves"]["random"]["per_seed"], streams,
                             {name: r["ratio"] for name, r in run["ratios"].items()},
                             {name: run["curves"][name]["per_seed"] for name in run["ratios"]})
    return run
