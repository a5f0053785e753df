"""Classification label efficiency on several data sets, with the default strategy chosen leave-one-data-set-out.

A *candidate* is a classify strategy of :mod:`curate.bench.label_efficiency_loops`, optionally with settings of
:class:`~curate.bench.label_efficiency.BenchConfig` that differ from the suite's base config, written
``strategy`` or ``strategy:key=value,key=value`` (e.g. ``cluster-margin:clusters_per_pick=3``). Every set runs
:func:`~curate.bench.label_efficiency.run_benchmark` once per distinct group of settings, always with random
sampling under the same settings, so a candidate's ratio compares it with random under the same classifier.

Choice rule (:func:`choose`), used for every left-out set and for the overall default: among the candidates that
beat random (ratio > 1) on every set they are chosen on, the highest geometric mean of the ratios over those sets
(ties: the higher worst case). Ratios are multiplicative (1.5x and 3x average to 2.1x, not 2.25x), and a set whose
random curve is nearly flat yields large, noisy ratios that an arithmetic mean would let decide alone. A candidate
that lost to random (or never reached random's final accuracy) on any of them is never chosen; if none is left the
choice is random itself. Leave-one-out: for each set, choose on the *other* sets and report the choice's ratio,
per-seed interval and final accuracy on the left-out one. The overall default is the same rule applied to all
sets. The report also gives the left-out choices under the arithmetic mean and the worst case (``by``), so a
reader sees whether the verdict hangs on the rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.bench import label_efficiency_loops as loops
from curate.bench.label_efficiency import BenchConfig, ProgressFn, run_benchmark
from curate.bench.label_efficiency_features import TextFeaturizer
from curate.bench.label_efficiency_metrics import round_or_none
from curate.errors import InputError

TARGET_RATIO = 2.0
AGGREGATES = ("geomean", "mean", "worst")
TUNABLE = ("C", "clusters_per_pick", "candidates_per_pick", "random_mix", "badge_candidates", "pool_cluster_size",
           "round_robin_within")
DEFAULT_CANDIDATES = tuple(s for s in loops.CLASSIFY_STRATEGIES if s != "random")
RULE = ("choose: among candidates with ratio > 1 (beat random) on every set chosen on, the highest geometric "
        "mean of the ratios (ties: the higher worst case); none left -> random. Leave-one-out: chosen on the other "
        "sets, reported on the left-out one. Default: the same rule over all sets. Target: ratio >= 2.0 with the "
        "per-seed 95% CI above 1.")
SayFn = Callable[[str], None]


@dataclass(frozen=True)
class SuiteSet:
    """One labelled classification set of the suite.

    Attributes:
        name: short name used as a JSON key and in file names (e.g. ``banking77``).
        data: the pool file (any format :func:`~curate.bench.label_efficiency_data.load_labelled` reads).
        test: a separate, frozen test file, or ``None`` for a seeded split of ``data`` (``test_size``).
        mapping: column renames ``target -> source`` (e.g. ``{"label": "category"}``).
        test_size: without ``test``: held-out fraction (< 1) or count (default 0.2).
    """

    name: str
    data: Path
    test: Path | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    test_size: float | None = None


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")


def shared_classify_sets(data_dir: Path, *, say: SayFn | None = None) -> list[SuiteSet]:
    """banking77, trec6 (coarse labels) and ag_news (a seeded 80/20 pool/test split) under ``data_dir``.

    A set whose files are missing is left out, and ``say`` (default: stderr) is told which and why.
    """
    say = say or _stderr
    wanted = [
        SuiteSet("banking77", data_dir / "banking77" / "train.csv", data_dir / "banking77" / "test.csv",
                 {"label": "category"}),
        SuiteSet("trec6", data_dir / "trec6" / "train.csv", data_dir / "trec6" / "test.csv"),
        SuiteSet("ag_news", data_dir / "ag_news_test" / "news.csv", None, {}, test_size=0.2),
    ]
    found: list[SuiteSet] = []
    for s in wanted:
        missing = [p for p in (s.data, s.test) if p is not None and not p.exists()]
        if missing:
            say(f"skipped {s.name}: {', '.join(map(str, missing))} not found (the shared benchmark data is not "
                f"next to this checkout)")
        else:
            found.append(s)
    return found


# --------------------------------------------------------------------------------------------- candidates


def parse_candidate(text: str) -> tuple[str, dict[str, Any]]:
    """``"strategy:key=value,..."`` -> ``(strategy, overrides)``, values typed as the BenchConfig field.

    >>> parse_candidate("cluster-margin:clusters_per_pick=3,random_mix=0")
    ('cluster-margin', {'clusters_per_pick': 3.0, 'random_mix': 0.0})
    """
    strategy, _, rest = text.partition(":")
    strategy = strategy.strip()
    if strategy not in loops.CLASSIFY_STRATEGIES or strategy == "random":
        raise InputError(f"unknown candidate strategy {strategy!r} in {text!r}; use one of "
                         f"{', '.join(DEFAULT_CANDIDATES)}, optionally followed by :key=value,...")
    defaults = BenchConfig(task="classify")
    overrides: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, raw = item.partition("=")
        if not sep or key not in TUNABLE:
            raise InputError(f"candidate {text!r}: settings are key=value with key one of {', '.join(TUNABLE)}; "
                             f"got {item!r}.")
        kind = type(getattr(defaults, key))
        try:
            overrides[key] = kind(raw)
        except ValueError as exc:
            raise InputError(f"candidate {text!r}: {key} must be a {kind.__name__}; got {raw!r}.") from exc
    return strategy, overrides


def _group_key(overrides: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(overrides.items()))


def _groups(candidates: Sequence[str]) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """``group key -> (overrides, {candidate: strategy})``; the base group (no overrides) has key ``""``."""
    out: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    for cand in candidates:
        strategy, overrides = parse_candidate(cand)
        key = _group_key(overrides)
        members = out.setdefault(key, (overrides, {}))[1]
        if strategy in members.values():
            raise InputError(f"candidate {cand!r} is listed twice.")
        members[cand] = strategy
    return out


# --------------------------------------------------------------------------------------------- runs


def _cached_run(cfg: BenchConfig, s: SuiteSet, *, cache_dir: Path | None, featurizer: TextFeaturizer | None,
                progress: ProgressFn | None, resume_dir: Path | None) -> tuple[dict[str, Any], bool]:
    """:func:`run_benchmark` for one set and group, and whether it was read back from ``resume_dir`` (where every
    finished run is kept, keyed by the set, every config field and the features)."""
    key = json.dumps({"set": dataclasses.asdict(s), "config": dataclasses.asdict(cfg),
                      "features": getattr(featurizer, "name", None) if featurizer else cfg.features},
                     sort_keys=True, default=str)
    path = None
    if resume_dir is not None:
        path = resume_dir / f"{s.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
        if path.exists():
            return dict(json.loads(path.read_text())), True
    report = run_benchmark(cfg, s.data, test_path=s.test, mapping=dict(s.mapping), cache_dir=cache_dir,
                           text_featurizer=featurizer, progress=progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report))
    return report, False


def _figures(run: dict[str, Any], strategy: str, group: str) -> dict[str, Any]:
    r = run["ratios"][strategy]
    ci = r["per_seed_ci"].get("ci95")
    return {"group": group, "ratio": round_or_none(r["ratio"]), "extrapolated": r["extrapolated"],
            "per_seed": r["per_seed"], "per_seed_ci": ci, "per_seed_mean": round_or_none(r["per_seed_ci"].get("mean")),
            "final_accuracy": round_or_none(run["final_accuracy"][strategy]["mean"]),
            "random_final_accuracy": round_or_none(run["final_accuracy"]["random"]["mean"]),
            "mean_gain_over_random": round_or_none(run["mean_gain_over_random"][strategy]["mean"]),
            "seconds": run["seconds"][strategy], "target_met": target_met(r["ratio"], ci)}


def target_met(ratio: float | None, ci: Sequence[float] | None, target: float = TARGET_RATIO) -> bool:
    """The acceptance test: point ratio >= ``target`` and the per-seed 95% interval above 1."""
    return ratio is not None and ratio >= target and ci is not None and ci[0] > 1.0


def run_classify_suite(sets: Sequence[SuiteSet], *, strategies: Sequence[str] = DEFAULT_CANDIDATES,
                       seeds: int = 3, base: BenchConfig | None = None, cache_dir: Path | None = None,
                       text_featurizer: TextFeaturizer | None = None, progress: ProgressFn | None = None,
                       resume_dir: Path | None = None, say: SayFn | None = None) -> dict[str, Any]:
    """Run every candidate on every set, then choose leave-one-data-set-out (module docstring); JSON-ready.

    Args:
        sets: the data sets (at least one; leave-one-out needs two).
        strategies: candidates, ``strategy`` or ``strategy:key=value,...`` (see :func:`parse_candidate`).
        seeds: seeds per candidate and set.
        base: settings shared by every run (default: the classify defaults of :class:`BenchConfig`, noise 0).
        cache_dir: embedding cache; text_featurizer: replaces MiniLM (tests pass a ``HashingFeaturizer``).
        progress: progress callback of :func:`run_benchmark`; resume_dir: keep / reuse finished runs there.
        say: one line per finished run (default: nothing).

    Returns:
        ``{"sets": {name: {"data", "candidates": {cand: figures}, "groups": {key: report}}}, "leave_one_out":
        {name: {"chosen", "ratio", "per_seed_ci", "final_accuracy", "random_final_accuracy", ...}}, "default",
        "rule", ...}``.
    """
    if not sets:
        raise InputError("the classify suite needs at least one data set; none was found.")
    if len({s.name for s in sets}) != len(sets):
        raise InputError(f"suite set names must be unique; got {', '.join(s.name for s in sets)}.")
    base = dataclasses.replace(base or BenchConfig(task="classify"), task="classify", seeds=seeds,
                               oracle_noise=0.0)
    groups = _groups(strategies)
    out_sets: dict[str, Any] = {}
    read_back = 0
    for s in sets:
        reports: dict[str, Any] = {}
        figures: dict[str, Any] = {}
        for key, (overrides, members) in groups.items():
            cfg = dataclasses.replace(base, strategies=("random", *members.values()), test_size=s.test_size,
                                      **overrides)
            report, reused = _cached_run(cfg, s, cache_dir=cache_dir, featurizer=text_featurizer,
                                         progress=progress, resume_dir=resume_dir)
            read_back += reused
            run = report["runs"]["noise_0"]
            for cand, strategy in members.items():
                figures[cand] = _figures(run, strategy, key)
            reports[key] = report
            if say is not None:
                say(f"{s.name} [{key or 'base'}]: " + ", ".join(
                    f"{c} {fmt_ratio(figures[c]['ratio'])}" for c in members) +
                    f"; random final accuracy {run['final_accuracy']['random']['mean']:.3f}")
        first = next(iter(reports.values()))
        out_sets[s.name] = {"data": first["data"], "features": first["features"], "candidates": figures,
                            "groups": reports}
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(base).items()
              if k != "strategies"}
    return {**summarise_suite(out_sets, list(strategies), config), "runs": len(sets) * len(groups),
            "runs_read_back": read_back,
            "seconds_of_runs": round(sum(g["seconds"] for v in out_sets.values() for g in v["groups"].values()), 1)}


def summarise_suite(out_sets: Mapping[str, Any], candidates: Sequence[str],
                    config: Mapping[str, Any]) -> dict[str, Any]:
    """The suite's verdicts from its runs: ``out_sets`` (``{set: {"candidates": {cand: figures}, ...}}``) ->
    ``{"benchmark", "config", "candidates", "sets", "leave_one_out", "default", ...}`` (see
    :func:`run_classify_suite`)."""
    ratios = {name: {c: f["ratio"] for c, f in v["candidates"].items()} for name, v in out_sets.items()}
    figures = {n: v["candidates"] for n, v in out_sets.items()}
    loo = leave_one_out(ratios, figures)
    default = choose(ratios, list(ratios))
    other_rules = {by: {n: {"chosen": v["chosen"], "ratio": v["ratio"], "target_met": v["target_met"]}
                        for n, v in leave_one_out(ratios, figures, by=by).items()}
                   for by in AGGREGATES if by != "geomean"}
    return {
        "benchmark": "classify_suite", "metric": "test accuracy", "target_ratio": TARGET_RATIO, "rule": RULE,
        "config": dict(config), "candidates": list(candidates), "sets": dict(out_sets), "leave_one_out": loo,
        "default": _default_report(default, ratios, loo, figures), "leave_one_out_by_other_rules": other_rules,
    }


def fmt_ratio(v: float | None) -> str:
    """A ratio for a table: two decimals, or ``n/a``."""
    return "n/a" if v is None else f"{v:.2f}"


# --------------------------------------------------------------------------------------------- choosing


def choose(ratios: Mapping[str, Mapping[str, float | None]], on: Sequence[str], *,
           by: str = "geomean") -> dict[str, Any]:
    """The rule of the module docstring over the sets ``on``: ``{"chosen", "score", "worst_ratio", "eligible"}``;
    ``chosen`` is ``"random"`` when every candidate lost to random on one of them.

    Args:
        ratios: set name -> candidate -> ratio (``None``: never reached random's final accuracy).
        on: the sets to choose on.
        by: ``"geomean"`` (default), ``"mean"`` (arithmetic) or ``"worst"`` (the smallest ratio).
    """
    if not on:
        raise InputError("choose: needs at least one set to choose on.")
    if by not in AGGREGATES:
        raise InputError(f"choose: by must be one of {', '.join(AGGREGATES)}; got {by!r}.")
    eligible: dict[str, tuple[float, float]] = {}
    for c in ratios[on[0]]:
        vals = [ratios[s].get(c) for s in on]
        nums = [float(v) for v in vals if v is not None and v > 1.0]
        if len(nums) == len(on):
            score = {"geomean": math.exp(sum(map(math.log, nums)) / len(nums)), "mean": sum(nums) / len(nums),
                     "worst": min(nums)}[by]
            eligible[c] = (score, min(nums))
    if not eligible:
        return {"chosen": "random", "score": 1.0, "worst_ratio": 1.0, "eligible": []}
    best = max(eligible, key=lambda c: eligible[c])
    return {"chosen": best, "score": round(eligible[best][0], 4), "worst_ratio": round(eligible[best][1], 4),
            "eligible": sorted(eligible, key=lambda c: eligible[c], reverse=True)}


def _left_out_figures(chosen: str, figures: Mapping[str, Any]) -> dict[str, Any]:
    if chosen == "random":  # random's own accuracy (under the base settings, when they were run)
        acc = next((f["random_final_accuracy"] for f in figures.values() if f.get("group") == ""),
                   next(iter(figures.values()))["random_final_accuracy"])
        return {"ratio": 1.0, "per_seed": None, "per_seed_ci": None, "final_accuracy": acc,
                "random_final_accuracy": acc, "mean_gain_over_random": 0.0, "target_met": False}
    f = figures[chosen]
    return {k: f[k] for k in ("ratio", "per_seed", "per_seed_ci", "final_accuracy", "random_final_accuracy",
                              "mean_gain_over_random", "target_met")}


def leave_one_out(ratios: Mapping[str, Mapping[str, float | None]], figures: Mapping[str, Mapping[str, Any]], *,
                  by: str = "geomean") -> dict[str, Any]:
    """For each set: :func:`choose` on the other sets, and that choice's figures on the set left out.

    Args:
        ratios: set name -> candidate -> ratio.
        figures: set name -> candidate -> figures (``ratio``, ``per_seed_ci``, ``final_accuracy``, ...).
        by: the aggregate of :func:`choose`.

    Returns:
        ``{set: {"chosen", "chosen_on", "score_on_others", "own_best", "ratio", "per_seed_ci",
        "final_accuracy", "random_final_accuracy", "target_met"}}``; empty with fewer than two sets.
    """
    out: dict[str, Any] = {}
    for held in ratios:
        others = [s for s in ratios if s != held]
        if not others:
            continue
        pick = choose(ratios, others, by=by)
        own = choose(ratios, [held], by=by)["chosen"]
        out[held] = {"chosen": pick["chosen"], "chosen_on": others, "score_on_others": pick["score"],
                     "own_best": own, **_left_out_figures(pick["chosen"], figures[held])}
    return out


def _default_report(pick: dict[str, Any], ratios: Mapping[str, Mapping[str, float | None]], loo: Mapping[str, Any],
                    figures: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    chosen = pick["chosen"]
    per_set = {s: _left_out_figures(chosen, figures[s]) for s in ratios}
    strategy, overrides = ("random", {}) if chosen == "random" else parse_candidate(chosen)
    return {"chosen": chosen, "strategy": strategy, "settings": overrides, "geomean_ratio_all_sets": pick["score"],
            "worst_ratio_all_sets": pick["worst_ratio"],
            "chosen_by_every_fold": bool(loo) and all(v["chosen"] == chosen for v in loo.values()),
            "fold_choices": {s: v["chosen"] for s, v in loo.items()}, "per_set": per_set,
            "target_met_on_every_set": all(v["target_met"] for v in per_set.values()),
            "ranking_all_sets": pick["eligible"]}
