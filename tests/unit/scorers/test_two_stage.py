"""Two-stage scoring: a deterministic proxy, a key that follows its sample and features, and selection from exact
scores only (with a counting scorer, and with IFD on the tiny causal LM)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import ClassVar

import numpy as np
import orjson
import pytest
from sqlalchemy import select

from curate.errors import InputError
from curate.ingest.sources import ingest
from curate.runtime.embeddings import Embedder
from curate.scorers.base import BaseScorer
from curate.scorers.cache import cache_key, load_metadata
from curate.scorers.two_stage import Proxy, ProxySettings, proxy_key, two_stage_scores
from curate.store.schema import AuditEvent

WORDS = ["refund", "invoice", "crash", "login", "export", "praise", "slow", "password", "billing", "feature"]


@dataclasses.dataclass(frozen=True)
class KeywordScorer(BaseScorer):
    """Exact score = how many 'urgent' words a completion has, plus a little length; records every id it scored."""

    name: ClassVar[str] = "keywords"
    seen: list = dataclasses.field(default_factory=list, compare=False)

    def score(self, records):
        self.seen.extend(r.id for r in records)
        return np.array([sum(r.fields["completion"].count(w) for w in ("refund", "crash", "password"))
                         + 0.01 * len(r.fields["completion"]) for r in records], dtype=np.float64)


def _pool(workspace, tmp_path, n=400, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"prompt": f"Ticket {i}: what happened?",
             "completion": " ".join(rng.choice(WORDS, size=int(rng.integers(3, 15))))} for i in range(n)]
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest(workspace, tmp_path / "pool.jsonl")
    return list(workspace.store.iter_records())


def test_the_proxy_is_deterministic_and_learns_the_exact_ranking(workspace, tmp_path):
    records = _pool(workspace, tmp_path)
    exact = KeywordScorer().score(records)
    first = Proxy().fit(records[:300], exact[:300]).predict(records[300:])
    again = Proxy().fit(records[:300], exact[:300]).predict(records[300:])
    np.testing.assert_array_equal(first, again)
    from scipy.stats import spearmanr

    assert spearmanr(first, exact[300:]).statistic > 0.8


def test_the_proxy_key_changes_with_its_sample_features_scorer_and_seed():
    base = proxy_key("ifd", ["a", "b", "c"], ProxySettings(), 0)
    assert base == proxy_key("ifd", ["c", "a", "b"], ProxySettings(), 0)  # the set, not its order
    assert base != proxy_key("ifd", ["a", "b", "d"], ProxySettings(), 0)
    assert base != proxy_key("ifd", ["a", "b", "c"], ProxySettings(n_features=2**16), 0)
    assert base != proxy_key("ifd", ["a", "b", "c"], ProxySettings(ngrams=(1, 1)), 0)
    assert base != proxy_key("perplexity", ["a", "b", "c"], ProxySettings(), 0)
    assert base != proxy_key("ifd", ["a", "b", "c"], ProxySettings(), 1)
    assert base != proxy_key("ifd", ["a", "b", "c"], ProxySettings(embedder="minilm"), 0)
    assert "+cos-minilm" in ProxySettings(embedder="minilm").describe()


TOPICS = {"billing": "invoice charge refund payment fee".split(),
          "login": "password account signin reset code".split(),
          "shipping": "parcel courier tracking delivery box".split(),
          "crash": "freeze error exception bug stack".split()}


def topic_encode(texts):
    """A 4-topic embedding: the topic's name or any of its words counts for it (what a sentence embedder sees and a
    bag of words does not: that 'billing' and 'invoice' are about the same thing)."""
    out = np.full((len(texts), len(TOPICS)), 0.05)
    for i, text in enumerate(texts):
        for j, (name, words) in enumerate(TOPICS.items()):
            out[i, j] += sum(text.count(w) for w in [name, *words])
    return out


def _swapped_pool(n=400, seed=0):
    """Prompts name a topic, answers use its words; a third of answers belong to another topic (score 1, as IFD is
    high for an answer the prompt does not help with), the rest 0 plus a little noise."""
    from curate.ingest.records import Record

    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    records, exact = [], []
    for i in range(n):
        topic = names[i % 4]
        swapped = rng.random() < 0.33
        answer_topic = names[(i + 1 + int(rng.integers(3))) % 4] if swapped else topic
        answer = " ".join(rng.choice(TOPICS[answer_topic], size=int(rng.integers(4, 9))))
        records.append(Record(id=f"r{i}", kind="example", fields={"prompt": f"A question about {topic}, case {i}",
                                                                  "completion": answer}))
        exact.append(float(swapped) + 0.1 * rng.random())
    return records, np.array(exact)


def test_the_embedding_cosine_lets_the_proxy_see_an_answer_to_another_question():
    from sklearn.metrics import roc_auc_score

    from curate.scorers.proxy import relevance

    records, exact = _swapped_pool()
    cosine = relevance(records, topic_encode)
    assert cosine.shape == (400,) and np.all(cosine[exact < 1] > 0.9) and np.all(cosine[exact >= 1] < 0.2)
    text = Proxy().fit(records[:300], exact[:300]).predict(records[300:])
    settings = ProxySettings(embedder="topics")
    both = Proxy(settings).fit(records[:300], exact[:300], cosine[:300]).predict(records[300:], cosine[300:])
    swapped = exact[300:] >= 1
    auc = lambda predicted: roc_auc_score(swapped, predicted)  # noqa: E731
    assert auc(both) > 0.95 and auc(text) < 0.8
    with pytest.raises(ValueError, match="cosine"):
        Proxy(settings).fit(records[:300], exact[:300])


@dataclasses.dataclass(frozen=True)
class SwapScorer(BaseScorer):
    """Exact score of :func:`_swapped_pool`'s records, looked up by prompt."""

    name: ClassVar[str] = "swap"
    table: dict = dataclasses.field(default_factory=dict, compare=False)

    def score(self, records):
        return np.array([self.table[r.fields["prompt"]] for r in records], dtype=np.float64)


