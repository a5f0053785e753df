"""The rewrite-budget benchmark: damage a prompt-completion pool, rank it by strategies, count what they find."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from curate.bench.rewrite_budget import GENERIC_ANSWERS, damage_pool, rank_average, recall_at
from curate.cli.main import app
from curate.errors import InputError

TOPICS = ["bake bread", "change a tyre", "plant tomatoes", "brew tea", "tie a bowline knot", "clean a bike chain",
          "fold a paper crane", "sharpen a knife", "paint a wall", "repot a cactus"]


def _rows(n: int = 40) -> list[tuple[str, str]]:
    return [(f"How do I {TOPICS[i % 10]} (case {i})?",
             f"To {TOPICS[i % 10]}, first gather what you need for case {i}. Then work step by step, checking each "
             f"stage carefully, and finish by reviewing the result of {TOPICS[i % 10]} for case {i}.")
            for i in range(n)]


def test_damage_keeps_the_clean_answer_and_damages_the_share_asked():
    rows = _rows()
    pool = damage_pool(rows, share=0.3, rng=np.random.default_rng(0))
    assert pool.damaged.sum() == 12 and pool.clean == [c for _, c in rows] and pool.prompts == [p for p, _ in rows]
    for i, kind in enumerate(pool.damage):
        if kind is None:
            assert pool.completions[i] == pool.clean[i]
        elif kind == "swapped":
            assert pool.completions[i] != pool.clean[i] and pool.completions[i] in pool.clean
        elif kind == "truncated":
            assert pool.clean[i].startswith(pool.completions[i]) and len(pool.completions[i]) < len(pool.clean[i])
        else:
            assert pool.completions[i] in GENERIC_ANSWERS
    assert {d for d in pool.damage if d} == {"swapped", "truncated", "generic"}
    with pytest.raises(InputError, match="between 0 and 1"):
        damage_pool(rows, share=1.5, rng=np.random.default_rng(0))


def test_recall_precision_and_the_ratio_against_random():
    damaged = np.array([True, True, False, False, False, False, False, False, False, False])
    damage = ["generic", "swapped", *[None] * 8]
    (at2, at5) = recall_at(np.array([9.0, 1, 8, 0, 0, 0, 0, 0, 0, 0]), damaged, damage, [2, 5])
    assert (at2["found"], at2["recall"], at2["precision"]) == (1, 0.5, 0.5)
    assert at2["ratio_vs_random"] == 2.5  # random finds 2/10 of the damaged rows in 2: 0.5 needs 5 rows
    assert at2["recall_by_kind"] == {"generic": 1.0, "swapped": 0.0}
    assert at5["recall"] == 1.0 and at5["ratio_vs_random"] == 2.0  # capped at n / k
    assert rank_average([np.array([3.0, 1, 2]), np.array([1.0, 2, 3])]).tolist() == [1.0, 0.5, 1.5]


def test_the_command_ranks_a_damaged_pool(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"question": p, "answer": c}) + "\n" for p, c in _rows()), encoding="utf-8")
    strategies = "random,shortest,relevance,shortest+relevance"
    result = CliRunner().invoke(app, ["bench", "rewrite-budget", str(path), "--map", "prompt=question", "--map",
                                      "completion=answer", "--strategies", strategies, "--budgets", "0.3",
                                      "--seeds", "2", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rows"] == 40 and report["budgets"] == [12] and len(report["pools"]) == 2
    summary = {name: cells[0] for name, cells in report["summary"].items()}
    # short damaged answers (truncated, generic) are the shortest rows: shortest finds them far above random
    assert summary["shortest"]["recall"] > 0.6 > summary["random"]["recall"]
    assert summary["shortest+relevance"]["ratio_vs_random"] > 1.5
    swapped = [run[0]["recall_by_kind"]["swapped"] for run in report["per_seed"]["relevance"]]
    assert min(swapped) == 1.0  # another prompt's answer is far from its prompt
    assert "damaged rows found" in result.output


def test_a_two_stage_strategy_ranks_by_exact_scores_of_the_rows_it_scored():
    from curate.bench.rewrite_budget import run_rewrite_budget

    class ShortFirst:
        """Exact score = minus the completion's length (the shortest first), recording what it was asked."""

        asked: list[str] = []

        def score(self, records):
            ShortFirst.asked.extend(r.id for r in records)
            return np.array([-len(r.fields["completion"]) for r in records], dtype=np.float64)

    rows = _rows(200)
    names = ["shortest_exact", "shortest_exact@two-stage", "shortest_exact@two-stage:0.05",
             "shortest_exact@two-stage-text"]
    from tests.unit.test_loop import bow_encode

    report = run_rewrite_budget(rows, names, share=0.3, budgets=(0.1,), seeds=[0, 1], build=lambda name: ShortFirst(),
                                embed=bow_encode, two_stage=(0.2, 0.15))
    exact, two, small, _ = (report["summary"][s][0] for s in names)
    assert exact["recall"] > 0.25 and two["recall"] >= exact["recall"] - 0.05  # the short list holds the shortest
    figures = report["pools"][0]["two_stage"]
    assert figures["shortest_exact@two-stage:0.15"]["sample"] == 40
    assert figures["shortest_exact@two-stage:0.15"]["shortlisted"] == 30
    assert figures["shortest_exact@two-stage:0.15"]["exact_scored"] <= 70
    assert figures["shortest_exact@two-stage:0.15"]["spearman_heldout"] > 0.5
    assert figures["shortest_exact@two-stage:0.05"]["shortlisted"] == 10  # its own short list
    assert "+cos-minilm" in figures["shortest_exact@two-stage:0.15"]["proxy_features"]  # as `curate score` does
    assert "+cos" not in figures["shortest_exact@two-stage-text:0.15"]["proxy_features"]
    from curate.bench.rewrite_budget import two_stage_vs_exact

    versus = two_stage_vs_exact(report)
    assert set(versus) == set(names[1:])  # every two-stage strategy against its exact scorer
    cell = versus["shortest_exact@two-stage"][0]
    exact_runs = [run[0]["ratio_vs_random"] for run in report["per_seed"]["shortest_exact"]]
    two_runs = [run[0]["ratio_vs_random"] for run in report["per_seed"]["shortest_exact@two-stage"]]
    assert cell["k"] == 20
    assert cell["mean_difference"] == pytest.approx(np.mean(two_runs) - np.mean(exact_runs), abs=1e-3)
    assert cell["exact_per_seed_sd"] == pytest.approx(np.std(exact_runs, ddof=1), abs=1e-3)
    assert cell["within_noise"] == (-cell["mean_difference"] <= cell["exact_per_seed_sd"])


