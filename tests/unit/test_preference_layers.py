"""Reward-model features by layer: LMHiddenStateFeaturizer(layers=...) and the layer report of the preference suite."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

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
