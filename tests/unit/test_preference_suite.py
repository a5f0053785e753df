"""The preference suite of ``make bench-selection``: Laplace learner loops, leave-one-out choice, default rule."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from curate.bench.label_efficiency import BenchConfig, run_benchmark
from curate.bench.label_efficiency_plot import plot_report
from curate.bench.preference_suite import (
    PreferenceSet,
    choose_default,
    leave_one_out,
    rescore_set,
    run_preference_suite,
    run_set,
    shared_preference_set,
    shared_preference_sets,
    suite_result,
)
from curate.errors import InputError


def _pairs_file(path: Path, n_prompts: int = 80, seed: int = 0) -> Path:
    """Pairs whose chosen answers use 'good' words and rejected ones 'bad' words, two pairs per prompt."""
    rnd = random.Random(seed)
    good = ["thanks", "gladly", "clear", "helpful", "safe", "steps", "example"]
    bad = ["no", "whatever", "go", "away", "unclear", "maybe", "later"]
    filler = [f"w{i}" for i in range(30)]
    with path.open("w") as fh:
        for p in range(n_prompts):
            for j in range(2):
                fh.write(json.dumps({
                    "prompt": f"question {p} on topic {p % 9}",
                    "chosen": " ".join(rnd.sample(good, 2) + rnd.sample(filler, 4)) + f" v{j}",
                    "rejected": " ".join(rnd.sample(bad, 2) + rnd.sample(filler, 4)) + f" v{j}"}) + "\n")
    return path


def _report(ratios: dict[str, float | None], judge: bool = True) -> dict:
    per = {k: {"ratio": v, "per_seed_ci": {"ci95": [0.5, 2.0]}} for k, v in ratios.items()}
    acc = {k: {"mean": 0.6} for k in [*ratios, "random"]}
    return {"judge": judge, "verdict": {"noise_0": {"random_curve_flat": False}},
            "runs": {"noise_0": {"ratios": per, "final_accuracy": acc,
                                 "mean_gain_over_random": {k: {"mean": 0.01} for k in ratios}}}}


def test_laplace_learner_runs_the_variance_strategies(tmp_path):
    data = _pairs_file(tmp_path / "p.jsonl")
    cfg = BenchConfig(task="preference", seeds=2, start=10, batch=10, budget=40, test_size=40, features="tfidf",
                      learner="laplace", strategies=("random", "variance", "variance-novelty", "entropy",
                                                     "bald-coverage", "bald-per-prompt", "epig"))
    report = run_benchmark(cfg, data)
    run = report["runs"]["noise_0"]
    assert run["budgets"] == [10, 20, 30, 40]
    assert set(run["ratios"]) == {"variance", "variance-novelty", "entropy", "bald-coverage", "bald-per-prompt",
                                  "epig"}
    assert len(run["curves"]["bald-coverage"]["per_seed"]) == 2
    assert run["curves"]["random"]["mean"][-1] > 0.8  # the words separate chosen from rejected
    assert report["features"]["name"].startswith("tfidf")
    assert plot_report(report, tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_learner_and_strategy_must_match():
    with pytest.raises(InputError, match="learner laplace"):
        BenchConfig(task="preference", learner="laplace", strategies=("random", "disagreement")).resolved()
    with pytest.raises(InputError, match="learner ensemble"):
        BenchConfig(task="preference", strategies=("random", "variance")).resolved()
    with pytest.raises(InputError, match="--learner"):
        BenchConfig(task="preference", learner="mlp").resolved()


def test_leave_one_out_chooses_on_the_other_sets_only():
    reports = {"a": _report({"x": 3.0, "y": 1.1}), "b": _report({"x": 0.8, "y": 1.2}),
               "c": _report({"x": 0.9, "y": 1.3}), "noisy": _report({"x": 9.0, "y": 0.1}, judge=False)}
    table = leave_one_out(reports, ["x", "y"])
    assert table["a"]["chosen"] == "y" and table["a"]["chosen_on"] == ["b", "c"]  # a's own best (x) is not used
    assert table["b"]["chosen"] == "x"  # mean of a and c: x 1.95 > y 1.2
    assert table["a"]["ratio"] == 1.1
    assert "noisy" not in table["a"]["chosen_on"] and table["noisy"]["chosen"] == "x"


def test_default_is_random_when_every_candidate_loses_somewhere():
    reports = {"a": _report({"x": 3.0, "y": 1.1}), "b": _report({"x": 0.8, "y": None})}
    assert choose_default(reports, ["x", "y"])["default"] == "random"
    reports["b"] = _report({"x": 1.2, "y": 2.0})
    assert choose_default(reports, ["x", "y"]) | {"worst_case_ratio": None} == {
        "default": "x", "best_candidate": "x", "worst_case_ratio": None,
        "rule": "highest worst-case ratio over the judge sets; random if that worst case is below 1"}
    with pytest.raises(InputError, match="two judge sets"):
        leave_one_out({"a": _report({"x": 1.0})}, ["x"])


def test_suite_end_to_end_on_two_small_sets(tmp_path):
    sets = [PreferenceSet("one", _pairs_file(tmp_path / "1.jsonl", seed=1), test_size=40, start=10, batch=10,
                          budget=30),
            PreferenceSet("two", _pairs_file(tmp_path / "2.jsonl", seed=2), test_size=40, start=10, batch=10,
                          budget=30)]
    result = run_preference_suite(sets, seeds=2, candidates={"variance": {"strategy": "variance"},
                                                             "novelty": {"strategy": "variance-novelty",
                                                                         "novelty_beta": 0.3}})
    assert set(result["sets"]) == {"one", "two"} and set(result["leave_one_out"]) == {"one", "two"}
    run = result["sets"]["one"]["runs"]["noise_0"]
    assert set(run["curves"]) == {"random", "variance", "novelty"}
    assert len(run["curves"]["novelty"]["per_seed"]) == 2
    assert result["default"]["default"] in {"random", "variance", "novelty"}
    json.dumps(result)  # JSON-ready


def test_sets_run_apart_give_the_suite_run_together(tmp_path):
    sets = [PreferenceSet(n, _pairs_file(tmp_path / f"{n}.jsonl", seed=i), test_size=40, start=10, batch=10,
                          budget=30) for i, n in enumerate(("one", "two"))]
    cands = {"bald": {"strategy": "bald"}, "pce": {"strategy": "prefilter-cluster-entropy"},
             "novelty": {"strategy": "novelty", "novelty_beta": 1.0}}
    together = run_preference_suite(sets, seeds=2, candidates=cands)
    apart = suite_result({s.name: run_set(s, cands, seeds=2) for s in sets}, "tfidf")
    assert apart["leave_one_out"] == together["leave_one_out"] and apart["default"] == together["default"]
    run = apart["sets"]["one"]["runs"]["noise_0"]
    assert set(run["curves"]) == {"random", "bald", "pce", "novelty"}
    # random runs once; every candidate's curves start from the same seed set as random's
    assert all(c["per_seed"][0][0] == run["curves"]["random"]["per_seed"][0][0] for c in run["curves"].values())
    # a stored report rescored from its curves keeps a never-reaching seed at its bound (not left out)
    stored = json.loads(json.dumps(apart["sets"]["one"]))
    stored["runs"]["noise_0"]["curves"]["bald"]["per_seed"][1] = [0.0, 0.0, 0.0]
    rescored = rescore_set(stored)["runs"]["noise_0"]["ratios"]["bald"]
    assert 1 in rescored["per_seed_unreached"] and rescored["per_seed_ci"]["n"] == 2


def test_laplace_bald_is_mutual_information():
    import numpy as np

    from curate.scorers.reward_laplace import LaplaceBradleyTerry

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    w = np.array([2.0, -1.0, 0.0, 0.5, 0.0])
    win = (a - b) @ w + rng.logistic(size=200) > 0
    model = LaplaceBradleyTerry(l2=1.0, min_pairs=2).fit(np.where(win[:, None], a, b), np.where(win[:, None], b, a))
    mi = model.mutual_information(a, b)
    assert mi.shape == (200,) and np.all(mi >= 0) and np.all(mi <= np.log(2))
    # no posterior variance, no information: a pair of identical responses
    assert model.mutual_information(a[:1], a[:1])[0] == pytest.approx(0.0, abs=1e-9)
    # the same margin, more variance -> more information (scaled differences orthogonal to w are unknown)
    far = np.zeros((2, 5))
    far[0, 2], far[1, 2] = 0.1, 3.0
    low, high = model.mutual_information(far, np.zeros((2, 5)))
    assert high > low > 0


def test_epig_counts_only_what_the_target_pairs_vary_along():
    import numpy as np

    from curate.scorers.reward_laplace import LaplaceBradleyTerry

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    b[:, 2] = a[:, 2]  # no labelled pair says anything about weight 2, so it stays at the prior
    win = (a - b) @ np.array([2.0, -1.0, 0.0, 0.5, 0.0]) + rng.logistic(size=200) > 0
    model = LaplaceBradleyTerry(l2=1.0, min_pairs=2).fit(np.where(win[:, None], a, b)[:20],
                                                         np.where(win[:, None], b, a)[:20])
    targets_a, targets_b = a[:100].copy(), b[:100].copy()  # the targets do not vary along dimension 2 either
    candidates = np.zeros((3, 5))
    candidates[0, 2] = 3.0  # only along dimension 2: BALD is high, but no target prediction depends on it
    candidates[1, 4] = 3.0  # along dimension 4, which the targets vary along
    epig = model.epig(candidates, np.zeros((3, 5)), targets_a, targets_b, rng=np.random.default_rng(1))
    bald = model.mutual_information(candidates, np.zeros((3, 5)))
    assert epig.shape == (3,) and np.all(epig >= 0) and np.all(epig <= bald + 1e-3)
    assert bald[0] > 0.05 and epig[0] < 0.01 * bald[0]
    assert epig[1] > 5 * epig[0]
    assert epig[2] == pytest.approx(0.0, abs=1e-9)  # identical responses: nothing to learn
    again = model.epig(candidates, np.zeros((3, 5)), targets_a, targets_b, rng=np.random.default_rng(1))
    assert np.array_equal(epig, again)


def test_shared_sets_report_what_is_missing(tmp_path):
    found, missing = shared_preference_sets(tmp_path)
    assert found == [] and len(missing) == 3 and all("not found" in m for m in missing)


def test_one_shared_set_by_name_or_a_line_saying_what_to_do(tmp_path):
    assert shared_preference_set(tmp_path, "ultrafeedback") == (None, (
        f"skipped: preference set 'ultrafeedback' not found under {tmp_path} (found: none). Put ../shared/data beside "
        "the repository."))
    folder = tmp_path / "preference_pairs"
    folder.mkdir()
    (folder / "ultrafeedback_1200.jsonl.gz").write_bytes(b"")
    pset, line = shared_preference_set(tmp_path, "ultrafeedback")
    assert pset is not None and pset.name == "ultrafeedback" and pset.test_size == 250 and line == ""
    assert shared_preference_set(tmp_path, "alpacaeval")[1].endswith("(found: ultrafeedback). Put ../shared/data "
                                                                      "beside the repository.")


def test_lm_features_are_standardised_scaled_cached_and_run_the_suite(tmp_path):
    import numpy as np

    from curate.bench.label_efficiency_data import load_labelled, make_split
    from curate.bench.label_efficiency_features import lm_pair_features
    from curate.runtime.lm_features import LMHiddenStateFeaturizer
    from tests.tiny_lm import build_tiny_lm

    lm = str(build_tiny_lm(tmp_path / "lm"))
    data = _pairs_file(tmp_path / "p.jsonl", n_prompts=30)
    split = make_split(load_labelled(data, "preference"), "preference", test_size=20)
    featurizer = LMHiddenStateFeaturizer(tmp_path / "cache", model=lm)
    a, b = lm_pair_features(split, featurizer)
    n_pool = len(split.pool)
    assert a.shape == b.shape == (len(split.pool) + len(split.test) + len(split.calibration), 32)
    assert np.mean(np.linalg.norm(a[:n_pool] - b[:n_pool], axis=1)) == pytest.approx(1.0)
    pooled = np.concatenate([a[:n_pool], b[:n_pool]])
    assert np.allclose(pooled.mean(axis=0), 0.0, atol=1e-9)  # centred on the pool; the same scale on every column
    assert np.allclose(pooled.std(axis=0), pooled.std(axis=0)[0])
    again = LMHiddenStateFeaturizer(tmp_path / "cache", model=lm)
    assert np.allclose(lm_pair_features(split, again)[0], a) and again.computed_ == 0  # read from the cache

    sets = [PreferenceSet(n, _pairs_file(tmp_path / f"{n}.jsonl", n_prompts=30, seed=i), test_size=20, start=10,
                          batch=10, budget=20) for i, n in enumerate(("one", "two"))]
    with pytest.raises(InputError, match="smollm2 with a cache folder"):
        run_preference_suite(sets, seeds=1, features="smollm2", candidates={"variance": {"strategy": "variance"}})
    result = run_preference_suite(sets, seeds=1, features="smollm2", cache_dir=tmp_path / "cache", lm=lm,
                                  candidates={"variance": {"strategy": "variance"}})
    report = result["sets"]["one"]
    assert result["features"] == "smollm2" and report["features"]["dim"] == 32
    assert report["features"]["name"].startswith(f"{lm}-response-mean-256")
    assert report["runs"]["noise_0"]["budgets"] == [10, 20]


def test_bald_per_prompt_asks_the_least_asked_prompts_first():
    import numpy as np

    from curate.bench import label_efficiency_loops as loops
    from curate.bench import label_efficiency_preference_loops as pref_loops

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 4)), rng.normal(size=(60, 4))
    groups = np.repeat(np.arange(20), 3)  # 20 prompts, 3 pairs each
    data = pref_loops.PreferenceData(a, b, np.zeros(60, dtype=bool), a[:10], b[:10], a[:0], b[:0], None, groups)
    initial = np.array([0, 1, 3, 6], dtype=np.intp)  # prompts 0 (twice), 1 and 2 asked
    cfg = loops.LoopConfig(budgets=(4, 20, 36), random_mix=0.0, learner="laplace")
    order = pref_loops.run_preference_laplace("bald-per-prompt", data, initial, cfg, rng=rng).labelled
    first, second = groups[order[4:20]], groups[order[20:36]]
    assert len(set(first)) == 16 and set(first) <= set(range(3, 20))  # 16 of the 17 unasked prompts, once each
    assert {second[0]} == set(range(3, 20)) - set(first)  # the one still unasked comes first in the next round
    assert 0 not in second  # prompt 0, asked twice at the start, is not asked again
    counts = np.bincount(groups[order], minlength=20)
    assert counts.max() - counts.min() <= 1  # 36 labels over 20 prompts: every prompt asked once or twice
