"""The preference half of ``make bench-selection``: label efficiency on several preference sets, strategies chosen
leave-one-data-set-out.

For every set: one seeded split by prompt, TF-IDF-SVD features fitted on the pool (no labels, no model), then each
candidate acquisition (:data:`CANDIDATES`) runs against random sampling with the Laplace Bradley-Terry learner
through :func:`curate.bench.label_efficiency.run_noise_level` (same seeds, same seed sets, so curves differ only
by what was chosen). Each set's report has the usual shape (curves, ratios with per-seed intervals, mean gains,
verdict) and a plot.

Leave-one-data-set-out: for each set, the candidate with the best mean ratio on the *other* sets is reported on
it. The default is the candidate whose worst left-out ratio over the judge sets is highest; if even that loses to
random on some judge set (ratio < 1), the default is ``random``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.bench.label_efficiency import BenchConfig, run_noise_level
from curate.bench.label_efficiency_data import Split, load_labelled, make_split
from curate.bench.label_efficiency_features import (
    lm_pair_features,
    minilm_prompt_features,
    prompt_features,
    tfidf_pair_features,
)
from curate.bench.label_efficiency_metrics import mean_gain, ratio_report, summarise_curves, verdict
from curate.errors import InputError
from curate.runtime.lm_features import LMHiddenStateFeaturizer

ProgressFn = Callable[[str, int, int], None]
#: Candidate acquisitions: label -> BenchConfig overrides (all with the Laplace learner).
CANDIDATES: dict[str, dict[str, Any]] = {
    "variance": {"strategy": "variance"},
    "entropy": {"strategy": "entropy"},
    "variance-novelty(0.1)": {"strategy": "variance-novelty", "novelty_beta": 0.1},
    "variance-novelty(0.3)": {"strategy": "variance-novelty", "novelty_beta": 0.3},
    "variance-novelty(1)": {"strategy": "variance-novelty", "novelty_beta": 1.0},
    "variance-novelty(3)": {"strategy": "variance-novelty", "novelty_beta": 3.0},
    "novelty": {"strategy": "novelty", "novelty_beta": 1.0},
    "novelty(minilm)": {"strategy": "novelty", "novelty_beta": 1.0, "prompts": "minilm"},
    "bald": {"strategy": "bald"},
    "prefilter-cluster-entropy": {"strategy": "prefilter-cluster-entropy"},
}
#: Candidates measured over repeated splits (``bench_preference_splits.py --candidates``) but not yet on every set,
#: so not among the suite's choices. ``bald-coverage(3)``: the 3k highest-BALD pairs, prompt coverage among them.
MORE_CANDIDATES: dict[str, dict[str, Any]] = {
    "bald-coverage(3)": {"strategy": "bald-coverage", "candidates_per_pick": 3.0},
    "bald-per-prompt": {"strategy": "bald-per-prompt"},
    "epig": {"strategy": "epig"},
}
TARGET_RATIO = 1.5


@dataclass(frozen=True)
class PreferenceSet:
    """One preference data set of the suite.

    Attributes:
        name: short name for the report. path: the pairs file (prompt, chosen, rejected).
        test_size: pairs held out for test (split by prompt). start / batch / budget: the label budgets.
        judge: False for a control set (reported, never used to choose or to judge the default).
        mapping: column mapping (``--map``).
    """

    name: str
    path: Path
    test_size: float
    start: int = 50
    batch: int = 100
    budget: int = 1000
    judge: bool = True
    mapping: Mapping[str, str] = dataclasses.field(default_factory=dict)


def shared_preference_sets(data_dir: Path) -> tuple[list[PreferenceSet], list[str]]:
    """The suite's sets found under ``data_dir`` (``../shared/data``) and a message per missing one."""
    pairs = data_dir / "preference_pairs"
    wanted = [
        PreferenceSet("alpacaeval", pairs / "alpacaeval_gpt4_balanced.jsonl.gz", test_size=3000, budget=1600),
        PreferenceSet("ultrafeedback", pairs / "ultrafeedback_1200.jsonl.gz", test_size=250, budget=800),
        PreferenceSet("hh_rlhf_harmless", data_dir / "hh_rlhf_harmless_test" / "test.jsonl.gz", test_size=500,
                      budget=1000, judge=False),
    ]
    found = [s for s in wanted if s.path.exists()]
    missing = [f"skipped {s.name}: {s.path} not found" for s in wanted if not s.path.exists()]
    return found, missing


def shared_preference_set(data_dir: Path, name: str) -> tuple[PreferenceSet | None, str]:
    """The suite's set ``name`` under ``data_dir``, or ``None`` and a line saying what to do (a benchmark skips)."""
    sets, _ = shared_preference_sets(data_dir)
    pset = next((s for s in sets if s.name == name), None)
    if pset is not None:
        return pset, ""
    return None, (f"skipped: preference set {name!r} not found under {data_dir} (found: "
                  f"{', '.join(s.name for s in sets) or 'none'}). Put ../shared/data beside the repository.")


