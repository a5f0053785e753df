from __future__ import annotations

import numpy as np
import pytest

from curate.selectors import TopK, top_k


def test_top_k_hand_computed() -> None:
    scores = np.array([0.2, 0.9, np.nan, 0.5, 0.7])
    assert top_k(scores, 3).tolist() == [1, 4, 3]


def test_ties_go_to_the_lower_index_even_at_the_cut() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.5, 0.1])
    assert top_k(scores, 3).tolist() == [1, 0, 2]
    assert top_k(scores, 5).tolist() == [1, 0, 2, 3, 4]


def test_infinite_scores_are_ordinary_scores() -> None:
    scores = np.array([-np.inf, 1.0, np.inf, np.nan])
    assert top_k(scores, 4).tolist() == [2, 1, 0]


def test_zero_k_and_all_nan_give_nothing() -> None:
    assert top_k(np.array([1.0, 2.0]), 0).size == 0
    assert top_k(np.array([np.nan, np.nan]), 2).size == 0


def test_selector_matches_function_and_ignores_rng() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(1000)
    a = TopK().select(scores, 10, rng=np.random.default_rng(1))
    b = TopK().select(scores, 10, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.argsort(-scores)[:10])
    assert TopK().key() == "topk()"


@pytest.mark.parametrize("k", [1, 7, 99, 100])
def test_partition_path_agrees_with_a_full_sort(k: int) -> None:
    scores = np.round(np.random.default_rng(5).random(100), 1)  # many ties
    expected = np.lexsort((np.arange(100), -scores))[:k]
    np.testing.assert_array_equal(top_k(scores, k), expected)