def test_two_stage_with_the_cosine_short_lists_what_the_text_proxy_misses(workspace, tmp_path):
    made, scores = _swapped_pool(seed=1)
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r.fields) + "\n" for r in made))
    ingest(workspace, tmp_path / "pool.jsonl")
    records = list(workspace.store.iter_records())
    table = {r.fields["prompt"]: float(v) for r, v in zip(made, scores, strict=True)}
    exact = np.array([table[r.fields["prompt"]] for r in records])
    scorer = SwapScorer(table=table)
    common = dict(shortlist=0.25, sample=120, check=0.0, seed=0)
    seen: list[tuple[str, int, int]] = []
    embed = Embedder("topics", encode=topic_encode).embed_texts
    with_cos, report = two_stage_scores(workspace.store, scorer, records, settings=ProxySettings(embedder="topics"),
                                        embed=embed, on_progress=lambda *a: seen.append(a), **common)
    text_only, plain = two_stage_scores(workspace.store, scorer, records, **common)
    swapped = exact >= 1
    found = lambda values: int((swapped & ~np.isnan(values)).sum())  # noqa: E731
    assert "+cos-topics" in report.proxy_features and "+cos" not in plain.proxy_features
    assert report.proxy_key != plain.proxy_key
    assert found(with_cos) >= found(text_only) + 15
    assert {stage for stage, _, _ in seen} == {"sample", "embed", "short list"}  # progress in every stage


def test_two_stage_scores_exactly_only_the_sample_the_shortlist_and_the_check_slice(workspace, tmp_path):
    records = _pool(workspace, tmp_path)
    scorer = KeywordScorer()
    values, report = two_stage_scores(workspace.store, scorer, records, shortlist=0.1, sample=100, check=0.02, seed=3)
    scored = ~np.isnan(values)
    assert report.exact_scored == int(scored.sum()) == len(set(scorer.seen))  # every exact score, computed once
    assert {r.id for r, s in zip(records, scored, strict=True) if s} == set(scorer.seen)
    assert 100 <= report.exact_scored <= 100 + 40 + 8 and report.shortlisted == 40 and report.checked == 8
    exact_ones = [r for r, s in zip(records, scored, strict=True) if s]
    np.testing.assert_allclose(values[scored], KeywordScorer().score(exact_ones))
    exact_all = KeywordScorer().score(records)
    top = set(np.argsort(-exact_all)[:20].tolist())
    assert len(top & set(np.flatnonzero(scored).tolist())) >= 16  # the proxy's short list holds the exact top 5%
    assert report.spearman_heldout > 0.7 and 0 <= report.recall_top5_heldout <= 1
    with workspace.store.read() as conn:
        event = conn.execute(select(AuditEvent.payload).where(AuditEvent.action == "score.two_stage")).scalar_one()
    assert orjson.loads(event)["proxy_key"] == report.proxy_key
    again, report2 = two_stage_scores(workspace.store, KeywordScorer(), records, shortlist=0.1, sample=100,
                                      check=0.02, seed=3)
    np.testing.assert_array_equal(np.isnan(again), np.isnan(values))  # same rng, same proxy, same short list
    assert report2.proxy_key == report.proxy_key
    _, other = two_stage_scores(workspace.store, KeywordScorer(), records, shortlist=0.1, sample=100, seed=4)
    assert other.proxy_key != report.proxy_key  # another sample
    kept = load_metadata(workspace.store, cache_key(scorer, records))["two_stage"]  # the latest run, with its figures
    assert kept["proxy_key"] == other.proxy_key and kept["spearman_heldout"] == other.spearman_heldout
    assert kept["recall_top5_heldout"] == other.recall_top5_heldout and kept["exact_scored"] == other.exact_scored


