"""The rewrite budget's LoRA variant: rewrites applied to the pool, random's curve inverted at equal loss, resumable
runs, and real adapters trained on the tiny local Llama."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from curate.bench.rewrite_budget import damage_pool
from curate.bench.rewrite_budget_lora import (
    SavedRuns,
    apply_rewrites,
    plan_size,
    plot_lora_budget,
    random_budget_at,
    ratio_at_equal_loss,
    run_lora_budget,
    sft_train_loss,
)
from curate.cli.main import app
from curate.errors import InputError
from curate.runtime.catalog import BuildContext, build_scorer
from curate.store.workspace import Workspace
from curate.train import TrainOptions
from curate.train.registry import list_versions
from tests.tiny_lm import QA_PAIRS, build_tiny_lm
from tests.unit.test_rewrite_budget import _rows

torch.set_num_threads(1)


def _no_embed(texts: list[str]) -> np.ndarray:
    raise AssertionError("no strategy here needs embeddings")


def test_rewrites_applied_to_the_pool_or_alone():
    pool = damage_pool(_rows(20), share=0.5, rng=np.random.default_rng(0))
    bad = [i for i, d in enumerate(pool.damage) if d][:3]
    applied = apply_rewrites(pool, bad)
    assert len(applied) == 20
    assert [c for _, c in applied] == [pool.clean[i] if i in bad else pool.completions[i] for i in range(20)]
    assert sum(c != clean for (_, c), clean in zip(applied, pool.clean, strict=True)) == 10 - 3
    assert apply_rewrites(pool, bad, "rewritten") == [(pool.prompts[i], pool.clean[i]) for i in sorted(bad)]
    with pytest.raises(InputError, match="unknown variant"):
        apply_rewrites(pool, bad, "both")


def test_random_budget_at_equal_loss_interpolates_a_monotone_curve():
    curve = [(0, 3.0), (50, 2.8), (100, 2.7)]
    assert random_budget_at(2.9, curve) == pytest.approx(25.0)
    assert random_budget_at(2.75, curve) == pytest.approx(75.0)
    assert random_budget_at(3.1, curve) == 0.0  # worse than no rewrite at all
    assert random_budget_at(2.6, curve) == math.inf  # better than random with every row rewritten
    # a noisy bump (k=100 worse than k=50) is flattened: random reached 2.7 with 50 rewrites
    bumpy = [(0, 3.0), (50, 2.7), (100, 2.8)]
    assert random_budget_at(2.7, bumpy) == pytest.approx(50.0)
    assert random_budget_at(2.75, bumpy) == pytest.approx(50 * 0.25 / 0.3)
    assert ratio_at_equal_loss(25, 2.6, curve, 100) == 4.0  # capped at n / k
    assert ratio_at_equal_loss(25, 2.9, curve, 100) == 1.0
    with pytest.raises(InputError, match="k = 0"):
        random_budget_at(2.9, [(50, 2.8)])


def test_a_strategy_that_finds_damaged_rows_beats_random_at_equal_loss_and_runs_resume(tmp_path: Path):
    rows = _rows(60)
    clean_of = dict(rows)
    calls: list[str] = []

    def share_damaged(train_rows: list[tuple[str, str]], name: str) -> float:
        """A loss that rises with the damaged rows trained on (what a real adapter's held-out loss does)."""
        calls.append(name)
        wrong = sum(1 for p, c in train_rows if c != clean_of[p])
        return 2.0 + wrong / 60

    context = BuildContext(cache_dir=tmp_path)
    seen: dict[str, float] = {}
    report = run_lora_budget(rows, ["shortest"], share_damaged, share=0.3, budgets=(0.1, 0.3),
                             random_budgets=(0, 0.5, 1), seeds=(0, 1), build=lambda n: build_scorer(n, context),
                             embed=_no_embed, on_run=lambda k, v: seen.__setitem__(k, v))
    assert report["budgets"] == [6, 18] and report["random_budgets"] == [0, 6, 18, 30, 60]
    # per seed: random at 5 budgets + 2 rewritten-only runs, shortest at 2 budgets + 2 rewritten-only runs
    assert len(calls) == 2 * (5 + 2 + 2 + 2) and set(seen) == set(report["losses"])
    curve = report["random_curve"]["0"]
    assert curve[0] == [0, pytest.approx(2.3)] and curve[-1] == [60, pytest.approx(2.0)]
    cells = report["summary"]["shortest"]
    assert all(c["loss"] < c["random_loss"] for c in cells)  # shortest finds generic and truncated answers first
    assert cells[0]["ratio_vs_random"] > 1.5 and all(len(c["ratio_per_seed"]) == 2 for c in cells)
    first = report["per_seed"]["shortest"][0]["cells"][0]
    assert first["capped"] is (first["loss"] < min(v for _, v in curve))
    assert first["rewritten_only_loss"] == pytest.approx(2.0)  # the rewritten rows alone are all clean
    # a rerun with the finished runs trains nothing and reports the same
    calls.clear()
    again = run_lora_budget(rows, ["shortest"], share_damaged, share=0.3, budgets=(0.1, 0.3),
                            random_budgets=(0, 0.5, 1), seeds=(0, 1), build=lambda n: build_scorer(n, context),
                            embed=_no_embed, done=seen)
    assert calls == [] and again["summary"] == report["summary"]


def test_sft_train_loss_trains_fresh_adapters_on_the_tiny_lm(tmp_path: Path):
    lm = build_tiny_lm(tmp_path / "lm")
    base_losses: list[float] = []
    train_loss = sft_train_loss(tmp_path / "ws", list(QA_PAIRS[:4]), base=str(lm),
                                options=TrainOptions(max_steps=2, batch_size=2, max_length=64, learning_rate=1e-2),
                                on_base_loss=base_losses.append)
    rows = list(QA_PAIRS)
    first = train_loss(rows, "seed0/random/applied/k0")
    second = train_loss(rows, "seed0/random/applied/k0")  # the same run again: a fresh adapter, not a warm start
    assert math.isfinite(first) and first == pytest.approx(second, rel=1e-2)
    versions = list_versions(Workspace.open(tmp_path / "ws").store)
    assert len(versions) == 2 and all(v.parent_id is None and v.metrics["warm_start"] is None for v in versions)
    assert len(base_losses) == 1 and math.isfinite(base_losses[0]) and first != base_losses[0]
    assert not any((tmp_path / "ws" / "adapters").iterdir())  # adapters are removed: only the loss is kept
    written = (tmp_path / "ws" / "exports" / "rewrite-budget-lora" / "seed0-random-applied-k0" / "train.jsonl")
    assert written.read_text().count("\n") == len(rows) and '"role":"assistant"' in written.read_text()


def test_saved_runs_survive_a_restart_and_reset_when_the_settings_change(tmp_path: Path):
    path = tmp_path / "runs.json"
    saved = SavedRuns(path, {"pool": 300, "lr": 5e-4})
    saved.add("seed0/random/applied/k0", 2.5)
    saved.set("base_loss", 2.9)
    again = SavedRuns(path, {"pool": 300, "lr": 5e-4})
    assert again.runs == {"seed0/random/applied/k0": 2.5} and again.data["base_loss"] == 2.9
    assert set(again.data["seconds"]) == {"seed0/random/applied/k0"}
    assert SavedRuns(path, {"pool": 300, "lr": 1e-3}).runs == {}  # other settings: nothing carries over


def test_plan_size_counts_what_run_lora_budget_trains():
    # random at 0, 6, 18, 30, 60 + rewritten at 6, 18; shortest at 6, 18 + rewritten at 6, 18
    assert plan_size(["shortest"], 60, (0.1, 0.3), (0, 0.5, 1)) == 11
    assert plan_size(["random"], 60, (0.1, 0.3), (0, 1), variants=("applied",)) == 4


def test_curate_bench_rewrite_budget_lora_trains_adapters_and_reports_losses(tmp_path: Path, monkeypatch):
    lm = build_tiny_lm(tmp_path / "lm")
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": p, "answer": c}) + "\n" for p, c in _rows(20)))
    monkeypatch.chdir(tmp_path)
    args = ["bench", "rewrite-budget", str(data), "--map", "prompt=question", "--map", "completion=answer",
            "--strategies", "random,shortest", "--pool", "12", "--budgets", "0.25", "--seeds", "1", "--lora",
            "--lora-epochs", "1", "--base", str(lm), "--json", str(tmp_path / "r.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lora = json.loads((tmp_path / "r.json").read_text())["lora"]
    # random at 0, 3 and 12 rewrites and rewritten-only at 3; shortest at 3 and rewritten-only at 3
    assert len(lora["losses"]) == 6 and all(math.isfinite(v) for v in lora["losses"].values())
    assert lora["budgets"] == [3] and [k for k, _ in lora["random_curve"]["0"]] == [0, 3, 12]
    cell = lora["summary"]["shortest"][0]
    assert cell["loss"] == pytest.approx(lora["losses"]["seed0/shortest/applied/k3"], abs=1e-4)
    assert 0 <= cell["ratio_vs_random"] <= 4
    assert math.isfinite(lora["base_model_loss"]) and "held-out loss after LoRA" in result.output
    assert "6 adapters to train (0 kept" in result.output
    again = CliRunner().invoke(app, args)  # the finished adapters are kept: nothing is trained again
    assert again.exit_code == 0 and "(6 kept from an earlier run)" in again.output
    assert json.loads((tmp_path / "r.json").read_text())["lora"]["losses"] == lora["losses"]
    too_few = CliRunner().invoke(app, [*args[:args.index("--pool")], "--pool", "16", *args[args.index("--pool") + 2:]])
    assert isinstance(too_few.exception, InputError) and "lower --pool, or pass --heldout" in str(too_few.exception)


def test_the_plot_is_written(tmp_path: Path):
    rows = _rows(40)
    clean_of = dict(rows)
    report = run_lora_budget(rows, ["shortest"], lambda r, _: 2.0 + sum(c != clean_of[p] for p, c in r) / 40,
                             budgets=(0.3,), random_budgets=(0, 1), variants=("applied",),
                             build=lambda n: build_scorer(n, BuildContext(cache_dir=tmp_path)), embed=_no_embed)
    png = plot_lora_budget(report, tmp_path / "plot.png", base_loss=2.5)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
