from __future__ import annotations

import numpy as np
import pytest

from curate.errors import InputError
from curate.selectors import DEITA, near_duplicate_pairs, score_then_diversity, walk_diverse

RNG = np.random.default_rng


def test_skips_a_near_copy_of_a_better_record() -> None:
    e = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.99, 0.05, 0.0], [0.0, 0.0, 1.0]])
    scores = np.array([0.9, 0.5, 0.8, 0.1])
    out = DEITA().select(scores, 3, embeddings=e, rng=RNG(0))
    assert out.tolist() == [0, 1, 3]  # row 2 (cos 0.999 with row 0) is skipped despite its score


def test_threshold_is_a_parameter() -> None:
    e = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])  # cos(0, 1) = 0.8
    scores = np.array([3.0, 2.0, 1.0])
    assert score_then_diversity(scores, e, 2, threshold=0.9).tolist() == [0, 1]
    assert score_then_diversity(scores, e, 2, threshold=0.7).tolist() == [0, 2]


def test_fill_rule_tops_up_with_the_best_skipped_records_after_the_diverse_ones() -> None:
    e = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]])
    scores = np.array([0.5, 0.9, 0.7, 0.6, 0.1])
    out = score_then_diversity(scores, e, 4)
    assert out.tolist() == [1, 4, 2, 3]  # two diverse ones first, then the best near-copies


def test_walk_diverse_reports_what_it_skipped() -> None:
    e = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]])
    x = e.astype(np.float32)
    kept, skipped, walked = walk_diverse(x, np.array([0, 1, 2, 3]), 5, threshold=0.9)
    assert kept.tolist() == [0, 3]
    assert skipped.tolist() == [1, 2]
    assert walked == 4
    kept, _, _ = walk_diverse(x, np.array([3, 1]), 5, threshold=0.9, taken=np.array([0]))
    assert kept.tolist() == [3]


def test_no_near_duplicates_across_block_boundaries() -> None:
    rng = RNG(1)
    base = rng.normal(size=(60, 8))
    e = np.vstack([base, base + rng.normal(scale=0.01, size=base.shape)] * 5)  # 600 rows, many copies
    scores = rng.random(600)
    out = score_then_diversity(scores, e, 60, threshold=0.95)
    assert len(out) == 60
    assert near_duplicate_pairs(e, out, threshold=0.95).shape == (0, 2)


def test_zero_vectors_are_never_near_copies() -> None:
    e = np.zeros((3, 2))
    assert score_then_diversity(np.array([1.0, 2.0, 3.0]), e, 3).tolist() == [2, 1, 0]


def test_near_duplicate_pairs_finds_pairs() -> None:
    e = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01]])
    assert near_duplicate_pairs(e, np.array([0, 1, 2])).tolist() == [[0, 2]]


def test_threshold_must_be_a_cosine() -> None:
    with pytest.raises(InputError, match="threshold"):
        DEITA(threshold=1.5)
