"""Preference acquisition over repeated pool/test splits: runs, resume, pooling, plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curate.bench.label_efficiency_plot import plot_report
from curate.bench.preference_splits import add_curves, as_report, pool_splits, run_splits
from curate.bench.preference_suite import PreferenceSet
from curate.errors import InputError
from tests.unit.test_preference_suite import _pairs_file

CANDS = {"novelty": {"strategy": "novelty", "novelty_beta": 1.0}}


def test_splits_differ_pool_their_curves_and_resume(tmp_path):
    pset = PreferenceSet("one", _pairs_file(tmp_path / "1.jsonl", seed=1), test_size=40, start=10, batch=10,
                         budget=30)
    told: list[str] = []
    reports = run_splits(pset, CANDS, splits=[0, 1], seeds=2, resume_dir=tmp_path / "resume", say=told.append)
    digests = {r["data"]["test_prompts_sha256"] for r in reports}
    assert len(digests) == 2 and [r["config"]["split_seed"] for r in reports] == [0, 1]  # two different test sets
    assert len(told) == 2 and all("(ran)" in m for m in told)
    pooled = pool_splits(reports)
    assert pooled["splits"] == [0, 1] and pooled["curves_per_strategy"] == 4  # 2 splits x 2 seeds
    assert len(pooled["curves"]["novelty"]["per_seed"]) == 4 and pooled["budgets"] == [10, 20, 30]
    assert len(pooled["per_split_ratio"]["novelty"]) == 2 and "novelty" in pooled["ratios"]
    assert pooled["random_rise"]["n"] == 4 and isinstance(pooled["random_curve_rises"], bool)
    assert pooled["mean_gain_over_random"]["novelty"]["n"] == 4
    json.dumps(pooled)
    # a rerun reads every finished split back, figures unchanged
    again = run_splits(pset, CANDS, splits=[0, 1], seeds=2, resume_dir=tmp_path / "resume", say=told.append)
    assert all("(read back)" in m for m in told[2:]) and pool_splits(again) == pooled
    assert len(list((tmp_path / "resume").glob("one-split*.json"))) == 2
    png = plot_report(as_report(pooled), tmp_path / "pooled.png")
    assert png.exists() and png.stat().st_size > 10_000


def test_pooling_refuses_reports_of_different_sets(tmp_path):
    sets = [PreferenceSet(n, _pairs_file(tmp_path / f"{n}.jsonl", seed=i), test_size=40, start=10, batch=10,
                          budget=30) for i, n in enumerate(("one", "two"))]
    reports = [run_splits(s, CANDS, splits=[0], seeds=2)[0] for s in sets]
    with pytest.raises(InputError, match="must share one set"):
        pool_splits(reports)
    with pytest.raises(InputError, match="at least one"):
        pool_splits([])
    with pytest.raises(InputError, match="at least one split seed"):
        run_splits(sets[0], CANDS, splits=[], seeds=2)


def test_null_streams_are_random_again_from_other_draws_and_pool_into_p_values(tmp_path):
    pset = PreferenceSet("one", _pairs_file(tmp_path / "1.jsonl", seed=1), test_size=40, start=10, batch=10,
                         budget=40)
    shown: set[str] = set()
    reports = run_splits(pset, CANDS, splits=[0, 1], seeds=2, null_streams=3, resume_dir=tmp_path / "resume",
                         progress=lambda label, done, total: shown.add(label))
    assert {f"preference noise=0, random again from stream {i}" for i in (1, 2, 3)} <= shown  # a bar of its own
    first = reports[0]["runs"]["noise_0"]
    assert reports[0]["config"]["null_streams"] == 3
    assert len(first["null_curves"]) == 3 and all(len(s) == 2 for s in first["null_curves"])  # (streams, seeds, m)
    assert all(len(curve) == len(first["budgets"]) for s in first["null_curves"] for curve in s)
    random = first["curves"]["random"]["per_seed"]
    # same seed sets (the first budget's accuracy is the seed set's), other draws after it
    assert all(s[k][0] == random[k][0] for s in first["null_curves"] for k in range(2))
    assert any(s != random for s in first["null_curves"])
    pooled = pool_splits(reports)
    null = pooled["null"]
    assert null["streams"] == 3 and len(null["ratios"]) == 3
    assert null["range"] == [min(null["ratios"]), max(null["ratios"])]
    assert 0 <= null["per_seed_ci_above_1"] <= 3
    ratio = pooled["ratios"]["novelty"]["ratio"] or 0.0
    assert null["p_value"]["novelty"] == pytest.approx((1 + sum(r >= ratio for r in null["ratios"])) / 4, abs=1e-4)
    mean = null["mean_random"]  # against the mean of all 4 random streams, each stream against the other 3
    assert mean["streams"] == 4 and len(mean["null"]) == 4 and set(mean["ratios"]) == {"novelty"}
    assert mean["p_value"]["novelty"] == pytest.approx(
        (1 + sum(r >= (mean["ratios"]["novelty"] or 0.0) for r in mean["null"])) / 5, abs=1e-4)
    assert len(mean["gain_by_budget"]["novelty"]) == len(pooled["budgets"]) == len(mean["null_band"]["high"])
    assert all(lo <= hi for lo, hi in zip(mean["null_band"]["low"], mean["null_band"]["high"], strict=True))
    from matplotlib.image import imread

    with_band = plot_report(as_report(pooled), tmp_path / "null.png")  # a second panel: the gains over chance's band
    plain_png = plot_report(as_report({k: v for k, v in pooled.items() if k != "null"}), tmp_path / "plain.png")
    assert imread(with_band).shape[0] > 1.6 * imread(plain_png).shape[0]
    # without null streams the key of a kept split is unchanged and the report carries no null
    plain = run_splits(pset, CANDS, splits=[0], seeds=2, resume_dir=tmp_path / "resume")
    assert "null_curves" not in plain[0]["runs"]["noise_0"] and "null" not in pool_splits(plain)
    mixed = [reports[0], plain[0]]
    with pytest.raises(InputError, match="different numbers of null streams"):
        pool_splits(mixed)


def test_a_null_run_reads_an_earlier_runs_candidates_without_running_them_again(tmp_path):
    pset = PreferenceSet("one", _pairs_file(tmp_path / "1.jsonl", seed=1), test_size=40, start=10, batch=10,
                         budget=40)
    both = {**CANDS, "variance": {"strategy": "variance"}}
    earlier = pool_splits(run_splits(pset, both, splits=[0, 1], seeds=2))  # no null streams
    null_run = run_splits(pset, CANDS, splits=[0, 1], seeds=2, null_streams=3)
    merged = add_curves(null_run, json.loads(json.dumps(earlier)))  # as read back from its JSON
    assert "variance" not in null_run[0]["runs"]["noise_0"]["curves"]  # the reports given are left as they were
    pooled = pool_splits(merged)
    assert pooled["curves"]["variance"]["per_seed"] == earlier["curves"]["variance"]["per_seed"]
    assert pooled["per_split_ratio"]["variance"] == earlier["per_split_ratio"]["variance"]
    assert pooled["ratios"]["variance"] == earlier["ratios"]["variance"]
    assert set(pooled["null"]["p_value"]) == {"novelty", "variance"}
    assert set(pooled["null"]["mean_random"]["ratios"]) == {"novelty", "variance"}
    with pytest.raises(InputError, match="splits"):  # another set of splits cannot be paired
        add_curves(null_run[:1], earlier)
    other_seeds = pool_splits(run_splits(pset, both, splits=[0, 1], seeds=3))
    with pytest.raises(InputError, match="seeds"):
        add_curves(null_run, other_seeds)
    changed = json.loads(json.dumps(earlier))
    changed["curves"]["random"]["per_seed"][0][-1] += 0.01
    with pytest.raises(InputError, match="random's curves differ"):
        add_curves(null_run, changed)


def test_ratio_null_reads_random_against_itself_as_one():
    from curate.bench.label_efficiency_null import ratio_null

    budgets = [10, 20, 30, 40]
    random = [[0.5, 0.6, 0.7, 0.8], [0.5, 0.62, 0.7, 0.78]]
    slower = [[0.5, 0.55, 0.6, 0.65], [0.5, 0.55, 0.62, 0.66]]
    null = ratio_null(budgets, random, [random, slower], {"fast": 2.0, "never": None})
    assert null["streams"] == 2 and null["ratios"][0] == pytest.approx(1.0)
    assert 0.0 < null["ratios"][1] < 1.0  # the slower stream reaches random's final accuracy only extrapolated
    assert null["range"] == [null["ratios"][1], 1.0] and null["per_seed_ci_above_1"] == 0
    assert null["mean_gain_range"][1] == pytest.approx(0.0) and null["mean_gain_range"][0] < 0
    assert null["p_value"] == {"fast": pytest.approx(1 / 3, abs=1e-4), "never": 1.0}
    with pytest.raises(InputError, match="at least one random stream"):
        ratio_null(budgets, random, [], {})
    from curate.bench.label_efficiency_null import null_spread

    assert null_spread({"ratios": [0.0, 1.1, 0.9]}) == "0.90-1.10 (1 never reaches random's final accuracy)"
    assert null_spread({"ratios": [0.0, 0.0, 1.2]}, "X") == "1.20-1.20 (2 never reach X)"
    assert null_spread({"ratios": [0.0]}) == "no ratio (1 never reaches random's final accuracy)"


def test_mean_random_null_sees_past_an_unlucky_random_stream():
    """A candidate that rises fast then levels off beats an unlucky random stream's final accuracy early, but
    never reaches the mean random curve's; against one stream the ratio is large, against the mean it is none."""
    from curate.bench.label_efficiency_metrics import verdict
    from curate.bench.label_efficiency_null import mean_random_line, mean_random_null, ratio_null

    budgets = [10, 20, 30, 40, 50]
    unlucky = [[0.50, 0.52, 0.54, 0.56, 0.58]] * 2
    typical = [[[0.50, 0.54, 0.58, 0.61, 0.64]] * 2 for _ in range(4)]
    plateau = [[0.50, 0.60, 0.61, 0.61, 0.61]] * 2
    mean = mean_random_null(budgets, unlucky, typical, {"plateau": plateau})
    assert mean["streams"] == 5 and mean["ratios"]["plateau"] is None and mean["p_value"]["plateau"] == 1.0
    assert mean["null"][0] < 1.0 < min(mean["null"][1:])  # the unlucky stream reads below 1 against the others
    assert mean["mean_gain"]["plateau"] > 0  # it is ahead early: the gain says so, the ratio at the end does not
    base = np.mean([np.mean(s, axis=0) for s in [unlucky, *typical]], axis=0)
    assert mean["mean_gain"]["plateau"] == pytest.approx(float((np.asarray(plateau[0]) - base)[1:].mean()), abs=1e-5)
    null = ratio_null(budgets, unlucky, typical, {"plateau": 5.0}, {"plateau": plateau})
    assert null["range"][1] < 5.0 and null["mean_random"] == mean  # beyond chance against the one stream ...
    run = {"curves": {"random": {"mean": list(np.mean(unlucky, axis=0))}}, "n_test": 10_000, "null": null,
           "ratios": {"plateau": {"ratio": 5.0, "per_seed_ci": {"ci95": [4.0, 6.0]}}}}
    v = verdict({"noise_0": run}, target=1.5)["noise_0"]
    assert not v["beyond_chance"] and not v["target_met"] and v["ratio_against_mean_random"] is None  # ... not here
    assert "plateau reads never reaches its final accuracy" in mean_random_line(null, "plateau")
    from curate.cli.output import _within_chance

    assert v["mean_random_null_range"] == mean["range"]
    assert _within_chance(v) == ("within chance against the mean of all random streams: it never reaches its final "
                                 f"accuracy, where one random stream reads up to {mean['range'][1]:.2f} against the "
                                 "others")
    assert _within_chance({**v, "best_ratio": 0.5}).startswith("within chance: random reads up to")
    assert mean_random_line(null, "other") == ""
