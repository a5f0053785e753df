"""The classification suite: leave-one-data-set-out choice, its JSON, plots, missing sets (tiny featurizer)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from curate.bench.classify_suite import (
    SuiteSet,
    choose,
    leave_one_out,
    parse_candidate,
    run_classify_suite,
    shared_classify_sets,
)
from curate.bench.classify_suite_report import merge_suites, ratio_table, write_plots
from curate.bench.label_efficiency import BenchConfig
from curate.bench.label_efficiency_features import EmbeddingPlusTfidf, EmbeddingPlusWords, HashingFeaturizer
from curate.errors import InputError


def _csv(path: Path, classes: tuple[str, ...], *, n: int = 150, seed: int = 0, label_column: str = "label") -> Path:
    """Texts whose class shows in two of six words."""
    rnd = random.Random(seed)
    common = [f"w{i}" for i in range(40)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", label_column])
        for i in range(n):
            c = classes[i % len(classes)]
            words = [f"{c}{rnd.randrange(6)}", f"{c}{rnd.randrange(6)}", *rnd.sample(common, 4)]
            rnd.shuffle(words)
            writer.writerow([" ".join(words) + f" id{i}", c])
    return path


def _figures(ratios: dict[str, dict[str, float | None]]) -> dict[str, dict[str, dict]]:
    return {s: {c: {"ratio": r, "per_seed": [r], "per_seed_ci": [r - 0.1, r + 0.1] if r else None,
                    "final_accuracy": 0.8, "random_final_accuracy": 0.7, "mean_gain_over_random": 0.01,
                    "target_met": r is not None and r >= 2.0}
                for c, r in by.items()} for s, by in ratios.items()}


# --------------------------------------------------------------------------------------------- choosing


def test_leave_one_out_chooses_on_the_other_sets_only() -> None:
    # x is the best on set a (3.0) but weak elsewhere; y is the best on b and c.
    ratios: dict[str, dict[str, float | None]] = {"a": {"x": 3.0, "y": 1.5}, "b": {"x": 1.2, "y": 2.0},
                                                  "c": {"x": 1.3, "y": 2.2}}
    loo = leave_one_out(ratios, _figures(ratios))
    assert loo["a"]["own_best"] == "x"
    assert loo["a"]["chosen"] == "y" and loo["a"]["chosen_on"] == ["b", "c"]
    assert loo["a"]["ratio"] == 1.5 and loo["a"]["score_on_others"] == pytest.approx((2.0 * 2.2) ** 0.5, abs=1e-4)
    assert loo["a"]["target_met"] is False
    # leaving b out, a's 3.0 lifts x's geometric mean (3.0 * 1.3) ** 0.5 = 1.97 above y's (1.5 * 2.2) ** 0.5 = 1.82
    assert loo["b"]["chosen"] == "x" and loo["b"]["ratio"] == 1.2
    assert loo["c"]["chosen"] == "x"
    assert choose(ratios, ["a", "b", "c"])["chosen"] == "y"  # geometric means 1.67 (x) vs 1.91 (y)


def test_the_aggregate_decides_between_one_big_ratio_and_steady_ones() -> None:
    ratios: dict[str, dict[str, float | None]] = {"a": {"x": 3.5, "y": 2.0}, "b": {"x": 1.05, "y": 2.0}}
    assert choose(ratios, ["a", "b"], by="mean")["chosen"] == "x"  # 2.275 vs 2.0
    geo = choose(ratios, ["a", "b"])
    assert geo["chosen"] == "y" and geo["score"] == 2.0 and geo["eligible"] == ["y", "x"]  # x: 1.92
    assert choose(ratios, ["a", "b"], by="worst")["chosen"] == "y"
    with pytest.raises(InputError):
        choose(ratios, ["a"], by="median")


def test_a_candidate_that_lost_to_random_is_never_chosen() -> None:
    ratios: dict[str, dict[str, float | None]] = {"a": {"big": 9.0, "steady": 1.4, "never": None},
                                                  "b": {"big": 0.9, "steady": 1.3, "never": 5.0}}
    pick = choose(ratios, ["a", "b"])
    assert pick["chosen"] == "steady" and pick["eligible"] == ["steady"]
    assert pick["worst_ratio"] == 1.3
    lost: dict[str, dict[str, float | None]] = {"a": {"x": 0.8}, "b": {"x": 1.5}}
    assert choose(lost, ["a", "b"])["chosen"] == "random"
    held_b = leave_one_out(lost, _figures(lost))["b"]  # chosen on a, where x lost: random, at random's accuracy
    assert held_b["chosen"] == "random" and held_b["ratio"] == 1.0 and held_b["final_accuracy"] == 0.7
    assert held_b["target_met"] is False
    with pytest.raises(InputError):
        choose(ratios, [])


def test_parse_candidate_types_settings_and_rejects_unknown() -> None:
    assert parse_candidate("badge") == ("badge", {})
    assert parse_candidate("rr-cluster-margin:round_robin_within=score,pool_cluster_size=50") == (
        "rr-cluster-margin", {"round_robin_within": "score", "pool_cluster_size": 50})
    for bad in ("random", "nope", "margin:clusters=2", "margin:C=abc", "margin:C"):
        with pytest.raises(InputError):
            parse_candidate(bad)


# --------------------------------------------------------------------------------------------- sets


def test_shared_sets_skip_missing_folders_with_a_message(tmp_path: Path) -> None:
    _csv(tmp_path / "trec6" / "train.csv", ("A", "B"))
    _csv(tmp_path / "trec6" / "test.csv", ("A", "B"), n=20)
    _csv(tmp_path / "banking77" / "train.csv", ("A", "B"), label_column="category")  # test.csv missing
    said: list[str] = []
    sets = shared_classify_sets(tmp_path, say=said.append)
    assert [s.name for s in sets] == ["trec6"]
    assert sets[0].test == tmp_path / "trec6" / "test.csv"
    assert len(said) == 2
    assert said[0].startswith("skipped banking77:") and str(tmp_path / "banking77" / "test.csv") in said[0]
    assert said[1].startswith("skipped ag_news:") and "news.csv" in said[1]


def test_shared_sets_when_all_present(tmp_path: Path) -> None:
    for folder, files in (("banking77", ("train.csv", "test.csv")), ("trec6", ("train.csv", "test.csv")),
                          ("ag_news_test", ("news.csv",))):
        for f in files:
            _csv(tmp_path / folder / f, ("A", "B"), n=10)
    said: list[str] = []
    sets = shared_classify_sets(tmp_path, say=said.append)
    assert [s.name for s in sets] == ["banking77", "trec6", "ag_news"] and not said
    assert sets[0].mapping == {"label": "category"}
    assert sets[2].test is None and sets[2].test_size == 0.2


# --------------------------------------------------------------------------------------------- end to end


def test_suite_end_to_end_json_plots_and_resume(tmp_path: Path) -> None:
    sets = [SuiteSet("five", _csv(tmp_path / "five.csv", ("a", "b", "c", "d", "e"), seed=1), test_size=0.25),
            SuiteSet("three", _csv(tmp_path / "three.csv", ("p", "q", "r"), seed=2), test_size=0.25)]
    base = BenchConfig(task="classify", start=2, batch=10, budget=40)
    cands = ["margin", "cluster-margin:clusters_per_pick=3"]
    said: list[str] = []
    suite = run_classify_suite(sets, strategies=cands, seeds=2, base=base, text_featurizer=HashingFeaturizer(),
                               resume_dir=tmp_path / "runs", say=said.append)
    assert set(suite) >= {"sets", "leave_one_out", "default", "rule", "candidates", "config",
                          "leave_one_out_by_other_rules"}
    assert set(suite["leave_one_out_by_other_rules"]) == {"mean", "worst"}
    assert json.loads(json.dumps(suite)) == suite  # JSON-ready
    for name in ("five", "three"):
        entry = suite["sets"][name]
        assert set(entry["groups"]) == {"", "clusters_per_pick=3"}  # one run per group of settings
        assert set(entry["candidates"]) == set(cands)
        fig = entry["candidates"]["cluster-margin:clusters_per_pick=3"]
        assert fig["group"] == "clusters_per_pick=3" and len(fig["per_seed"]) == 2
        assert entry["groups"]["clusters_per_pick=3"]["config"]["clusters_per_pick"] == 3.0
        assert 0.0 <= fig["final_accuracy"] <= 1.0 and 0.0 <= fig["random_final_accuracy"] <= 1.0
        run = entry["groups"][""]["runs"]["noise_0"]
        assert run["budgets"][-1] == 40 and set(run["curves"]) == {"random", "margin"}
        loo = suite["leave_one_out"][name]
        assert {"chosen", "ratio", "per_seed_ci", "final_accuracy", "random_final_accuracy"} <= set(loo)
        assert loo["chosen_on"] == [n for n in ("five", "three") if n != name]
    # the left-out choice is the other set's own best (when it beat random there)
    ratios = {n: {c: f["ratio"] for c, f in v["candidates"].items()} for n, v in suite["sets"].items()}
    assert suite["leave_one_out"]["five"]["chosen"] == choose(ratios, ["three"])["chosen"]
    assert suite["default"]["chosen"] == choose(ratios, ["five", "three"])["chosen"]
    assert len(said) == 4 and said[0].startswith("five [base]: margin ")
    plots = write_plots(suite, tmp_path / "out", "suite")
    assert set(plots) == {"five", "three"}
    for path in plots.values():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(line.startswith("left out five:") for line in ratio_table(suite))
    # a second run reads every finished (set, settings) run back instead of running it again
    stored = sorted((tmp_path / "runs").glob("*.json"))
    assert len(stored) == 4 and suite["runs"] == 4 and suite["runs_read_back"] == 0
    again = run_classify_suite(sets, strategies=cands, seeds=2, base=base, text_featurizer=HashingFeaturizer(),
                               resume_dir=tmp_path / "runs")
    assert again["runs_read_back"] == 4
    assert again["sets"]["five"]["groups"][""]["seconds"] == suite["sets"]["five"]["groups"][""]["seconds"]
    assert again["leave_one_out"] == suite["leave_one_out"]


def test_suite_rejects_duplicates_and_empty(tmp_path: Path) -> None:
    s = SuiteSet("x", tmp_path / "x.csv")
    with pytest.raises(InputError):
        run_classify_suite([], text_featurizer=HashingFeaturizer())
    with pytest.raises(InputError):
        run_classify_suite([s, s], text_featurizer=HashingFeaturizer())
    with pytest.raises(InputError):
        run_classify_suite([s], strategies=["margin", "margin"], text_featurizer=HashingFeaturizer())


def test_embedding_plus_tfidf_puts_weighted_unit_word_features_beside_the_embedding(tmp_path: Path) -> None:
    texts = [f"how many {w} are there" for w in ("cats", "dogs", "cars")] + [
        f"who wrote {w}" for w in ("hamlet", "ulysses", "dune")] + ["who is there", "how many wrote"]
    embed = HashingFeaturizer(dim=16)
    both = EmbeddingPlusTfidf(embed, dim=4, weight=0.5)
    x = both(texts)
    assert both.name == "hashing+tfidf4x0.5"
    assert x.shape == (8, 16 + 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, :16], embed(texts), atol=1e-6)  # the embedding is kept as it was
    np.testing.assert_allclose(np.linalg.norm(x[:, 16:], axis=1), 0.5, atol=1e-5)  # unit rows, times the weight
    np.testing.assert_array_equal(both(texts), x)  # deterministic
    # the word half separates the two question types: same-type rows are closer than cross-type ones
    words = x[:, 16:]
    assert float(words[0] @ words[1]) > float(words[0] @ words[3])
    # fewer texts than columns: the SVD keeps what there is
    assert EmbeddingPlusTfidf(embed, dim=256)(texts[:6]).shape[1] <= 16 + 5
    # and the suite runs on it, keyed by its name
    sets = [SuiteSet("five", _csv(tmp_path / "five.csv", ("a", "b", "c", "d", "e"), seed=1), test_size=0.25)]
    suite = run_classify_suite(sets, strategies=["margin"], seeds=1, base=BenchConfig(task="classify", start=2,
                               batch=10, budget=30), text_featurizer=EmbeddingPlusTfidf(HashingFeaturizer()))
    features = suite["sets"]["five"]["features"]
    assert features["name"] == "hashing+tfidf256x0.5" and 256 < features["dim"] <= 256 + 256


def test_the_product_word_features_are_fitted_on_the_pool_alone(tmp_path):
    """``--features minilm+words`` measures the loop's ``+words`` embedder: words fitted on the pool, never on test."""
    fitted_on: list[int] = []

    class Spy(EmbeddingPlusWords):
        def fit_pool(self, texts):
            fitted_on.append(len(texts))
            super().fit_pool(texts)

    embed = HashingFeaturizer(dim=16)
    with pytest.raises(RuntimeError, match="fit_pool"):
        EmbeddingPlusWords(embed)(["a text"])
    sets = [SuiteSet("five", _csv(tmp_path / "five.csv", ("a", "b", "c", "d", "e"), seed=1), test_size=0.25)]
    suite = run_classify_suite(sets, strategies=["margin"], seeds=1, base=BenchConfig(task="classify", start=2,
                               batch=10, budget=30), text_featurizer=Spy(embed))
    entry = suite["sets"]["five"]
    assert entry["features"]["name"] == "hashing+words256x0.5-Cx1.25-cv" and 16 < entry["features"]["dim"] <= 16 + 256
    assert fitted_on == [entry["data"]["split"]["pool"]]  # the pool's rows only: test and calibration are not seen


