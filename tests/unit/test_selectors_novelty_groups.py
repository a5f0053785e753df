"""group_coverage_pick / GroupCoverage: the least-covered group first, the best score within it."""

from __future__ import annotations

import numpy as np
import pytest

from curate.errors import InputError
from curate.selectors import RandomMix
from curate.selectors.novelty import GroupCoverage, group_coverage_pick


def test_covered_rows_count_for_their_group_and_scores_order_within():
    scores = np.array([np.nan, np.nan, 0.2, 0.9, 0.8, 0.1, 0.7])
    groups = np.array(["a", "a", "a", "b", "b", "c", "c"])
    # a is covered twice, b and c not: b's best (0.9), c's best (0.7), then b's second (0.8) before c's 0.1 (tie at
    # one each: the better score), then c's 0.1, then a's 0.2 (a stays at two until b and c reach two)
    assert group_coverage_pick(scores, groups, 10).tolist() == [3, 6, 4, 5, 2]
    assert group_coverage_pick(scores, groups, 2).tolist() == [3, 6]


def test_one_row_per_group_is_top_k_and_bad_shapes_are_refused():
    scores = np.array([0.3, np.nan, 0.9, 0.5])
    assert group_coverage_pick(scores, np.arange(4), 2).tolist() == [2, 3]
    with pytest.raises(InputError, match="shape"):
        group_coverage_pick(scores, np.arange(3), 2)


def test_group_coverage_selector_runs_under_random_mix():
    groups = np.repeat(np.arange(10), 5)
    scores = np.linspace(0.0, 1.0, 50)
    picks = RandomMix(GroupCoverage(groups), fraction=0.0).select(scores, 10, rng=np.random.default_rng(0))
    assert sorted(groups[picks].tolist()) == list(range(10))  # one per prompt, each its best-scoring row
    assert all(p % 5 == 4 for p in picks)
    assert GroupCoverage(groups).key() == "group_coverage()"
