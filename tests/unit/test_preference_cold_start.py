"""The cold-start benchmark of preference-rank: label-free first picks, then a warm strategy, against random."""

from __future__ import annotations

import numpy as np
import pytest

from curate.bench.label_efficiency_features import HashingFeaturizer
from curate.bench.preference_cold_start import (
    COLD_PICKS,
    SHIPPED,
    cold_picks,
    cold_scores,
    cold_start_verdict,
    run_cold_start,
)
from curate.bench.preference_suite import PreferenceSet
from curate.errors import InputError
from tests.unit.test_preference_suite import _pairs_file


def test_cold_picks_are_label_free_and_follow_their_scores():
    prompts = [f"topic {i % 4} question {i}" for i in range(40)] + ["an odd one about volcanoes"]
    texts = [p + "\n\nsome answer" for p in prompts[:-1]] + ["lava lava lava volcano eruption magma"]
    scores = cold_scores(prompts, texts, embed=HashingFeaturizer(dim=64))
    assert scores.embeddings.shape == (41, 64) and scores.density.shape == scores.coverage.shape == (41,)
    assert int(np.argmin(scores.density)) == 40  # the outlier is the least typical record
    picks = cold_picks(scores, 10, seed=0)
    assert set(picks) == set(COLD_PICKS)
    for name, idx in picks.items():
        assert idx.shape == (10,) and len(set(idx.tolist())) == 10 and np.all(np.diff(idx) > 0), name
    # the outlier prompt is far from every other: farthest-first takes it early
    assert 40 in picks["prompt-coverage"]
    assert picks["density"].tolist() != picks["random"].tolist()
    with pytest.raises(InputError, match="first batch"):
        cold_picks(scores, 41, seed=0)


def test_run_cold_start_reports_every_cold_and_warm_pair(tmp_path):
    pset = PreferenceSet("toy", _pairs_file(tmp_path / "p.jsonl"), test_size=40)
    seen: list[int] = []
    report = run_cold_start(pset, seeds=2, features="tfidf", embed=HashingFeaturizer(dim=64), start=10, batch=20,
                            budget=50, progress=lambda _task, done, _total: seen.append(done))
    assert report["budgets"] == [10, 30, 50]
    assert set(report["curves"]) == {f"{c} -> {w}" for c in COLD_PICKS for w in ("prompt-coverage", "random")}
    assert all(len(c["mean"]) == 3 for c in report["curves"].values())
    assert report["curves"]["random -> random"]["mean"][-1] > 0.8  # the toy's words separate chosen from rejected
    first = report["first_budget_gain_over_random"]
    assert "random -> random" not in first and first["random -> prompt-coverage"]["mean"] == 0.0  # same seed set
    assert seen[-1] == 2 * len(COLD_PICKS) * 2
    verdict = cold_start_verdict([report])
    assert set(verdict["per_pick"]) == set(COLD_PICKS[1:]) and isinstance(verdict["shipped_loses"], bool)


def test_verdict_flags_a_pick_whose_interval_is_below_zero():
    def report(name, lo, hi):
        gains = {f"{c} -> random": {"mean": (lo + hi) / 2, "ci95": [lo, hi]} for c in COLD_PICKS[1:]}
        return {"set": name, "judge": True, "first_budget_gain_over_random": gains}

    assert cold_start_verdict([report("a", -0.01, 0.02), report("b", 0.0, 0.03)])["shipped_loses"] is False
    assert cold_start_verdict([report("a", -0.03, -0.01), report("b", 0.0, 0.03)])["shipped_loses"] is True


def test_the_benchmark_measures_the_cold_pick_the_recipe_ships():
    from recipes.preference_rank import COLD_SCORER, SELECTOR

    assert (COLD_SCORER, SELECTOR) == (SHIPPED, "topk")  # the benchmark's "density" is top-k of density