def test_suites_run_apart_merge_into_the_suite_run_together(tmp_path: Path) -> None:
    sets = [SuiteSet("five", _csv(tmp_path / "five.csv", ("a", "b", "c", "d", "e"), seed=1), test_size=0.25),
            SuiteSet("three", _csv(tmp_path / "three.csv", ("p", "q", "r"), seed=2), test_size=0.25)]
    base = BenchConfig(task="classify", start=2, batch=10, budget=40)
    run = {"seeds": 2, "base": base, "text_featurizer": HashingFeaturizer()}
    together = run_classify_suite(sets, strategies=["margin", "prefilter-centroid-margin:random_mix=0"], **run)
    first = run_classify_suite(sets, strategies=["margin"], **run)
    second = run_classify_suite(sets, strategies=["prefilter-centroid-margin:random_mix=0"], **run)
    merged = merge_suites([first, second])
    assert merged["candidates"] == together["candidates"]
    for name in ("five", "three"):
        mine, theirs = merged["sets"][name]["candidates"], together["sets"][name]["candidates"]
        assert {c: f["per_seed"] for c, f in mine.items()} == {c: f["per_seed"] for c, f in theirs.items()}
        assert mine["prefilter-centroid-margin:random_mix=0"]["group"] == "random_mix=0#2"
    assert merged["leave_one_out"] == together["leave_one_out"] and merged["default"] == together["default"]
    assert any(line.startswith("left out three:") for line in ratio_table(merged))
    with pytest.raises(InputError, match="more than one suite"):
        merge_suites([first, first])
    other = run_classify_suite(sets, strategies=["entropy"], **{**run, "seeds": 1})
    with pytest.raises(InputError, match="other sets or settings"):
        merge_suites([first, other])
    moved = json.loads(json.dumps(second))
    moved["sets"]["five"]["groups"]["random_mix=0"]["runs"]["noise_0"]["curves"]["random"]["per_seed"][0][1] += 0.1
    with pytest.raises(InputError, match="random's curves on five differ"):
        merge_suites([first, moved])
