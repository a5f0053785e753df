"""A round from the pool: strategy composition, origins on tasks, candidates shrinking round by round."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from curate.cli.main import app
from curate.errors import InputError
from curate.ingest.sources import ingest
from curate.rounds.selection import Strategy, candidates, group_of, run_round
from curate.runtime.catalog import BuildContext, build_scorer, build_selector
from curate.runtime.embeddings import Embedder
from curate.selectors import TopK
from curate.store.schema import Task
from tests.unit.test_embeddings import fake_encode
from tests.unit.test_scoring_and_rounds import LengthScorer


@pytest.fixture
def pool_ws(workspace, tmp_path):
    rows = [{"text": f"{'word ' * (i % 7 + 1)}number {i}", "team": "rare" if i < 3 else "common"} for i in range(40)]
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest(workspace, tmp_path / "pool.jsonl")
    return workspace


def test_run_round_tags_strategy_random_and_quota_picks(pool_ws):
    pool = candidates(pool_ws)
    strategy = Strategy(LengthScorer(), TopK(), random_mix=0.2, quota_field="meta.team", min_per_group=2,
                        dedup_threshold=None)
    report = run_round(pool_ws, strategy, 10, pool=pool, rng=np.random.default_rng(0),
                       embedder=Embedder("fake", encode=fake_encode))
    assert report.round.tasks == 10
    assert report.origins.get("random") == 2
    with pool_ws.store.read() as conn:
        tasks = conn.execute(select(Task)).all()
    by_id = {r.id: r for r in pool}
    teams = [by_id[t.record_id].meta["team"] for t in tasks]
    assert teams.count("rare") >= 2
    assert sum(t.random_mix for t in tasks) == 2
    assert all(t.strategy_key.startswith("length() + random_mix(") for t in tasks)
    # the strategy's own picks are the longest texts among non-random, non-quota picks
    strategy_picks = [t for t in tasks if not t.random_mix and "|quota" not in t.strategy_key]
    assert min(t.acquisition_score for t in strategy_picks) >= np.median([len(r.fields["text"]) for r in pool])


def test_selected_records_are_not_offered_again(pool_ws):
    strategy = Strategy(LengthScorer(), TopK(), random_mix=0.0, dedup_threshold=None)
    first = run_round(pool_ws, strategy, 15, pool=candidates(pool_ws), rng=np.random.default_rng(1))
    left = candidates(pool_ws)
    assert first.round.number == 1 and len(left) == 25
    second = run_round(pool_ws, strategy, 30, pool=left, rng=np.random.default_rng(1))
    assert second.round.number == 2 and second.round.tasks == 25
    with pytest.raises(InputError, match="no candidate records"):
        run_round(pool_ws, strategy, 5, pool=candidates(pool_ws), rng=np.random.default_rng(1))


def test_batch_near_duplicates_are_skipped(workspace, tmp_path):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in
                                              ["aaaa", "aaaa!", "cccc", "eeee", "aaaa?"]))
    ingest(workspace, tmp_path / "d.jsonl")
    strategy = Strategy(LengthScorer(), TopK(), random_mix=0.0, dedup_threshold=0.95)
    report = run_round(workspace, strategy, 3, pool=candidates(workspace), rng=np.random.default_rng(0),
                       embedder=Embedder("fake", encode=fake_encode))
    with workspace.store.read() as conn:
        ids = set(conn.scalars(select(Task.record_id)))
    texts = sorted(r.fields["text"] for r in workspace.store.iter_records() if r.id in ids)
    # "aaaa!" and "aaaa?" score highest but are near-copies of each other (and of "aaaa") under fake_encode
    assert report.round.tasks == 3 and sum(t.startswith("aaaa") for t in texts) == 1
    assert {"cccc", "eeee"} <= set(texts)


def test_group_of_reads_label_kind_and_meta():
    from curate.ingest.formats import row_to_record

    rec = row_to_record({"text": "x", "label": "billing", "lang": "de"})
    assert (group_of(rec, "label"), group_of(rec, "kind"), group_of(rec, "meta.lang")) == ("billing", "text", "de")
    assert group_of(rec, "meta.missing") == "(none)"
    with pytest.raises(InputError, match="quota field"):
        group_of(rec, "colour")


def test_catalog_names_and_errors(tmp_path):
    assert build_selector("topk").key() == "topk()"
    assert build_selector("kcenter").key() == "kcenter(metric=cosine)"
    with pytest.raises(InputError, match="unknown selector"):
        build_selector("best")
    with pytest.raises(InputError, match="unknown scorer"):
        build_scorer("magic", BuildContext(cache_dir=tmp_path))
    with pytest.raises(InputError, match="at least 2 classes"):
        build_scorer("margin", BuildContext(cache_dir=tmp_path))
    custom = build_scorer("tests.unit.test_scoring_and_rounds:LengthScorer", BuildContext(cache_dir=tmp_path))
    assert custom.key() == "length()"


def test_select_command_end_to_end_with_minilm(tmp_path, fixtures):
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(fixtures / "sft.jsonl"), str(fixtures / "alpaca.json"),
                               str(fixtures / "chat.jsonl"), "-w", ws]).exit_code == 0
    result = runner.invoke(app, ["select", "--scorer", "density", "--selector", "kcenter", "-k", "4",
                                 "--random-mix", "0.25", "-w", ws, "--json", str(tmp_path / "sel.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "sel.json").read_text())
    assert figures["tasks"] == 4 and figures["by_origin"] == {"strategy": 3, "random": 1}
    assert figures["by_type"] == {"rewrite": 4} and figures["candidates"] == 8
    again = runner.invoke(app, ["score", "--scorer", "density", "-w", ws, "--json", str(tmp_path / "s.json")])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "s.json").read_text())["records"] == 4  # the 4 selected are not candidates


def test_seed_command_rules_and_stratified(tmp_path, fixtures):
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"text": "I want a refund for my order", "team": "a"}, {"text": "refund the charge please", "team": "a"},
        {"text": "the app crashes on start", "team": "b"}, {"text": "crash when I upload", "team": "b"},
        {"text": "hello there", "team": "c"},
    ]))
    (tmp_path / "rules.toml").write_text('[billing]\nkeywords = ["refund"]\n[bug]\npatterns = ["crash(es)?"]\n')
    assert runner.invoke(app, ["ingest", str(tmp_path / "pool.jsonl"), "-w", ws]).exit_code == 0
    result = runner.invoke(app, ["seed", "--method", "rules", "--rules", str(tmp_path / "rules.toml"), "-k", "2",
                                 "-w", ws, "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "r.json").read_text())
    assert figures["by_origin"] == {"cold-start:rule:billing": 1, "cold-start:rule:bug": 1}
    assert figures["rule_matches"] == {"billing": 2, "bug": 2}
    by_label = runner.invoke(app, ["seed", "--method", "stratified", "--by", "label", "-k", "1", "-w", ws])
    assert isinstance(by_label.exception, InputError) and "meta.team" in str(by_label.exception)
    result = runner.invoke(app, ["seed", "--method", "stratified", "--by", "meta.team", "-k", "3", "-w", ws,
                                 "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s.json").read_text())["tasks"] == 3
    bad = runner.invoke(app, ["seed", "--method", "rules", "-w", ws])
    assert bad.exit_code != 0


def test_a_scorer_that_scores_no_candidate_makes_no_round(pool_ws):
    """shortest/relevance/rewrite_need judge prompt-completion pairs: on texts every score is NaN, and a round of
    arbitrary picks (or an empty one, on every retry) must not be made."""
    from curate.rounds.tasks import selected_record_ids
    from curate.scorers.rewrite import CompletionLengthScorer, RankAverageScorer

    pool = candidates(pool_ws)
    for scorer in (CompletionLengthScorer(), RankAverageScorer(parts=(CompletionLengthScorer(),
                                                                      CompletionLengthScorer("longest")))):
        with pytest.raises(InputError, match=r"could score none of the 40 candidates \(text records\)"):
            run_round(pool_ws, Strategy(scorer, TopK(), random_mix=0.0, dedup_threshold=None), 5, pool=pool,
                      rng=np.random.default_rng(0))
    assert not selected_record_ids(pool_ws.store)


def test_a_quota_field_no_candidate_has_is_refused_with_the_columns_there_are(pool_ws):
    pool = candidates(pool_ws)
    for field_name, why in (("label", "a text with a label is labelled already"), ("meta.teem", "")):
        strategy = Strategy(LengthScorer(), TopK(), random_mix=0.0, quota_field=field_name, min_per_group=2,
                            dedup_threshold=None)
        with pytest.raises(InputError, match=rf"none of the 40 candidates has a value.*{why}.*meta\.team"):
            run_round(pool_ws, strategy, 5, pool=pool, rng=np.random.default_rng(0))


def test_limit_takes_the_first_records_in_the_order_they_were_ingested(workspace, tmp_path):
    from curate.cli.options import restrict_pool

    for name, start in (("b.jsonl", 0), ("a.jsonl", 100)):  # b ingested first
        (tmp_path / name).write_text("".join(json.dumps({"text": f"row {i} of {name}"}) + "\n"
                                             for i in range(start, start + 5)))
        ingest(workspace, tmp_path / name)
    pool = candidates(workspace)
    first = restrict_pool(pool, limit=7, sample=None, seed=0, ws=workspace)
    assert [r.fields["text"] for r in first] == [f"row {i} of b.jsonl" for i in range(5)] + \
        ["row 100 of a.jsonl", "row 101 of a.jsonl"]
