"""The classify suite's reports: a plot per set, the plain-text ratio table, and merging suites run apart.

Suites run apart (``benchmarks/bench_selection_classify.py --merge``) become one when they measured the same sets
under the same settings: each strategy's loop has its own random generator per seed, so a candidate's figures do
not depend on which other candidates ran beside it, and random's curves must come out identical (checked).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from curate.bench.classify_suite import fmt_ratio, parse_candidate, summarise_suite
from curate.errors import InputError


def plot_report_of(suite: Mapping[str, Any], name: str, *, show: Sequence[str] | None = None) -> dict[str, Any]:
    """A :func:`~curate.bench.label_efficiency_plot.plot_report` input for set ``name``: the base group's run
    plus the curves of ``show`` (default: the default and the left-out choices) from groups sharing its random
    curve (the same classifier settings). Candidates of other groups are left out of the plot."""
    entry = suite["sets"][name]
    key = "" if "" in entry["groups"] else next(iter(entry["groups"]))
    report: dict[str, Any] = json.loads(json.dumps(entry["groups"][key]))
    report["runs"] = {"noise_0": report["runs"]["noise_0"]}
    pool_file = report["data"]["pool_file"]
    pool_file["source"] = f"{name} ({Path(pool_file['source']).name})"  # the plot's title names the set
    run = report["runs"]["noise_0"]
    wanted = list(show) if show is not None else [suite["default"]["chosen"],
                                                  *(v["chosen"] for v in suite["leave_one_out"].values())]
    for cand in dict.fromkeys(wanted):
        fig = entry["candidates"].get(cand)
        if fig is None or fig["group"] == key:
            continue
        other = entry["groups"][fig["group"]]["runs"]["noise_0"]
        if other["curves"]["random"]["per_seed"] != run["curves"]["random"]["per_seed"]:
            continue
        strategy = parse_candidate(cand)[0]
        run["curves"][cand] = other["curves"][strategy]
        run["ratios"][cand] = other["ratios"][strategy]
        run["mean_gain_over_random"][cand] = other["mean_gain_over_random"][strategy]
    report["verdict"] = {k: v for k, v in report.get("verdict", {}).items() if k != "noise_0.1"}
    return report


def write_plots(suite: Mapping[str, Any], folder: Path, stem: str) -> dict[str, str]:
    """One PNG per set, ``folder/<stem>_<set>.png``; returns ``{set: path}``."""
    from curate.bench.label_efficiency_plot import plot_report

    return {name: str(plot_report(plot_report_of(suite, name), folder / f"{stem}_{name}.png"))
            for name in suite["sets"]}


def ratio_table(suite: Mapping[str, Any]) -> list[str]:
    """Plain-text lines: every candidate's ratio [per-seed CI] per set, then the leave-one-out rows."""
    names = list(suite["sets"])
    lines = ["candidate | " + " | ".join(names)]
    for cand in suite["candidates"]:
        cells = []
        for n in names:
            f = suite["sets"][n]["candidates"][cand]
            ci = f["per_seed_ci"]
            cells.append(fmt_ratio(f["ratio"]) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
                         + f" acc {f['final_accuracy']:.3f}")
        lines.append(f"{cand} | " + " | ".join(cells))
    for n, v in suite["leave_one_out"].items():
        ci = v.get("per_seed_ci")
        acc = v.get("final_accuracy")
        lines.append(f"left out {n}: {v['chosen']} (geometric mean {fmt_ratio(v['score_on_others'])} on the others) -> "
                     f"{fmt_ratio(v['ratio'])}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
                     + (f", accuracy {acc:.3f} vs random {v['random_final_accuracy']:.3f}" if acc is not None else "")
                     + f", target {'met' if v['target_met'] else 'NOT met'}; own best {v['own_best']}")
    d = suite["default"]
    lines.append(f"default: {d['chosen']} (geometric mean {fmt_ratio(d['geomean_ratio_all_sets'])}, worst "
                 f"{fmt_ratio(d['worst_ratio_all_sets'])}; every fold chose it: {d['chosen_by_every_fold']})")
    return lines


def merge_suites(suites: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One suite from several run with the same sets and settings but other candidates; the leave-one-out choice
    and the default are made again over every candidate.

    Raises:
        InputError: the suites differ in sets or settings, random's curves differ, or a candidate is in two.
    """
    if not suites:
        raise InputError("merge_suites: nothing to merge.")
    first = suites[0]
    sets: dict[str, Any] = json.loads(json.dumps(first["sets"]))
    candidates = list(first["candidates"])
    for n, other in enumerate(suites[1:], start=2):
        if list(other["sets"]) != list(sets) or other["config"] != first["config"]:
            raise InputError(f"merge_suites: suite {n} measured other sets or settings than the first "
                             f"({list(other['sets'])} vs {list(sets)}); only suites of one protocol merge.")
        twice = sorted(set(other["candidates"]) & set(candidates))
        if twice:
            raise InputError(f"merge_suites: {', '.join(twice)} in more than one suite; run each candidate once.")
        for name, entry in other["sets"].items():
            mine = sets[name]
            if _random_curves(entry) != _random_curves(mine):
                raise InputError(f"merge_suites: random's curves on {name} differ between suite 1 and suite {n}: "
                                 "not the same splits, seeds or features.")
            renamed = {key: f"{key}#{n}" for key in entry["groups"]}
            mine["groups"].update({renamed[k]: g for k, g in entry["groups"].items()})
            for cand, fig in entry["candidates"].items():
                mine["candidates"][cand] = {**fig, "group": renamed[fig["group"]]}
        candidates += list(other["candidates"])
    merged = summarise_suite(sets, candidates, first["config"])
    merged["merged_from"] = [s.get("command", "") for s in suites]
    merged["seconds_of_runs"] = round(sum(float(s.get("seconds_of_runs", 0.0)) for s in suites), 1)
    return merged


def _random_curves(entry: Mapping[str, Any]) -> list[Any]:
    group = next(iter(entry["groups"].values()))
    return list(group["runs"]["noise_0"]["curves"]["random"]["per_seed"])
