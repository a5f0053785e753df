"""`curate bench label-efficiency`: data split, oracle noise, ratios, ECE, the CLI end to end (tiny featurizer)."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import curate.cli.bench  # noqa: F401  (registers `bench label-efficiency`)
from curate.bench.label_efficiency import BenchConfig, budget_steps, run_benchmark
from curate.bench.label_efficiency_data import (
    load_labelled,
    make_split,
    noisy_class_answers,
    noisy_preference_answers,
)
from curate.bench.label_efficiency_features import HashingFeaturizer, TextPairFeaturizer, pair_text
from curate.bench.label_efficiency_metrics import (
    efficiency_ratio,
    expected_calibration_error,
    labels_to_reach,
    ratio_report,
)
from curate.cli.main import app
from curate.errors import InputError

runner = CliRunner()
CLASSES = ("alpha", "beta", "gamma", "delta", "omega")


def _classify_csv(path: Path, n: int = 200, seed: int = 0) -> Path:
    """Texts whose class shows in two of six words; columns renamed (sentence, intent) to exercise --map."""
    rnd = random.Random(seed)
    common = [f"w{i}" for i in range(40)]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sentence", "intent"])
        for i in range(n):
            c = CLASSES[i % len(CLASSES)]
            words = [f"{c}{rnd.randrange(6)}", f"{c}{rnd.randrange(6)}", *rnd.sample(common, 4)]
            rnd.shuffle(words)
            writer.writerow([" ".join(words) + f" id{i}", c])
    return path


def _preference_jsonl(path: Path, n_prompts: int = 60, per_prompt: int = 2) -> Path:
    """Pairs with an explicit prompt column named 'question'; chosen answers are polite, rejected ones rude."""
    rnd = random.Random(1)
    good, bad = ["thanks", "gladly", "sure", "help", "safe"], ["no", "stupid", "go", "away", "whatever"]
    with path.open("w") as fh:
        for p in range(n_prompts):
            for j in range(per_prompt):
                row = {"question": f"question {p} about topic {p % 7}",
                       "chosen": " ".join(rnd.sample(good, 3)) + f" v{j}",
                       "rejected": " ".join(rnd.sample(bad, 3)) + f" v{j}"}
                fh.write(json.dumps(row) + "\n")
    return path


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------- end to end


def test_cli_classify_writes_json_and_png(tmp_path):
    data = _classify_csv(tmp_path / "intents.csv")
    out = tmp_path / "results"
    result = runner.invoke(app, [
        "bench", "label-efficiency", "--task", "classify", "--data", str(data), "--map", "text=sentence",
        "--map", "label=intent", "--features", "hashing", "--seeds", "2", "--strategies",
        "random,margin,cluster-margin", "--start-per-class", "2", "--batch", "10", "--budget", "40",
        "--oracle-noise", "0.2", "--out-dir", str(out), "--cache-dir", str(tmp_path / "cache"),
        "--json", str(tmp_path / "copy.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "label_efficiency_classify_hashing.json").read_text())
    assert set(report) >= {"task", "data", "config", "features", "runs", "verdict", "metric", "seconds"}
    assert set(report["runs"]) == {"noise_0", "noise_0.2"}
    run = report["runs"]["noise_0"]
    assert run["budgets"] == [10, 20, 30, 40]
    assert set(run["curves"]) == {"random", "margin", "cluster-margin"}
    assert len(run["curves"]["margin"]["per_seed"]) == 2
    assert set(run["ratios"]) == {"margin", "cluster-margin"}
    assert {"ratio", "target", "random_labels", "strategy_labels", "per_seed"} <= set(run["ratios"]["margin"])
    final = run["final"]["margin"]
    assert set(final["per_class"]) == set(CLASSES) and "ece_calibration" in final
    assert report["runs"]["noise_0.2"]["flipped_answers_in_pool"] == round(0.2 * report["data"]["split"]["pool"])
    assert report["data"]["test_ids_in_pool"] == 0
    png = out / "label_efficiency_classify_hashing.png"
    assert _is_png(png) and png.stat().st_size > 10_000
    assert json.loads((tmp_path / "copy.json").read_text())["task"] == "classify"
    assert "ratio" in result.output


def test_preference_benchmark_with_injected_featurizer(tmp_path):
    data = _preference_jsonl(tmp_path / "prefs.jsonl")
    cfg = BenchConfig(task="preference", seeds=2, start=10, batch=10, budget=30, test_size=30, n_heads=3)
    report = run_benchmark(cfg, data, mapping={"prompt": "question"},
                           pair_featurizer=TextPairFeaturizer(HashingFeaturizer(dim=64)))
    run = report["runs"]["noise_0"]
    assert run["budgets"] == [10, 20, 30]
    assert set(run["ratios"]) == {"disagreement", "bald", "entropy"}
    corr = run["final"]["disagreement"]["uncertainty_vs_test_errors"]
    assert set(corr) == {"disagreement", "bald", "entropy"}
    assert report["data"]["split"]["test"] >= 30
    verdict = report["verdict"]
    assert verdict["target_ratio"] == 1.2
    assert {"target_met", "ci_above_1", "random_curve_flat", "best_strategy"} <= set(verdict["noise_0"])
    assert set(run["mean_gain_over_random"]) == {"disagreement", "bald", "entropy"}
    if not verdict["noise_0"]["target_met"]:
        assert any("What would help" in note for note in verdict["why_not"])


# --------------------------------------------------------------------------------------------- splits


def test_test_set_never_overlaps_the_pool(tmp_path):
    pool_file = _classify_csv(tmp_path / "pool.csv", n=120)
    rows = list(csv.reader(pool_file.open()))
    test_file = tmp_path / "test.csv"
    with test_file.open("w", newline="") as fh:  # 10 copies of pool rows plus 20 new ones
        writer = csv.writer(fh)
        writer.writerow(rows[0])
        writer.writerows(rows[1:11])
        writer.writerows([[f"fresh text {i}", CLASSES[i % 5]] for i in range(20)])
    mapping = {"text": "sentence", "label": "intent"}
    pool, test = load_labelled(pool_file, "classify", mapping=mapping), load_labelled(test_file, "classify",
                                                                                        mapping=mapping)
    split = make_split(pool, "classify", test=test, calibration_size=5)
    assert split.removed_overlap == 10
    assert not set(split.pool.ids) & set(split.test.ids)
    assert not set(split.pool.ids) & set(split.calibration.ids)
    assert len(split.calibration) == 5 and len(split.pool) == 120 - 10 - 5
    seeded = make_split(pool, "classify", seed=3)
    assert len(seeded.test) == 24 and len(seeded.calibration) == 2  # 20% held out; 10% of that calibrates
    assert not set(seeded.pool.ids) & (set(seeded.test.ids) | set(seeded.calibration.ids))
    assert make_split(pool, "classify", seed=3).test.ids == seeded.test.ids  # the test set is frozen
    assert make_split(pool, "classify", seed=4).test.ids != seeded.test.ids  # another split seed, another test set


def test_cli_split_seed_reaches_the_split(tmp_path):
    data = _classify_csv(tmp_path / "intents.csv", n=60)
    base = ["bench", "label-efficiency", "--task", "classify", "--data", str(data), "--map", "text=sentence",
            "--map", "label=intent", "--features", "hashing", "--seeds", "1", "--strategies", "random",
            "--start-per-class", "2", "--batch", "10", "--budget", "20", "--cache-dir", str(tmp_path / "cache")]
    for seed in ("0", "7"):
        result = runner.invoke(app, [*base, "--split-seed", seed, "--out-dir", str(tmp_path / seed)])
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / seed / "label_efficiency_classify_hashing.json").read_text())
        assert report["config"]["split_seed"] == int(seed)


def test_preference_split_keeps_each_prompt_on_one_side(tmp_path):
    data = load_labelled(_preference_jsonl(tmp_path / "p.jsonl", n_prompts=40, per_prompt=3), "preference",
                         mapping={"prompt": "question"})
    split = make_split(data, "preference", test_size=20, calibration_size=6, seed=1)
    sides = [set(s.texts) for s in (split.pool, split.test, split.calibration)]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]
    assert len(split.test) >= 20 and len(split.test) % 3 == 0
    assert len(split.pool) + len(split.test) + len(split.calibration) == 120


def test_hh_transcripts_split_into_prompt_and_responses(tmp_path):
    ok = {"chosen": "\n\nHuman: Hi there\n\nAssistant: Hello, how can I help?",
          "rejected": "\n\nHuman: Hi there\n\nAssistant: Go away."}
    bad = {"chosen": "\n\nHuman: A\n\nAssistant: x\n\nHuman: B\n\nAssistant: y",
           "rejected": "\n\nHuman: A\n\nAssistant: z\n\nHuman: C\n\nAssistant: w"}
    path = tmp_path / "hh.jsonl"
    path.write_text(json.dumps(ok) + "\n" + json.dumps(bad) + "\n")
    data = load_labelled(path, "preference")
    assert len(data) == 1 and data.n_skipped == 1 and data.skipped[0][0] == 2
    assert data.texts == ["Hi there"] and data.chosen == ["Hello, how can I help?"]


# --------------------------------------------------------------------------------------------- oracle


def test_oracle_noise_flips_the_stated_fraction():
    gold = np.arange(1000) % 7
    answers = noisy_class_answers(gold, 7, 0.1, rng=np.random.default_rng(0))
    assert int(np.sum(answers != gold)) == 100
    assert answers.min() >= 0 and answers.max() < 7
    assert np.array_equal(noisy_class_answers(gold, 7, 0.0, rng=np.random.default_rng(0)), gold)
    assert int(noisy_preference_answers(333, 0.25, rng=np.random.default_rng(1)).sum()) == 83


# --------------------------------------------------------------------------------------------- figures


def test_ratio_on_hand_made_curves():
    budgets = [100, 200, 300, 400]
    # interpolation: random reaches 0.8 at 400; the strategy reaches 0.8 halfway from 200 (0.7) to 300 (0.9)
    r = efficiency_ratio(budgets, [0.5, 0.6, 0.7, 0.8], [0.6, 0.7, 0.9, 0.95])
    assert r["strategy_labels"] == pytest.approx(250.0) and r["ratio"] == pytest.approx(400 / 250)
    # random reaches its own final value early (a noisy curve): that earlier point counts
    r = efficiency_ratio(budgets, [0.5, 0.8, 0.7, 0.8], [0.8, 0.8, 0.8, 0.8])
    assert r["random_labels"] == 200 and r["ratio"] == pytest.approx(2.0)
    # never reached but still rising: extrapolated from the last two points, ratio < 1
    r = efficiency_ratio(budgets, [0.5, 0.6, 0.7, 0.8], [0.4, 0.5, 0.6, 0.7])
    assert r["extrapolated"] and r["strategy_labels"] == pytest.approx(500) and r["ratio"] == pytest.approx(0.8)
    # never reached and flat: no ratio, with the reason
    r = efficiency_ratio(budgets, [0.5, 0.6, 0.7, 0.8], [0.6, 0.7, 0.7, 0.7])
    assert r["ratio"] is None and "flat" in r["reason"]
    assert labels_to_reach(budgets, [0.9, 0.9, 0.9, 0.9], 0.8).labels == 100
    assert budget_steps(154, 100, 500) == [154, 254, 354, 454, 500]


def test_a_seed_that_never_reaches_random_stays_in_the_interval_at_its_bound():
    budgets = [100, 200, 300, 400]
    random_curves = [[0.5, 0.6, 0.7, 0.8]] * 3
    strategy = [[0.6, 0.7, 0.8, 0.8], [0.6, 0.7, 0.8, 0.8], [0.6, 0.7, 0.7, 0.7]]  # the third never reaches 0.8
    r = ratio_report(budgets, {"random": random_curves, "s": strategy})["s"]
    assert r["per_seed"] == pytest.approx([4 / 3, 4 / 3, 1.0], abs=1e-4)  # the bound: 400 / 400
    assert r["per_seed_unreached"] == [2]
    assert r["per_seed_ci"]["n"] == 3 and r["per_seed_ci"]["mean"] == pytest.approx((4 / 3 * 2 + 1) / 3)


def test_ece_on_a_hand_made_example():
    # bin 0.9: accuracy 0.5 vs confidence 0.9 (gap 0.4); bin 0.6: accuracy 1.0 vs 0.6 (gap 0.4); 3 of 6 each
    conf = [0.9, 0.9, 0.92, 0.6, 0.6, 0.6]
    correct = [True, False, False, True, True, True]
    expected = 0.5 * abs(1 / 3 - (0.9 + 0.9 + 0.92) / 3) + 0.5 * abs(1.0 - 0.6)
    assert expected_calibration_error(conf, correct) == pytest.approx(expected)
    assert expected_calibration_error([1.0, 0.05], [True, True]) == pytest.approx(0.5 * 0.95)
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)


def test_pair_text_keeps_the_response_in_the_window():
    assert pair_text("a " * 1000, "the answer", max_prompt_chars=20).endswith("\n\nthe answer")
    assert len(pair_text("a " * 1000, "x", max_prompt_chars=20)) <= 23
    assert pair_text("", "only") == "only"


# --------------------------------------------------------------------------------------------- CLI errors


def _curate(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from curate.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_cli_defaults_are_what_the_recipes_ship(tmp_path):
    """Run on a user's data with no strategy options, the benchmark compares label-teach's strategy (DBAL over the
    10 k lowest margins, no random share, on label-teach's minilm+words features) with random and the plain
    alternatives; the preference defaults are
    preference-rank's (prompt coverage, with the Laplace learner on TF-IDF features)."""
    from curate.bench.product_defaults import product_defaults

    data = _classify_csv(tmp_path / "intents.csv")
    result = runner.invoke(app, [
        "bench", "label-efficiency", "--task", "classify", "--data", str(data), "--map", "text=sentence",
        "--map", "label=intent", "--features", "hashing", "--seeds", "1", "--start-per-class", "2", "--batch", "10",
        "--budget", "30", "--out-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "label_efficiency_classify_hashing.json").read_text())
    assert report["config"]["random_mix"] == 0.0 and report["config"]["candidates_per_pick"] == 10.0
    assert sorted(report["runs"]["noise_0"]["curves"]) == ["cluster-margin", "margin", "prefilter-centroid-margin",
                                                           "random"]
    assert product_defaults("preference", None, None, None, None) == (
        "laplace", ("random", "novelty", "variance-novelty", "entropy"), 0.1, "tfidf", 5.0)
    # the ensemble learner keeps its own strategies; what the user gives wins
    assert product_defaults("preference", "ensemble", None, 0.2, "minilm") == ("ensemble", None, 0.2, "minilm", 5.0)
    assert product_defaults("classify", None, ("random", "badge"), None, None, 3.0) == (
        "ensemble", ("random", "badge"), 0.0, "minilm+words", 3.0)
    from recipes.label_teach import DEFAULT_EMBEDDER

    assert product_defaults("classify", None, None, None, None)[3] == DEFAULT_EMBEDDER


def test_cli_errors_name_the_column_and_the_map_fix(tmp_path):
    data = _classify_csv(tmp_path / "intents.csv", n=20)
    base = ["bench", "label-efficiency", "--task", "classify", "--features", "hashing", "--out-dir", str(tmp_path)]
    result = runner.invoke(app, [*base, "--data", str(data), "--map", "text=sentence"])
    message = " ".join(str(result.exception).split())
    assert isinstance(result.exception, InputError), result.output
    assert "'label'" in message and "--map label=COLUMN" in message and "intent" in message
    result = runner.invoke(app, [*base, "--data", str(data), "--map", "text=body", "--map", "label=intent"])
    assert isinstance(result.exception, InputError) and "--map text=body" in str(result.exception)
    result = runner.invoke(app, [*base, "--data", str(tmp_path / "nope.csv")])
    assert isinstance(result.exception, InputError)
    assert "nope.csv" in str(result.exception) and "no such file" in str(result.exception)
    # as a user runs it: one line on stderr, exit code 2, no traceback
    proc = _curate(*base, "--data", str(data), "--map", "text=sentence")
    assert proc.returncode == 2 and "--map label=COLUMN" in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_preference_battles_with_a_winner_column_are_read_as_ingest_reads_them(tmp_path):
    """prompt,response_a,response_b,winner rows (the README's battles layout) give the same pairs as chosen/rejected
    rows; without --map preferred the error says what to add."""
    from curate.bench.label_efficiency_data import load_labelled

    plain = _preference_jsonl(tmp_path / "pairs.jsonl", n_prompts=10)
    battles = tmp_path / "battles.jsonl"
    with battles.open("w") as fh:
        for i, line in enumerate(plain.read_text().splitlines()):
            row = json.loads(line)
            a, b = (row["chosen"], row["rejected"]) if i % 2 else (row["rejected"], row["chosen"])
            fh.write(json.dumps({"question": row["question"], "response_a": a, "response_b": b,
                                 "winner": "a" if i % 2 else "b"}) + "\n")
    mapping = {"prompt": "question", "responses": "response_a,response_b", "preferred": "winner"}
    got, want = load_labelled(battles, "preference", mapping=mapping), load_labelled(plain, "preference",
                                                                                     mapping={"prompt": "question"})
    assert (got.texts, got.chosen, got.rejected) == (want.texts, want.chosen, want.rejected) and len(got) == 20
    with pytest.raises(InputError, match="needs --map preferred=COLUMN"):
        load_labelled(battles, "preference", mapping={"responses": "response_a,response_b"})
    with pytest.raises(InputError, match=r"column 'resp_b' \(from --map responses=response_a,resp_b\) is not in"):
        load_labelled(battles, "preference", mapping={"responses": "response_a,resp_b", "preferred": "winner"})


def test_cli_reads_a_headerless_tsv_with_columns(tmp_path):
    """A TSV without a header line (label<TAB>text): the error names --columns; with it every row is read."""
    rows = list(csv.reader(_classify_csv(tmp_path / "named.csv").open()))[1:]
    data = tmp_path / "intents.tsv"
    data.write_text("".join(f"{label}\t{text}\n" for text, label in rows), encoding="utf-8")
    base = ["bench", "label-efficiency", "--task", "classify", "--data", str(data), "--features", "hashing",
            "--seeds", "1", "--strategies", "random,margin", "--batch", "10", "--budget", "30",
            "--out-dir", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    refused = runner.invoke(app, base)
    assert isinstance(refused.exception, InputError), refused.output
    said = " ".join(str(refused.exception).split())
    assert "needs a column 'text'" in said and "if the file has no header line, name its columns with --columns" in said
    result = runner.invoke(app, [*base, "--columns", "label,text", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["data"]["pool_file"]["rows"] == len(rows) == 200  # the first line is a row, not a header
    assert report["data"]["pool_file"]["skipped"] == 0
    assert set(report["runs"]["noise_0"]["curves"]) == {"random", "margin"}


def test_cli_reads_a_windows_encoded_file_with_encoding(tmp_path):
    """A cp1252 CSV: without --encoding its accented rows are skipped with the advice to pass it; with it, read."""
    rows = list(csv.reader(_classify_csv(tmp_path / "named.csv").open()))
    data = tmp_path / "intents.csv"
    with data.open("w", newline="", encoding="cp1252") as fh:
        csv.writer(fh).writerows([rows[0], *([f"café {text}", label] for text, label in rows[1:])])
    base = ["bench", "label-efficiency", "--task", "classify", "--data", str(data), "--map", "text=sentence",
            "--map", "label=intent", "--features", "hashing", "--seeds", "1", "--strategies", "random,margin",
            "--batch", "10", "--budget", "30", "--out-dir", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache")]
    refused = runner.invoke(app, base)
    assert isinstance(refused.exception, InputError)
    assert "--encoding cp1252" in str(refused.exception)  # every row was skipped, and why
    result = runner.invoke(app, [*base, "--encoding", "cp1252", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["data"]["pool_file"]["rows"] == 200 and report["data"]["pool_file"]["skipped"] == 0


def test_budgets_that_would_exhaust_the_pool(tmp_path):
    """At the whole pool every strategy holds the same labels: a default budget that large runs to half the pool, an
    asked one is kept with a warning, and a budget over half the pool is flagged."""
    from curate.bench.label_efficiency_data import budget_for_pool

    halved, [why] = budget_for_pool(1500, 466, asked=False)
    assert halved == 233 and "running to half the pool (233)" in why
    kept, [why] = budget_for_pool(1500, 466, asked=True)
    assert kept == 1500 and "labels the whole pool (466 records)" in why and "--budget 233" in why
    kept, [why] = budget_for_pool(300, 466, asked=True)
    assert kept == 300 and "labels 64% of the pool" in why
    assert budget_for_pool(200, 466, asked=False) == (200, [])
    data = _classify_csv(tmp_path / "intents.csv", n=60)
    base = ["bench", "label-efficiency", "--task", "classify", "--data", str(data), "--map", "text=sentence",
            "--map", "label=intent", "--features", "hashing", "--seeds", "1", "--strategies", "random,margin",
            "--start-per-class", "2", "--batch", "10", "--cache-dir", str(tmp_path / "cache"), "--out-dir",
            str(tmp_path)]
    result = runner.invoke(app, base)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "label_efficiency_classify_hashing.json").read_text())
    n_pool = report["data"]["split"]["pool"]
    assert report["config"]["budget"] == n_pool // 2 == report["runs"]["noise_0"]["budgets"][-1]
    assert "would label the whole pool" in report["warnings"][0]
    assert "warning: the default budget (1,500 labels)" in " ".join(result.output.split())


def _bench(tmp_path: Path, *args: str) -> list[str]:
    return ["bench", "label-efficiency", "--features", "hashing", "--strategies", "random,margin",
            "--cache-dir", str(tmp_path / "cache"), "--out-dir", str(tmp_path / "out"), *args]


def test_test_labels_the_pool_lacks_are_refused_or_warned(tmp_path):
    """A test file whose labels are numbers while the pool's are names scores 0 everywhere: refused, saying so. A
    test class the pool never has caps every curve: a warning with its count."""
    pool = _classify_csv(tmp_path / "pool.csv", n=200)
    rows = list(csv.reader(_classify_csv(tmp_path / "t.csv", n=50, seed=3).open()))[1:]
    numbers = tmp_path / "test_int.csv"
    numbers.write_text("sentence,intent\n" + "".join(f"{t},{CLASSES.index(c)}\n" for t, c in rows))
    maps = ["--task", "classify", "--data", str(pool), "--map", "text=sentence", "--map", "label=intent",
            "--seeds", "1", "--batch", "10", "--budget", "30"]
    refused = runner.invoke(app, _bench(tmp_path, *maps, "--test", str(numbers)))
    assert isinstance(refused.exception, InputError)
    said = " ".join(str(refused.exception).split())
    assert "none of its labels is a class of the pool file" in said and "'0', '1', '2', '3', '4'" in said
    assert "labels are numbers and the other's are names" in said
    extra = tmp_path / "test_extra.csv"
    extra.write_text("sentence,intent\n" + "".join(f"{t},{c}\n" for t, c in rows)
                     + "".join(f"weather report {i},weather\n" for i in range(10)))
    result = runner.invoke(app, _bench(tmp_path, *maps, "--test", str(extra), "--json", str(tmp_path / "r.json")))
    assert result.exit_code == 0, result.output
    [warning] = [w for w in json.loads((tmp_path / "r.json").read_text())["warnings"] if "never has" in w]
    assert warning.startswith("10 of 60 test rows (17%) have a class the pool never has ('weather': 10)")
    assert "stays below 0.833" in warning and "have a class the pool never has" in " ".join(result.output.split())


def test_skipped_rows_are_printed_with_their_reason(tmp_path):
    rows = list(csv.reader(_classify_csv(tmp_path / "named.csv").open()))
    data = tmp_path / "gaps.csv"
    with data.open("w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *([t, "" if i % 4 == 0 else c] for i, (t, c) in enumerate(rows[1:]))])
    result = runner.invoke(app, _bench(tmp_path, "--task", "classify", "--data", str(data), "--map", "text=sentence",
                                       "--map", "label=intent", "--seeds", "1", "--batch", "10", "--budget", "30"))
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"skipped 50 of 200 rows of {data} (lines 2, 6, 10, 14, 18, ...): 50 x field 'label' is empty" in said


def test_zero_seeds_and_a_seed_set_that_fills_the_budget_are_not_run_silently(tmp_path):
    data = _classify_csv(tmp_path / "intents.csv", n=300)
    maps = ["--task", "classify", "--data", str(data), "--map", "text=sentence", "--map", "label=intent"]
    zero = runner.invoke(app, _bench(tmp_path, *maps, "--seeds", "0"))
    assert isinstance(zero.exception, InputError) and "--seeds must be a positive integer; got 0" in str(zero.exception)
    # 5 classes x 8 = 40 seed labels of a 50-label budget: two points per curve
    result = runner.invoke(app, _bench(tmp_path, *maps, "--seeds", "1", "--start-per-class", "8", "--batch", "20",
                                       "--budget", "50", "--json", str(tmp_path / "r.json")))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["runs"]["noise_0"]["budgets"] == [40, 50]
    assert any(w.startswith("the seed set (40 labels: 8 per class over 5 classes) leaves 2 points")
               for w in report["warnings"])


def test_a_test_file_with_the_header_that_columns_names_is_read_by_it(tmp_path):
    """--columns names a headerless pool's columns; a test file whose first line is those names has a header."""
    rows = list(csv.reader(_classify_csv(tmp_path / "named.csv").open()))[1:]
    pool = tmp_path / "pool.tsv"
    pool.write_text("".join(f"{label}\t{text}\n" for text, label in rows[:150]))
    test = tmp_path / "test.tsv"
    test.write_text("label\ttext\n" + "".join(f"{label}\t{text}\n" for text, label in rows[150:]))
    result = runner.invoke(app, _bench(tmp_path, "--task", "classify", "--data", str(pool), "--test", str(test),
                                       "--columns", "label,text", "--seeds", "1", "--batch", "10", "--budget", "30",
                                       "--json", str(tmp_path / "r.json")))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["data"]["pool_file"]["rows"] == 150 and report["data"]["test_file"]["rows"] == 50


def test_a_small_preference_file_holds_out_a_quarter_by_default(tmp_path):
    data = _preference_jsonl(tmp_path / "prefs.jsonl", n_prompts=100, per_prompt=2)
    split = make_split(load_labelled(data, "preference", mapping={"prompt": "question"}), "preference")
    assert len(split.test) == 50  # a quarter of 200 pairs (whole prompts), not 500


def test_a_saved_dataset_dict_is_refused_with_the_benchmarks_own_options_which_work(tmp_path):
    import datasets

    rows = [{"text": t, "label": c} for t, c in list(csv.reader(_classify_csv(tmp_path / "n.csv").open()))[1:]]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:150]),
                          "test": datasets.Dataset.from_list(rows[150:])}).save_to_disk(str(tmp_path / "saved"))
    args = ["--task", "classify", "--seeds", "1", "--batch", "10", "--budget", "30"]
    refused = runner.invoke(app, _bench(tmp_path, *args, "--data", str(tmp_path / "saved")))
    said = " ".join(str(refused.exception).split())
    advice = f"a benchmark takes --data {tmp_path / 'saved' / 'train'} --test {tmp_path / 'saved' / 'test'}."
    assert refused.exit_code != 0 and advice in said
    result = runner.invoke(app, _bench(tmp_path, *args, "--data", str(tmp_path / "saved" / "train"), "--test",
                                       str(tmp_path / "saved" / "test"), "--json", str(tmp_path / "r.json")))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["data"]["pool_file"]["rows"] == 150 and report["data"]["test_file"]["rows"] == 50


def test_a_test_file_with_other_column_names_is_read_through_test_map(tmp_path):
    pool = _classify_csv(tmp_path / "pool.csv", n=200)
    rows = list(csv.reader(_classify_csv(tmp_path / "t.csv", n=50, seed=3).open()))[1:]
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps({"utterance": t, "gold": c}) + "\n" for t, c in rows))
    maps = ["--task", "classify", "--data", str(pool), "--map", "text=sentence", "--map", "label=intent",
            "--seeds", "1", "--batch", "10", "--budget", "30", "--test", str(test)]
    refused = runner.invoke(app, _bench(tmp_path, *maps))  # the pool's renames do not fit the test file
    assert isinstance(refused.exception, InputError) and "sentence" in str(refused.exception)
    result = runner.invoke(app, _bench(tmp_path, *maps, "--test-map", "text=utterance", "--test-map", "label=gold",
                                       "--json", str(tmp_path / "r.json")))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["data"]["split"]["test"] == len(rows) and report["data"]["test_file"]["rows"] == len(rows)
    no_test = runner.invoke(app, _bench(tmp_path, *maps[:-2], "--test-map", "label=gold"))
    assert isinstance(no_test.exception, InputError) and "give --test FILE" in str(no_test.exception)


@pytest.mark.models
def test_cli_measures_the_loops_words_embedder_on_a_users_file(tmp_path):
    """``--features minilm+words`` runs the loop's ``--embedder minilm+words`` rows: MiniLM beside the pool's words."""
    data = _classify_csv(tmp_path / "intents.csv", n=120)
    out = tmp_path / "results"
    result = runner.invoke(app, [
        "bench", "label-efficiency", "--task", "classify", "--data", str(data), "--map", "text=sentence",
        "--map", "label=intent", "--features", "minilm+words", "--seeds", "1", "--strategies", "random,margin",
        "--start-per-class", "2", "--batch", "10", "--budget", "30", "--out-dir", str(out),
        "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "label_efficiency_classify_minilm+words.json").read_text())
    assert report["features"]["name"] == "minilm+words256x0.5-Cx1.25-cv"
    assert 384 < report["features"]["dim"] <= 384 + 256
    assert report["config"]["C"] == 12.5  # C * (1 + 0.5**2), as the loop fits on these rows
    assert report["config"]["base"] == 384 - report["features"]["dim"]  # word columns read where they help
    assert report["runs"]["noise_0"]["budgets"][-1] == 30
    wrong = runner.invoke(app, ["bench", "label-efficiency", "--task", "preference", "--data", str(data),
                                "--features", "minilm+words"])
    assert wrong.exit_code != 0  # the real CLI prints the InputError's message (tests/unit/test_cli_errors.py)
    assert "--features for preference must be one of minilm, smollm2, hashing, tfidf;" in str(wrong.exception)


def test_cli_null_streams_read_random_against_random_and_gate_the_verdict(tmp_path, monkeypatch):
    data = _classify_csv(tmp_path / "intents.csv")
    base = ["bench", "label-efficiency", "--task", "classify", "--data", str(data), "--map", "text=sentence",
            "--map", "label=intent", "--features", "hashing", "--seeds", "2", "--strategies", "random,margin",
            "--start-per-class", "2", "--batch", "10", "--budget", "40", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, [*base, "--null-streams", "3", "--out-dir", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "a" / "label_efficiency_classify_hashing.json").read_text())
    run, verdict = report["runs"]["noise_0"], report["verdict"]["noise_0"]
    null = run["null"]
    assert null["streams"] == 3 and len(null["ratios"]) == 3 and set(null["p_value"]) == {"margin"}
    assert verdict["null_streams"] == 3 and verdict["null_range"] == null["range"]
    mean = null["mean_random"]  # and against the mean of all 4 random streams, each stream against the others
    assert mean["streams"] == 4 and len(mean["null"]) == 4 and set(mean["ratios"]) == {"margin"}
    against_mean = mean["ratios"]["margin"]
    assert verdict["ratio_against_mean_random"] == against_mean
    assert verdict["beyond_chance"] == (verdict["best_ratio"] > null["range"][1] and against_mean is not None
                                        and against_mean > mean["range"][1])
    assert "against the mean of 4 random streams margin reads" in result.output
    assert not verdict["target_met"] or verdict["beyond_chance"]
    assert "random against random, 3 other streams" in result.output and "p against them: margin" in result.output
    # the strategies' curves are those of a run without null streams (the streams are drawn apart)
    plain = runner.invoke(app, [*base, "--out-dir", str(tmp_path / "b")])
    assert plain.exit_code == 0, plain.output
    other = json.loads((tmp_path / "b" / "label_efficiency_classify_hashing.json").read_text())["runs"]["noise_0"]
    assert other["curves"] == run["curves"] and "null" not in other
    plain_verdict = json.loads((tmp_path / "b" / "label_efficiency_classify_hashing.json").read_text())["verdict"]
    assert "beyond_chance" not in plain_verdict["noise_0"]
    # without null streams, an interval above 1 comes with the command that reads it against chance
    assert ("rerun with --null-streams 19" in plain.output) == plain_verdict["noise_0"]["ci_above_1"]
    assert "rerun with --null-streams 19" not in result.output
    from rich.console import Console

    from curate.cli import output

    plain_report = json.loads((tmp_path / "b" / "label_efficiency_classify_hashing.json").read_text())
    plain_report["verdict"]["noise_0"]["ci_above_1"] = True  # as a run whose interval clears 1 would read
    monkeypatch.setattr(output, "console", Console(record=True, width=200))
    output.print_label_efficiency(plain_report)
    assert "rerun with --null-streams 19" in output.console.export_text()
    refused = runner.invoke(app, [*base, "--null-streams", "-1", "--out-dir", str(tmp_path / "c")])
    assert isinstance(refused.exception, InputError) and "--null-streams must be 0" in str(refused.exception)


def test_chance_hint_only_where_an_interval_above_1_has_no_null():
    from curate.cli.output import chance_hint

    assert chance_hint({"ci_above_1": False}) is None
    assert "--null-streams 19" in (chance_hint({"ci_above_1": True}) or "")
    assert chance_hint({"ci_above_1": True, "null_streams": 20, "null_range": [0.8, 1.1]}) is None