@dataclasses.dataclass(frozen=True)
class SlowKeywordScorer(KeywordScorer):
    """The keyword score at a known cost per record (what the time budget is measured from)."""

    name: ClassVar[str] = "slow_keywords"

    def score(self, records):
        time.sleep(0.01 * len(records))
        return super().score(records)


def test_a_time_budget_shrinks_the_short_list_to_what_the_measured_rate_allows(workspace, tmp_path):
    records = _pool(workspace, tmp_path, n=400)
    scorer = SlowKeywordScorer()
    values, report = two_stage_scores(workspace.store, scorer, records, shortlist=0.5, sample=50, check=0.05,
                                      seed=0, budget_seconds=1.5)
    assert report.budget_limited and report.exact_seconds_per_record is not None
    assert report.exact_seconds_per_record >= 0.01
    assert report.shortlisted < 200 and report.checked <= report.shortlisted  # far below the 50% asked
    assert report.exact_scored == int((~np.isnan(values)).sum()) <= 50 + 150
    assert report.seconds < 1.5 + 1.0  # the budget held (with room for the proxy on a busy machine)

    def slow_embed(texts):
        time.sleep(0.002 * len(texts))
        return topic_encode(texts)

    _, dropped = two_stage_scores(workspace.store, SlowKeywordScorer(), records, shortlist=0.5, sample=50, check=0.0,
                                  seed=2, budget_seconds=1.5, settings=ProxySettings(embedder="slow"),
                                  embed=Embedder("slow", encode=slow_embed).embed_texts)
    assert "+cos" not in dropped.proxy_features and dropped.budget_limited  # 700 texts cost 1.4 s: not worth it
    _, kept = two_stage_scores(workspace.store, SlowKeywordScorer(), records, shortlist=0.1, sample=50, check=0.0,
                               seed=2, budget_seconds=3600, settings=ProxySettings(embedder="slow"),
                               embed=Embedder("slow", encode=slow_embed).embed_texts)
    assert "+cos-slow" in kept.proxy_features and kept.embed_seconds >= 0.002 * 800
    _, free = two_stage_scores(workspace.store, SlowKeywordScorer(), records, shortlist=0.1, sample=50, check=0.0,
                               seed=1, budget_seconds=3600)
    assert not free.budget_limited and free.shortlisted == 40


def test_bad_settings_are_refused(workspace, tmp_path):
    records = _pool(workspace, tmp_path, n=50)
    with pytest.raises(InputError, match="shortlist"):
        two_stage_scores(workspace.store, KeywordScorer(), records, shortlist=0)
    with pytest.raises(InputError, match="at least 20"):
        two_stage_scores(workspace.store, KeywordScorer(), records, sample=5)

    @dataclasses.dataclass(frozen=True)
    class SetScorer(KeywordScorer):
        set_dependent: ClassVar[bool] = True

    with pytest.raises(InputError, match="depend on the scored set"):
        two_stage_scores(workspace.store, SetScorer(), records)


def test_two_stage_ifd_on_the_tiny_lm_selects_from_exact_scores_only(workspace, tmp_path, tiny_lm):
    from curate.scorers.perplexity import IFDScorer

    model, tok, _ = tiny_lm
    records = _pool(workspace, tmp_path, n=80)
    values, report = two_stage_scores(workspace.store, IFDScorer(lm=(model, tok)), records, shortlist=0.1,
                                      sample=30, check=0.05, seed=0)
    exact = ~np.isnan(values)
    assert report.exact_scored == int(exact.sum()) and report.sample == 30 and report.shortlisted == 8
    picked = np.argsort(-np.nan_to_num(values, nan=-np.inf))[:5]  # what a top-k selector takes
    assert exact[picked].all()
    direct = IFDScorer(lm=(model, tok)).score([records[i] for i in picked])
    np.testing.assert_allclose(values[picked], direct, rtol=1e-5)
    assert math.isfinite(report.spearman_heldout)


def _cli_workspace(tmp_path, seed):
    """A CLI runner, the app and a workspace of 200 ticket records (through `curate ingest`)."""
    from typer.testing import CliRunner

    from curate.cli.main import app

    rng = np.random.default_rng(seed)
    rows = [{"prompt": f"Ticket {i}", "completion": " ".join(rng.choice(WORDS, size=int(rng.integers(3, 15))))}
            for i in range(200)]
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(tmp_path / "pool.jsonl"), "-w", ws]).exit_code == 0
    return runner, app, ws