def test_the_command_reads_a_headerless_csv_with_columns(tmp_path):
    import csv

    path = tmp_path / "pairs.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(_rows())
    base = ["bench", "rewrite-budget", str(path), "--strategies", "random,shortest", "--budgets", "0.3",
            "--seeds", "1"]
    refused = CliRunner().invoke(app, base)
    assert isinstance(refused.exception, InputError), refused.output
    assert "if the file has no header line, name its columns with --columns" in " ".join(str(refused.exception).split())
    result = CliRunner().invoke(app, [*base, "--columns", "prompt,completion", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rows"] == 40  # every row, the first one too


def test_the_command_reads_a_windows_encoded_file_with_encoding(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [(p, c.replace("first", "première")) for p, c in _rows()]
    path.write_bytes("".join(json.dumps({"prompt": p, "completion": c}, ensure_ascii=False) + "\n"
                             for p, c in rows).encode("cp1252"))
    base = ["bench", "rewrite-budget", str(path), "--strategies", "random,shortest", "--budgets", "0.3",
            "--seeds", "1"]
    refused = CliRunner().invoke(app, base)
    assert isinstance(refused.exception, InputError) and "--encoding cp1252" in str(refused.exception)
    result = CliRunner().invoke(app, [*base, "--encoding", "cp1252", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == 40


def test_chat_rows_are_split_at_their_last_answer(tmp_path):
    """TRL's conversational SFT layouts (``messages``, or prompt/completion as message lists) give the same pool as
    plain prompt-completion rows; a system turn joins the prompt."""
    from curate.bench.rewrite_budget import load_pairs

    rows = _rows()
    plain, chats, pc = tmp_path / "plain.jsonl", tmp_path / "chats.jsonl", tmp_path / "pc.jsonl"
    plain.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in rows))
    chats.write_text("".join(json.dumps({"messages": [{"role": "user", "content": p},
                                                      {"role": "assistant", "content": c}]}) + "\n"
                             for p, c in rows))
    pc.write_text("".join(json.dumps({"prompt": [{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": p}],
                                      "completion": [{"role": "assistant", "content": c}]}) + "\n" for p, c in rows))
    assert load_pairs(chats) == load_pairs(plain) == rows
    assert load_pairs(pc) == [(f"Be brief.\n\n{p}", c) for p, c in rows]
    result = CliRunner().invoke(app, ["bench", "rewrite-budget", str(chats), "--strategies", "random,shortest",
                                      "--budgets", "0.3", "--seeds", "1", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == 40


def test_a_mapped_column_the_file_lacks_is_named_with_the_closest(tmp_path):
    from curate.bench.rewrite_budget import load_pairs

    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": p, "answer": c}) + "\n" for p, c in _rows()))
    with pytest.raises(InputError, match=r"column 'questoin' \(from --map prompt=questoin\) is not in .*Did you mean"):
        load_pairs(path, {"prompt": "questoin", "completion": "answer"})
    assert len(load_pairs(path, {"prompt": "question", "completion": "answer"})) == 40


def test_rows_that_give_no_pair_are_counted_with_their_reasons(tmp_path):
    """Dolly rows with an empty response are skipped, counted and printed; an unmapped file's error names why
    every row failed and the file's columns; OpenAssistant's ``prompter`` role reads as ``user``."""
    from curate.bench.rewrite_budget import load_pairs

    rows = _rows()
    dolly = tmp_path / "dolly.jsonl"
    dolly.write_text("".join(json.dumps({"instruction": p, "context": "", "response": "" if i % 4 == 0 else c,
                                         "category": "open_qa"}) + "\n" for i, (p, c) in enumerate(rows)))
    pairs = load_pairs(dolly)
    assert len(pairs) == 30 and pairs.read == 40
    assert pairs.skipped == {"empty completion": 10} and pairs.skipped_lines["empty completion"] == [1, 5, 9, 13, 17]
    result = CliRunner().invoke(app, ["bench", "rewrite-budget", str(dolly), "--strategies", "random,shortest",
                                      "--budgets", "0.3", "--seeds", "1", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "10 of 40 rows skipped: 10 x empty completion (lines 1, 5, 9, 13, 17, ...)" in said
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rows"] == 30 and report["data"]["skipped"] == {"empty completion": 10}
    qa = tmp_path / "qa.csv"
    qa.write_text("id,question,answer\n" + "".join(f"{i},{p},{c.replace(',', ';')}\n" for i, (p, c) in enumerate(rows)))
    with pytest.raises(InputError) as refused:
        load_pairs(qa)
    said = " ".join(str(refused.value).split())
    assert "0 prompt-completion rows (40 of 40 rows skipped: 40 x row has fields ['answer', 'id', 'question']" in said
    assert "the file's columns: id, question, answer" in said
    oasst = tmp_path / "oasst.jsonl"
    oasst.write_text("".join(json.dumps({"messages": [{"role": "prompter", "content": p},
                                                      {"role": "Assistant", "content": c}]}) + "\n" for p, c in rows))
    assert load_pairs(oasst) == rows


def test_zero_seeds_and_budgets_outside_the_pool_are_refused(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in _rows()))
    base = ["bench", "rewrite-budget", str(path), "--strategies", "random,shortest"]
    zero = CliRunner().invoke(app, [*base, "--seeds", "0"])
    assert isinstance(zero.exception, InputError) and "--seeds must be at least 1" in str(zero.exception)
    outside = CliRunner().invoke(app, [*base, "--budgets", "0,0.2,1.5"])
    assert isinstance(outside.exception, InputError)
    assert "each above 0 and at most 1 (e.g. 0.05,0.1,0.2); got 0, 1.5" in str(outside.exception)


def test_draft_damage_answers_the_prompt_with_a_language_model(tmp_path):
    import torch

    from curate.bench.rewrite_drafts import lm_drafts
    from tests.tiny_lm import build_tiny_lm

    torch.set_num_threads(1)
    rows = _rows()
    writer = lm_drafts(tmp_path, lm=str(build_tiny_lm(tmp_path / "lm")), max_new_tokens=12)
    asked: list[list[str]] = []

    def draft(prompts: list[str]) -> list[str]:
        asked.append(prompts)
        return writer(prompts)

    kinds = ("swapped", "truncated", "generic", "draft")
    pool = damage_pool(rows, share=0.5, rng=np.random.default_rng(3), kinds=kinds, draft=draft)
    drafted = [i for i, d in enumerate(pool.damage) if d == "draft"]
    assert len(asked) == 1 and drafted  # one call for every draft row of the pool
    assert sorted(asked[0]) == sorted(pool.prompts[i] for i in drafted)
    for i in drafted:  # the model's text, not the clean answer, and the clean one kept as the rewrite
        assert pool.completions[i] and pool.completions[i] != pool.clean[i]
    assert pool.damaged.sum() == 20
    cached = list((tmp_path / "rewrite_drafts").glob("*.jsonl"))
    assert len(cached) == 1 and cached[0].read_text().count("\n") >= 1  # finished batches kept for the rerun
    again = damage_pool(rows, share=0.5, rng=np.random.default_rng(3), kinds=kinds, draft=writer)
    assert again.completions == pool.completions  # greedy drafts, read back from the cache
    # sampled drafts: other text than greedy, the same text on a rerun without the cache
    prompts = [p for p, _ in rows[:4]]
    sampled = lm_drafts(tmp_path / "a", lm=str(tmp_path / "lm"), max_new_tokens=12, temperature=1.0)(prompts)
    assert sampled == lm_drafts(tmp_path / "b", lm=str(tmp_path / "lm"), max_new_tokens=12, temperature=1.0)(prompts)
    assert sampled != writer(prompts) and (tmp_path / "a" / "rewrite_drafts" / "lm-12-t1.jsonl").exists()
    # an empty draft, or one equal to the clean answer, is no damage: a generic non-answer stands in
    empty = damage_pool(rows, share=0.5, rng=np.random.default_rng(3), kinds=("draft",), draft=lambda p: [""] * len(p))
    assert set(empty.damage) == {None, "generic"} and empty.damaged.sum() == 20


def test_draft_damage_errors_say_what_to_do(tmp_path):
    rows = _rows()
    with pytest.raises(InputError, match="needs a language model"):
        damage_pool(rows, share=0.3, rng=np.random.default_rng(0), kinds=("draft",))
    with pytest.raises(InputError, match="unknown damage kind"):
        damage_pool(rows, share=0.3, rng=np.random.default_rng(0), kinds=("typo",))
    with pytest.raises(InputError, match="returned 1 drafts"):
        damage_pool(rows, share=0.3, rng=np.random.default_rng(0), kinds=("draft",), draft=lambda p: ["x"])
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in rows), encoding="utf-8")
    result = CliRunner().invoke(app, ["bench", "rewrite-budget", str(path), "--strategies", "random,shortest",
                                      "--damage-kinds", "swapped,draft", "--lora"])
    assert isinstance(result.exception, InputError) and "applies to the recall figures only" in str(result.exception)


def test_the_command_drafts_with_the_language_model_it_is_given(tmp_path, monkeypatch):
    import torch

    from tests.tiny_lm import build_tiny_lm

    torch.set_num_threads(1)
    lm = build_tiny_lm(tmp_path / "lm")
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in _rows()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the drafts are cached under ./.bench-cache
    result = CliRunner().invoke(app, ["bench", "rewrite-budget", str(path), "--strategies", "random,shortest",
                                      "--budgets", "0.3", "--seeds", "1", "--damage-kinds",
                                      "swapped,truncated,generic,draft", "--draft-lm", str(lm), "--draft-tokens", "8",
                                      "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["damage_kinds"] == ["swapped", "truncated", "generic", "draft"]
    assert report["pools"][0]["by_kind"]["draft"] > 0 and sum(report["pools"][0]["by_kind"].values()) == 12
    assert "draft" in report["per_seed"]["shortest"][0][0]["recall_by_kind"]
    assert list((tmp_path / ".bench-cache" / "rewrite_drafts").glob("lm-8.jsonl"))
