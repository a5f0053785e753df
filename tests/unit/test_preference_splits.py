"""Preference acquisition over repeated pool/test splits: runs, resume, pooling, plot."""

from __future__ import annotations

import json

import pytest

from curate.bench.label_efficiency_plot import plot_report
from curate.bench.preference_splits import as_report, pool_splits, run_splits
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
