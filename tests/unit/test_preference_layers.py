"""Reward-model features by layer (LMHiddenStateFeaturizer(layers=...), the layer report) and reward heads on the
suite's features (the MLP ensemble, the head report)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from curate.bench.preference_heads import HEADS, MLPEnsembleBradleyTerry, head_report, parse_heads, plot_heads
from curate.bench.preference_layers import layer_report, parse_layer_specs, plot_layers
from curate.bench.preference_suite import PreferenceSet
from curate.errors import InputError
from curate.runtime.lm_features import LMHiddenStateFeaturizer
from tests.tiny_lm import build_tiny_lm

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_lm(tmp_path_factory.mktemp("lm") / "lm", num_layers=3))


def _pairs(path: Path, n_prompts: int = 40) -> Path:
    rnd = random.Random(0)
    with path.open("w") as fh:
        for p in range(n_prompts):
            good, bad = rnd.sample(["thanks", "clear", "steps", "example"], 2), rnd.sample(["no", "go", "away"], 2)
            fh.write(json.dumps({"prompt": f"question {p}", "chosen": " ".join(good) + f" {p}",
                                 "rejected": " ".join(bad) + f" {p}"}) + "\n")
    return path


def test_layers_all_concatenates_every_layer_and_ends_with_the_last(tmp_path, lm):
    prompts, responses = ["Say hi.", "Count to two."], ["Hi there, friend.", "One, two."]
    last = LMHiddenStateFeaturizer(tmp_path, model=lm)(prompts, responses)
    every = LMHiddenStateFeaturizer(tmp_path, model=lm, layers="all")
    feats = every(prompts, responses)
    assert every.n_layers == 3 and last.shape == (2, 32) and feats.shape == (2, 3 * 32)
    assert np.allclose(feats[:, -32:], last, atol=1e-5)  # the last decoder layer is the (normed) final state
    picked = LMHiddenStateFeaturizer(tmp_path, model=lm, layers="3,1")(prompts, responses)
    assert np.allclose(picked, np.concatenate([feats[:, 64:], feats[:, :32]], axis=1), atol=1e-5)
    assert not np.allclose(feats[:, :32], last, atol=1e-3)  # an earlier layer is another feature
    names = {LMHiddenStateFeaturizer(tmp_path, model=lm, layers=x).name for x in ("last", "all", "3,1")}
    assert len(names) == 3  # each choice caches apart
    with pytest.raises(InputError, match="from 1 to 3; got '0,4'"):
        LMHiddenStateFeaturizer(tmp_path, model=lm, layers="0,4")(["a"], ["b"])


def test_parse_layer_specs():
    assert parse_layer_specs("2, 1+3", 3) == [("2", [2]), ("1+3", [1, 3])]
    for bad in ("4", "x", "1+", ""):
        with pytest.raises(InputError, match="--layers"):
            parse_layer_specs(bad, 3)


def test_layer_report_measures_every_spec_and_plots(tmp_path, lm):
    pset = PreferenceSet("toy", _pairs(tmp_path / "p.jsonl"), test_size=10, budget=20)
    with pytest.raises(InputError, match="--layers"):
        layer_report(pset, "1,9", cache_dir=tmp_path / "cache", lm=lm)
    assert not (tmp_path / "cache").exists()  # refused before any feature was computed
    seen: list[tuple[str, int, int]] = []
    report = layer_report(pset, "1,3,1+3", cache_dir=tmp_path / "cache", lm=lm, splits=2, budgets=(10, 20, 500),
                          repeats=2, progress=lambda *a: seen.append(a))
    assert set(report["layers"]) == {"1", "3", "1+3"} and report["n_layers"] == 3 and report["best"] in report["layers"]
    for v in report["layers"].values():
        assert len(v["whole_pool"]["per_split"]) == 2 and 0.0 <= v["whole_pool"]["mean"] <= 1.0
        assert v["random"]["budgets"] == [10, 20] and len(v["random"]["mean"]) == 2  # 500 > the pool: left out
    assert ("splits", 2, 2) in seen and any(s[0].startswith("LM features") for s in seen)
    assert list((tmp_path / "cache" / "embeddings").iterdir())[0].name.endswith("-layers-all")
    png = plot_layers(report, tmp_path / "layers.png")
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_mlp_ensemble_learns_a_nonlinear_reward_the_linear_head_cannot():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 2)), rng.normal(size=(400, 2))
    reward = lambda x: -np.abs(x[:, 0])  # noqa: E731 - preferred: nearer 0 on the first axis (not linear)
    swap = reward(a) < reward(b)
    chosen, rejected = np.where(swap[:, None], b, a), np.where(swap[:, None], a, b)
    ta, tb = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    truth = reward(ta) > reward(tb)
    mlp = MLPEnsembleBradleyTerry(members=3, hidden=16, epochs=300, seed=1).fit(chosen, rejected)
    p = mlp.prob(ta, tb)
    assert p.shape == (300,) and np.all((p >= 0) & (p <= 1))
    assert np.allclose(p + mlp.prob(tb, ta), 1.0, atol=1e-6)  # r(a) - r(b): swapping the pair flips it
    assert np.mean((p > 0.5) == truth) > 0.85
    linear = HEADS["laplace"](chosen, rejected, 0)
    assert np.mean((np.asarray(linear.prob(ta, tb)) > 0.5) == truth) < 0.7  # |x| is not a linear reward
    with pytest.raises(InputError, match="fit\\(\\) first"):
        MLPEnsembleBradleyTerry().prob(ta, tb)
    with pytest.raises(InputError, match="one shape"):
        MLPEnsembleBradleyTerry().fit(chosen, rejected[:, :1])


def test_parse_heads_names_the_choices():
    assert parse_heads("laplace, mlp-32") == ["laplace", "mlp-32"]
    with pytest.raises(InputError, match="unknown head.*choose from laplace"):
        parse_heads("laplace,svm")


def test_head_report_fits_every_head_on_the_same_draws_and_plots(tmp_path, lm):
    pset = PreferenceSet("toy", _pairs(tmp_path / "p.jsonl"), test_size=10, budget=20)
    with pytest.raises(InputError, match="unknown head 'svm'"):
        head_report(pset, ["svm"], cache_dir=tmp_path / "cache", lm=lm)
    seen: list[tuple[str, int, int]] = []
    report = head_report(pset, ["laplace", "linear-ensemble", "mlp-16-early"], cache_dir=tmp_path / "cache", lm=lm,
                         splits=2, budgets=(10, 20, 500), repeats=2, progress=lambda *a: seen.append(a))
    assert set(report["heads"]) == {"laplace", "linear-ensemble", "mlp-16-early"} and report["best"] in report["heads"]
    for v in report["heads"].values():
        assert len(v["whole_pool"]["per_split"]) == 2 and 0.0 <= v["whole_pool"]["mean"] <= 1.0
        assert v["random"]["budgets"] == [10, 20] and len(v["random"]["mean"]) == 2  # 500 > the pool: left out
        assert len(v["random"]["sd"]) == 2
    fitted = [d for task, d, total in seen if task.startswith("heads fitted") and total == 6]
    assert fitted == [1, 2, 3, 4, 5, 6] and any(s[0].startswith("LM features") for s in seen)
    png = plot_heads(report, tmp_path / "heads.png")
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
