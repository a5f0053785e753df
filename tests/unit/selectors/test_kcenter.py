from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from curate.errors import InputError
from curate.selectors import KCenterGreedy, greedy_k_center

RNG = np.random.default_rng


def naive_k_center(x: np.ndarray, k: int, first: int) -> list[int]:
    """Reference: the full pairwise distance matrix in float64."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    picks = [first]
    nearest = d[first].copy()
    while len(picks) < k:
        nearest[picks] = -1
        i = int(np.argmax(nearest))
        picks.append(i)
        nearest = np.minimum(nearest, d[i])
    return picks


def test_points_on_a_line_pick_the_farthest_point_next() -> None:
    x = np.array([[0.0], [1.0], [3.0], [10.0]])
    scores = np.array([0.9, 0.1, 0.1, 0.1])  # the first centre is the best score: x = 0
    out = greedy_k_center(x, 4, rng=RNG(0), scores=scores)
    assert out.tolist() == [0, 3, 2, 1]  # 10 is farthest from 0; then 3 (3 from 0, 7 from 10); then 1


def test_first_centre_is_the_highest_score() -> None:
    x = RNG(0).normal(size=(30, 4))
    scores = RNG(1).random(30)
    assert greedy_k_center(x, 1, rng=RNG(0), scores=scores).tolist() == [int(np.argmax(scores))]


def test_already_selected_points_seed_the_distances_and_are_never_returned() -> None:
    x = np.array([[0.0], [1.0], [3.0], [10.0], [6.0]])
    scores = np.array([np.nan, 0.5, 0.9, 0.1, 0.2])  # row 0 is labelled (NaN score)
    out = KCenterGreedy().select(scores, 2, embeddings=x, rng=RNG(0), already_selected=np.array([0]))
    assert out.tolist() == [3, 4]  # 10 is farthest from the labelled 0; then 6 (4 from 10, 6 from 0)


def test_cosine_metric_ignores_length() -> None:
    x = np.array([[1.0, 0.0], [100.0, 1.0], [0.0, 1.0], [0.7, 0.7]])
    out = greedy_k_center(x, 3, rng=RNG(0), scores=np.array([1.0, 0, 0, 0]), metric="cosine")
    assert out.tolist() == [0, 2, 3]  # row 1 points the same way as row 0, so it is the closest, not the farthest


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_pruning_gives_the_same_picks_as_a_plain_pass(metric: str) -> None:
    rng = RNG(7)
    centres = rng.normal(size=(20, 16)) * 6
    x = (centres[rng.integers(0, 20, 3000)] + rng.normal(size=(3000, 16))).astype(np.float32)
    scores = rng.random(3000)
    a = greedy_k_center(x, 150, rng=RNG(0), scores=scores, metric=metric, prune=True)
    b = greedy_k_center(x, 150, rng=RNG(0), scores=scores, metric=metric, prune=False)
    np.testing.assert_array_equal(a, b)


def test_matches_the_full_distance_matrix_reference() -> None:
    rng = RNG(11)
    x = rng.normal(size=(200, 5)) * np.array([10, 5, 3, 1, 1])
    scores = rng.random(200)
    out = greedy_k_center(x, 25, rng=RNG(0), scores=scores)
    assert out.tolist() == naive_k_center(x, 25, int(np.argmax(scores)))


def test_score_weight_prefers_high_scores_among_far_points() -> None:
    # Four points equally far from the first centre; with a score weight the best of them comes next.
    x = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [-5.0, 0.0], [0.0, -5.1]])
    scores = np.array([1.0, 0.2, 0.9, 0.3, 0.1])
    plain = greedy_k_center(x, 2, rng=RNG(0), scores=scores)
    weighted = greedy_k_center(x, 2, rng=RNG(0), scores=scores, score_weight=1.0)
    assert plain.tolist() == [0, 4]  # 5.1 away: pure coverage
    assert weighted.tolist() == [0, 2]  # 5.0 away and a much better score


def test_without_scores_the_first_centre_comes_from_rng() -> None:
    x = RNG(0).normal(size=(50, 3))
    a = greedy_k_center(x, 5, rng=RNG(3))
    assert a.tolist() == greedy_k_center(x, 5, rng=RNG(3)).tolist()
    firsts = {int(greedy_k_center(x, 1, rng=RNG(s))[0]) for s in range(20)}
    assert len(firsts) > 5


def test_duplicate_points_are_still_distinct_picks() -> None:
    x = np.zeros((6, 3))
    out = greedy_k_center(x, 6, rng=RNG(0), scores=np.arange(6.0))
    assert sorted(out.tolist()) == list(range(6))
    assert out[0] == 5


def test_never_builds_an_n_by_n_matrix() -> None:
    n = 20_000
    x = RNG(0).normal(size=(n, 32)).astype(np.float32)
    scores = RNG(1).random(n)
    tracemalloc.start()
    greedy_k_center(x, 50, rng=RNG(0), scores=scores)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_by_n = n * n * 4 / 2**30
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB; an n x n float32 matrix would be {n_by_n:.1f} GiB"


def test_input_errors_name_the_problem() -> None:
    x = np.zeros((4, 2))
    with pytest.raises(InputError, match="metric must be one of"):
        KCenterGreedy(metric="manhattan")
    with pytest.raises(InputError, match="already_selected must be row indices"):
        greedy_k_center(x, 2, rng=RNG(0), already_selected=np.array([7]))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match="row 2 holds NaN"):
        greedy_k_center(bad, 2, rng=RNG(0))
    with pytest.raises(InputError, match="score_weight"):
        KCenterGreedy(score_weight=-1.0)
