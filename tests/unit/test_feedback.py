"""Feedback scorer: candidates near overruled items score higher, others keep their score; the key tracks the set."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

from curate.errors import InputError
from curate.ingest.formats import row_to_record
from curate.scorers.base import BaseScorer
from curate.scorers.feedback import FeedbackScorer, overrule_rate
from tests.unit.test_loop import bow_encode

A_WORDS = "invoice charge refund payment card".split()
B_WORDS = "crash error freeze broken bug".split()


@dataclasses.dataclass(frozen=True)
class ConstantScorer(BaseScorer):
    name: ClassVar[str] = "constant"
    value: float = 2.0

    def score(self, records):
        return np.array([np.nan if "unscorable" in r.fields["text"] else self.value for r in records])


def texts(words, n, seed):
    rng = np.random.default_rng(seed)
    return [row_to_record({"text": " ".join(rng.choice(words, 4)) + f" {seed}-{i}"}, source="t", line=i + 1,
                          row_number=i + 1) for i in range(n)]


def test_overrule_rate_is_kernel_weighted_share_of_overruled_neighbours():
    ref = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    flags = np.array([1.0, 0.0, 1.0])
    rate = overrule_rate(np.array([[1.0, 0.05], [0.05, 1.0]]), ref, flags, k=1)
    np.testing.assert_allclose(rate, [1.0, 0.0])
    two = overrule_rate(np.array([[0.7, 0.7]]), ref, flags, k=3, bandwidth=1.0)
    assert 0.0 < two[0] < 1.0
    assert overrule_rate(np.zeros((3, 2)), np.zeros((0, 2)), np.zeros(0)).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(InputError, match="flags"):
        overrule_rate(np.ones((1, 2)), ref, flags[:2])


def test_feedback_raises_scores_near_overruled_items_and_leaves_others_unchanged():
    overruled_refs, confirmed_refs = texts(A_WORDS, 12, 1), texts(B_WORDS, 12, 2)
    refs = overruled_refs + confirmed_refs
    flags = [1.0] * 12 + [0.0] * 12
    near_a, near_b = texts(A_WORDS, 5, 3), texts(B_WORDS, 5, 4)
    base = ConstantScorer()
    scorer = FeedbackScorer.from_records(base, bow_encode, refs, flags, weight=1.0, k=5)
    scores = scorer.score(near_a + near_b)
    assert np.all(scores[:5] > 2.0) and np.all(scores[:5] <= 4.0)
    np.testing.assert_array_equal(scores[5:], np.full(5, 2.0))
    assert scorer.n_overruled == 12

    # NaN stays NaN; weight 0 changes nothing
    unscorable = row_to_record({"text": "unscorable invoice refund"}, source="t", line=1, row_number=1)
    assert np.isnan(scorer.score([unscorable])[0])
    off = FeedbackScorer.from_records(base, bow_encode, refs, flags, weight=0.0, k=5)
    np.testing.assert_array_equal(off.score(near_a), np.full(5, 2.0))
    # negative base scores move up too (score + weight * rate * |score|)
    negative = FeedbackScorer.from_records(ConstantScorer(value=-1.0), bow_encode, refs, flags, k=5)
    assert np.all(negative.score(near_a) > -1.0)


def test_feedback_key_follows_weight_and_overrule_set():
    refs = texts(A_WORDS, 6, 1) + texts(B_WORDS, 6, 2)
    flags = [1.0] * 6 + [0.0] * 6
    base = ConstantScorer()
    key = FeedbackScorer.from_records(base, bow_encode, refs, flags).key()
    assert key.startswith("feedback(weight=1,k=10,overrules=") and key.endswith("[constant()]")
    assert FeedbackScorer.from_records(base, bow_encode, list(reversed(refs)), flags[::-1]).key() == key
    changed = flags.copy()
    changed[-1] = 1.0
    assert FeedbackScorer.from_records(base, bow_encode, refs, changed).key() != key
    assert FeedbackScorer.from_records(base, bow_encode, refs[:-1], flags[:-1]).key() != key
    assert FeedbackScorer.from_records(base, bow_encode, refs, flags, weight=2.0).key() != key
    assert FeedbackScorer.from_records(ConstantScorer(value=3.0), bow_encode, refs, flags).key() != key


def test_overrules_come_from_suggestions_and_rewrites(workspace, tmp_path):
    from curate.annotate.answers import submit
    from curate.loop.evaluation import answered_tasks, overrules
    from tests.annotation_setup import seed

    seeded = seed(workspace, tmp_path)
    store = workspace.store
    submit(store, "ann", seeded.label[0], {"label": "bug"})  # suggestion was billing: overruled
    submit(store, "ann", seeded.label[1], {"label": "bug"})  # no suggestion: not counted
    submit(store, "ann", seeded.rewrite[0], {"accepted_as_is": True})
    submit(store, "ann", seeded.rewrite[1], {"completion": "Bonjour !", "accepted_as_is": False})
    answered = {a.task_id: a for a in answered_tasks(store)}
    found = overrules(list(answered.values()))
    rid = {tid: answered[tid].record_id for tid in answered}
    assert found == {rid[seeded.label[0]]: True, rid[seeded.rewrite[0]]: False, rid[seeded.rewrite[1]]: True}