def _config(pset: PreferenceSet, seeds: int, strategy: str, overrides: Mapping[str, Any], features: str) -> BenchConfig:
    extra = {k: v for k, v in overrides.items() if k not in ("strategy", "prompts")}
    return BenchConfig(task="preference", seeds=seeds, strategies=("random", strategy), start=pset.start,
                       batch=pset.batch, budget=pset.budget, features=features, learner="laplace",
                       test_size=pset.test_size, **extra).resolved()


def pair_features(split: Split, features: str, cache_dir: Path | None, lm: str | None,
                  progress: ProgressFn | None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(chosen, rejected, name)`` features of pool + test + calibration (see :func:`run_set`)."""
    if features == "tfidf":
        return (*tfidf_pair_features(split), "tfidf-1-2gram-svd256 (pool pairs' differences)")
    if features != "smollm2" or cache_dir is None:
        raise InputError(f"preference suite features: tfidf, or smollm2 with a cache folder; got {features!r}.")
    task = "LM features"
    on = None if progress is None else (lambda done, total: progress(task, done, total))
    featurizer = LMHiddenStateFeaturizer(cache_dir, model=lm, on_progress=on)
    return (*lm_pair_features(split, featurizer), f"{featurizer.name} (last layer, standardised)")


def run_set(pset: PreferenceSet, candidates: Mapping[str, Mapping[str, Any]], *, seeds: int,
            features: str = "tfidf", cache_dir: Path | None = None, lm: str | None = None,
            progress: ProgressFn | None = None, split_seed: int = 0, null_streams: int = 0) -> dict[str, Any]:
    """Every candidate against random on one set: a report shaped like ``run_benchmark``'s (one noise level).

    ``features``: ``tfidf`` (TF-IDF-SVD of the responses, no model) or ``smollm2`` (the packaged SmolLM2's last
    layer, mean over the response tokens, cached in ``cache_dir``; ``lm`` another causal LM's folder); both scaled
    to a pool mean ``||a - b||`` of 1. ``split_seed``: which seeded pool/test split (by prompt) of the set; the
    suite uses 0, :mod:`curate.bench.preference_splits` repeats it over several. ``null_streams``: random sampling
    run again from that many other random streams, kept as ``null_curves`` (``(streams, seeds, m)``) in the report:
    the ratio's null distribution (:func:`~curate.bench.label_efficiency_null.ratio_null`).
    """
    started = time.perf_counter()
    data = load_labelled(pset.path, "preference", mapping=pset.mapping)
    split = make_split(data, "preference", test_size=pset.test_size, seed=split_seed)
    t0 = time.perf_counter()
    a, b, feature_name = pair_features(split, features, cache_dir, lm, progress)
    prompts = {"tfidf": prompt_features(split)}
    if any(c.get("prompts") == "minilm" for c in candidates.values()):
        prompts["minilm"] = minilm_prompt_features(split, cache_dir)
    feat_seconds = time.perf_counter() - t0
    # random once (its curves do not depend on a candidate's settings), then each candidate alone
    random_cfg = _config(pset, seeds, "entropy", {}, features)
    first = run_noise_level(random_cfg, split, (a, b, prompts["tfidf"]), 0.0, progress=progress, only=("random",))
    null = [run_noise_level(random_cfg, split, (a, b, prompts["tfidf"]), 0.0, progress=progress, only=("random",),
                            stream=i)["curves"]["random"]["per_seed"] for i in range(1, null_streams + 1)]
    per_seed: dict[str, list[list[float]]] = {"random": first["curves"]["random"]["per_seed"]}
    runs: dict[str, dict[str, Any]] = {}
    for label, overrides in candidates.items():
        strategy = str(overrides["strategy"])
        cfg = _config(pset, seeds, strategy, overrides, features)
        feature_set = (a, b, prompts[str(overrides.get("prompts", "tfidf"))])
        run = run_noise_level(cfg, split, feature_set, 0.0, progress=progress, only=(strategy,))
        per_seed[label] = run["curves"][strategy]["per_seed"]
        runs[label] = run
    budgets = first["budgets"]
    merged = {
        "oracle_noise": 0.0, "flipped_answers_in_pool": 0, "budgets": budgets, "n_pool": first["n_pool"],
        "n_test": first["n_test"], "curves": {s: summarise_curves(c) for s, c in per_seed.items()},
        "ratios": ratio_report(budgets, per_seed), "mean_gain_over_random": mean_gain(per_seed),
        "final_accuracy": {s: first["final_accuracy"]["random"] if s == "random"
                           else runs[s]["final_accuracy"][str(candidates[s]["strategy"])] for s in per_seed},
        "final": {s: first["final"]["random"] if s == "random" else runs[s]["final"][str(candidates[s]["strategy"])]
                  for s in per_seed},
        "full_pool_accuracy": first["full_pool_accuracy"],
    }
    if null:
        merged["null_curves"] = null
    report_runs = {"noise_0": merged}
    return {
        "benchmark": "label_efficiency", "task": "preference", "set": pset.name, "judge": pset.judge,
        "data": {"pool_file": data.summary(), "split": split.summary(),
                 "test_prompts_sha256": hashlib.sha256("\n".join(sorted(split.test.texts)).encode()).hexdigest()[:16]},
        "config": {"seeds": seeds, "split_seed": split_seed, "start": pset.start, "batch": pset.batch,
                   "budget": pset.budget,
                   "test_size": pset.test_size, "learner": "laplace", "prior_precision": 1.0, "random_mix": 0.1,
                   "candidates": {k: dict(v) for k, v in candidates.items()}, "null_streams": null_streams},
        "features": {"name": feature_name + "; prompts tfidf-svd64" + ("; minilm" if "minilm" in prompts else ""),
                     "dim": int(a.shape[1]), "seconds": round(feat_seconds, 2)},
        "metric": "test pairwise accuracy (P(chosen > rejected) > 0.5)",
        "runs": report_runs,
        "verdict": verdict(report_runs, target=TARGET_RATIO, explain=True),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _ratio(report: Mapping[str, Any], label: str) -> float:
    value = report["runs"]["noise_0"]["ratios"][label]["ratio"]
    return float(value) if value is not None else 0.0


def leave_one_out(reports: Mapping[str, Mapping[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """Per set: the candidate with the best mean ratio on the other judge sets, and its figures on this set.

    A never-reached ratio counts as 0. Sets whose report has ``judge`` False are reported but never choose.
    """
    judges = [n for n, r in reports.items() if r.get("judge", True)]
    out: dict[str, Any] = {}
    for name, report in reports.items():
        others = [j for j in judges if j != name]
        if not others:
            raise InputError("leave-one-out needs at least two judge sets; add a preference set.")
        chosen = max(labels, key=lambda c: (np.mean([_ratio(reports[o], c) for o in others]), -labels.index(c)))
        run = report["runs"]["noise_0"]
        out[name] = {"chosen": chosen, "chosen_on": others,
                     "ratio": run["ratios"][chosen]["ratio"], "per_seed_ci": run["ratios"][chosen]["per_seed_ci"],
                     "final_accuracy": run["final_accuracy"][chosen]["mean"],
                     "random_final_accuracy": run["final_accuracy"]["random"]["mean"],
                     "mean_gain_over_random": run["mean_gain_over_random"][chosen]["mean"],
                     "random_curve_flat": report["verdict"]["noise_0"]["random_curve_flat"]}
    return out


def choose_default(reports: Mapping[str, Mapping[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """The candidate with the highest worst-case ratio over the judge sets; ``random`` if that is below 1."""
    judges = [n for n, r in reports.items() if r.get("judge", True)]
    worst = {c: min(_ratio(reports[j], c) for j in judges) for c in labels}
    best = max(labels, key=lambda c: (worst[c], -labels.index(c)))
    default = best if worst[best] >= 1.0 else "random"
    return {"default": default, "best_candidate": best, "worst_case_ratio": worst,
            "rule": "highest worst-case ratio over the judge sets; random if that worst case is below 1"}


def run_preference_suite(sets: Sequence[PreferenceSet], *, seeds: int = 5,
                         candidates: Mapping[str, Mapping[str, Any]] | None = None, features: str = "tfidf",
                         cache_dir: Path | None = None, lm: str | None = None,
                         progress: ProgressFn | None = None) -> dict[str, Any]:
    """All sets, the leave-one-out table and the default (JSON-ready); ``features``, ``lm`` as :func:`run_set`."""
    cands = dict(candidates or CANDIDATES)
    reports = {s.name: run_set(s, cands, seeds=seeds, features=features, cache_dir=cache_dir, lm=lm,
                               progress=progress) for s in sets}
    return suite_result(reports, features)


def suite_result(reports: Mapping[str, Mapping[str, Any]], features: str) -> dict[str, Any]:
    """The suite's JSON from per-set reports (:func:`run_set`'s, e.g. run in separate processes): each set's
    ratios and mean gains recomputed from its stored per-seed curves, then leave-one-out and the default."""
    rescored = {name: rescore_set(report) for name, report in reports.items()}
    labels = [c for c in next(iter(rescored.values()))["config"]["candidates"]
              if all(c in r["config"]["candidates"] for r in rescored.values())]
    return {"benchmark": "selection_preference", "target_ratio": TARGET_RATIO, "features": features,
            "sets": rescored, "leave_one_out": leave_one_out(rescored, labels),
            "default": choose_default(rescored, labels)}


def rescore_set(report: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of one set's report with ratios, mean gains and verdict recomputed from its per-seed curves by
    the current :mod:`~curate.bench.label_efficiency_metrics` (a metric's fix reaches stored runs)."""
    out = dict(report)
    run = dict(report["runs"]["noise_0"])
    per_seed = {s: c["per_seed"] for s, c in run["curves"].items()}
    run["ratios"] = ratio_report(run["budgets"], per_seed)
    run["mean_gain_over_random"] = mean_gain(per_seed)
    out["runs"] = {"noise_0": run}
    out["verdict"] = verdict(out["runs"], target=TARGET_RATIO, explain=True)
    return out
