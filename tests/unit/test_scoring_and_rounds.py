"""Score cache and rounds on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
from sqlalchemy import select

from curate.ingest.sources import ingest
from curate.rounds.tasks import create_round, selected_record_ids
from curate.scorers.base import BaseScorer
from curate.scorers.cache import cache_key, score_records
from curate.store.audit import verify
from curate.store.schema import Round, Task


@dataclasses.dataclass(frozen=True)
class LengthScorer(BaseScorer):
    """Counts its calls; score = text length, NaN for texts containing 'nan'."""

    name: ClassVar[str] = "length"
    scale: float = 1.0
    calls: list = dataclasses.field(default_factory=list, compare=False)

    def score(self, records):
        self.calls.append(len(records))
        return np.array([math.nan if "nan" in r.fields["text"] else self.scale * len(r.fields["text"])
                         for r in records])


def _pool(workspace, tmp_path, n=12):
    (tmp_path / "t.jsonl").write_text("".join(f'{{"text": "{"x" * (i + 1)} item {i}"}}\n' for i in range(n)) +
                                      '{"text": "a nan text"}\n')
    ingest(workspace, tmp_path / "t.jsonl")
    return list(workspace.store.iter_records())


def test_rescoring_an_unchanged_pool_computes_nothing(workspace, tmp_path):
    records = _pool(workspace, tmp_path)
    scorer = LengthScorer()
    first, report = score_records(workspace.store, scorer, records, batch_size=5)
    assert report.computed == 13 and report.cached == 0 and scorer.calls == [5, 5, 3]
    assert report.nan == 1 and np.isnan(first[[r.fields["text"] == "a nan text" for r in records]]).all()
    second, report2 = score_records(workspace.store, scorer, records)
    assert report2.computed == 0 and report2.cached == 13 and scorer.calls == [5, 5, 3]
    np.testing.assert_array_equal(np.isnan(first), np.isnan(second))
    np.testing.assert_allclose(first[~np.isnan(first)], second[~np.isnan(second)])


def test_a_changed_parameter_scores_afresh_and_a_new_record_alone_is_computed(workspace, tmp_path):
    records = _pool(workspace, tmp_path)
    score_records(workspace.store, LengthScorer(), records[:10])
    _, report = score_records(workspace.store, LengthScorer(), records)
    assert (report.cached, report.computed) == (10, 3)
    scaled, report = score_records(workspace.store, LengthScorer(scale=2.0), records)
    assert report.computed == 13 and LengthScorer(scale=2.0).key() == "length(scale=2)"


def test_set_dependent_scorers_are_keyed_by_the_scored_set(workspace, tmp_path):
    @dataclasses.dataclass(frozen=True)
    class SetScorer(LengthScorer):
        set_dependent: ClassVar[bool] = True

    records = _pool(workspace, tmp_path)
    assert cache_key(SetScorer(), records) != cache_key(SetScorer(), records[:5])
    assert cache_key(SetScorer(), records) == cache_key(SetScorer(), list(reversed(records)))


def test_scoring_is_audited(workspace, tmp_path):
    records = _pool(workspace, tmp_path)
    score_records(workspace.store, LengthScorer(), records)
    report = verify(workspace.store)
    assert report.ok and report.n_events == 2


def test_create_round_stores_tasks_with_their_provenance(workspace, tmp_path):
    records = _pool(workspace, tmp_path)
    scores = np.arange(len(records), dtype=float)
    report = create_round(workspace.store, records, [5, 2, 9], scores=scores,
                          origins=["strategy", "strategy", "random"], strategy_key="length()+topk()",
                          model_version="smollm2")
    assert (report.number, report.tasks, report.by_origin) == (1, 3, {"strategy": 2, "random": 1})
    assert report.by_type == {"label": 3}
    with workspace.store.read() as conn:
        tasks = conn.execute(select(Task).order_by(Task.id)).all()
        rnd = conn.execute(select(Round)).one()
    assert [t.record_id for t in tasks] == [records[5].id, records[2].id, records[9].id]
    assert [t.random_mix for t in tasks] == [False, False, True]
    assert [t.acquisition_score for t in tasks] == [5.0, 2.0, 9.0]
    assert tasks[2].strategy_key == "length()+topk()|random"
    assert all(t.round_id == rnd.id and t.model_version_id is not None for t in tasks)
    assert selected_record_ids(workspace.store) == {records[i].id for i in (5, 2, 9)}
    second = create_round(workspace.store, records, [0], scores=scores, strategy_key="s", task_type="rewrite")
    assert second.number == 2 and second.by_type == {"rewrite": 1}
    assert verify(workspace.store).ok


def test_a_combination_is_scored_part_by_part_through_the_cache_with_moving_progress(workspace, tmp_path):
    """rewrite_need-like rank averages: each part is cached on its own (a rerun with the parts cached computes no
    part again) and progress moves through the parts instead of jumping from 0 to the end."""
    from curate.scorers.rewrite import RankAverageScorer, rank_average

    records = [r for r in _pool(workspace, tmp_path) if "nan" not in r.fields["text"]]
    short, scaled = LengthScorer(), LengthScorer(scale=-1.0)
    combo = RankAverageScorer(parts=(short, scaled))
    seen: list[tuple[int, int]] = []
    values, report = score_records(workspace.store, combo, records, batch_size=4,
                                   on_progress=lambda d, t: seen.append((d, t)))
    assert report.computed == 12
    expected = rank_average([np.array([len(r.fields["text"]) for r in records], dtype=float),
                             -np.array([len(r.fields["text"]) for r in records], dtype=float)])
    np.testing.assert_allclose(values, expected)
    assert short.calls == [4, 4, 4] and scaled.calls == [4, 4, 4]  # each part in batches, not all at once
    moving = [d / t for d, t in seen]
    assert len(set(moving)) >= 6 and moving == sorted(moving) and moving[-1] == 1.0
    _, part_report = score_records(workspace.store, LengthScorer(), records)
    assert part_report.cached == 12  # the part's scores were stored under its own key