def test_curate_score_two_stage_prints_and_stores_the_proxy_figures(tmp_path):
    runner, app, ws = _cli_workspace(tmp_path, 1)
    result = runner.invoke(app, ["score", "--scorer", "tests.unit.scorers.test_two_stage:KeywordScorer", "--two-stage",
                                 "--shortlist", "0.1", "--proxy-sample", "60", "-w", ws,
                                 "--embedder", "tests.unit.scorers.test_two_stage:topic_encode",
                                 "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert "Spearman" in result.output and "short-listed" in result.output
    figures = json.loads((tmp_path / "s.json").read_text())
    assert figures["records"] == 200 and figures["sample"] == 60 and figures["shortlisted"] == 20
    assert figures["proxy_key"].startswith("proxy(") and len(figures["top"]) == 5
    assert figures["proxy_features"].endswith("+cos-tests.unit.scorers.test_two_stage:topic_encode/ridge1-rank")
    assert all(math.isfinite(t["score"]) for t in figures["top"])  # the top comes from exact scores only
    budget = runner.invoke(app, ["score", "--scorer", "tests.unit.scorers.test_two_stage:SlowKeywordScorer",
                                 "--two-stage", "--shortlist", "0.5", "--proxy-sample", "40", "--hours", "0.0003",
                                 "--no-proxy-embeddings", "-w", ws, "--json", str(tmp_path / "b.json")])
    assert budget.exit_code == 0, budget.output
    limited = json.loads((tmp_path / "b.json").read_text())
    assert "the time budget allows" in budget.output and limited["budget_limited"] is True
    assert limited["shortlisted"] < 100 and limited["budget_seconds"] == pytest.approx(1.08)
    assert "+cos" not in limited["proxy_features"]
    refused = runner.invoke(app, ["score", "--scorer", "tests.unit.scorers.test_two_stage:KeywordScorer",
                                  "--two-stage", "--shortlist", "2", "-w", ws])
    assert isinstance(refused.exception, InputError) and "--shortlist must be in (0, 1]" in str(refused.exception)


def test_select_after_two_stage_takes_only_exactly_scored_records_unless_asked(tmp_path):
    from curate.store.workspace import Workspace

    runner, app, ws = _cli_workspace(tmp_path, 2)
    scorer = "tests.unit.scorers.test_two_stage:KeywordScorer"
    scored = runner.invoke(app, ["score", "--scorer", scorer, "--two-stage", "--shortlist", "0.1", "--proxy-sample",
                                 "60", "--no-proxy-embeddings", "-w", ws, "--json", str(tmp_path / "s.json")])
    assert scored.exit_code == 0, scored.output
    exact_scored = json.loads((tmp_path / "s.json").read_text())["exact_scored"]

    def cached() -> dict[str, float]:
        from curate.scorers.cache import load_cached

        store = Workspace.open(ws).store
        return load_cached(store, KeywordScorer().key(), [r.id for r in store.iter_records()])

    assert len(cached()) == exact_scored < 100
    picked = runner.invoke(app, ["select", "--scorer", scorer, "--selector", "topk", "-k", "10", "--random-mix", "0",
                                 "--dedup", "1", "-w", ws, "--json", str(tmp_path / "r.json")])
    assert picked.exit_code == 0, picked.output
    assert f"selected from the {exact_scored} of 200 candidates scored exactly" in " ".join(picked.output.split())
    assert len(cached()) == exact_scored  # nothing else was scored
    store = Workspace.open(ws).store
    with store.read() as conn:
        from curate.store.schema import Task

        tasked = [row[0] for row in conn.execute(select(Task.record_id)).all()]
    assert len(tasked) == 10 and set(tasked) <= set(cached())
    assert "more than half" not in picked.output  # 10 of a 20-record short list
    wide = runner.invoke(app, ["select", "--scorer", scorer, "--selector", "topk", "-k", "12", "--random-mix", "0",
                               "--dedup", "1", "-w", ws])
    assert wide.exit_code == 0 and "-k 12 is more than half of the 20 short-listed" in " ".join(wide.output.split())
    rest = runner.invoke(app, ["select", "--scorer", scorer, "--selector", "topk", "-k", "200", "--random-mix", "0",
                               "--dedup", "1", "-w", ws])
    assert rest.exit_code == 0, rest.output  # every exactly scored record has a task now
    empty = runner.invoke(app, ["select", "--scorer", scorer, "-k", "5", "--dedup", "1", "-w", ws])
    assert isinstance(empty.exception, InputError) and "--score-all" in str(empty.exception)
    assert f"none of the {200 - exact_scored:,} candidates left" in str(empty.exception)
    again = runner.invoke(app, ["select", "--scorer", scorer, "--selector", "topk", "-k", "5", "--random-mix", "0",
                                "--dedup", "1", "--score-all", "-w", ws])
    assert again.exit_code == 0, again.output
    assert "scored exactly" not in again.output and len(cached()) == 200
