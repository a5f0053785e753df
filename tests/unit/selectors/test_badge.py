from __future__ import annotations

import numpy as np
import pytest

from curate.selectors import BADGE, kmeanspp_select

RNG = np.random.default_rng


def test_first_pick_is_the_largest_gradient_norm() -> None:
    g = RNG(0).normal(size=(40, 6))
    g[17] *= 10
    assert kmeanspp_select(g, 1, rng=RNG(0)).tolist() == [17]


def test_second_pick_follows_the_d_squared_law() -> None:
    g = np.array([[3.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 2.0]])  # row 0 has the largest norm
    d2 = ((g - g[0]) ** 2).sum(1)
    expected = d2[1:] / d2[1:].sum()  # 9, 10, 13 over 32
    draws = np.array([kmeanspp_select(g, 2, rng=RNG(s))[1] for s in range(1500)])
    freq = np.bincount(draws, minlength=4)[1:] / draws.size
    np.testing.assert_allclose(freq, expected, atol=0.04)


def test_picks_are_distinct_even_when_only_duplicates_remain() -> None:
    g = np.ones((8, 3))
    g[0] = 2.0
    out = kmeanspp_select(g, 8, rng=RNG(0))
    assert sorted(out.tolist()) == list(range(8))


def test_a_far_away_gradient_is_drawn_right_after_the_first() -> None:
    rng = RNG(3)
    g = np.vstack([rng.normal(scale=0.01, size=(20, 4)) + 5.0, [[-30.0, 0.0, 0.0, 0.0]]])
    # the largest norm is row 20; the crowd near (5, 5, 5, 5) is far from it and tight, so row order after that
    # is: one crowd member (d^2 ~ 1,225 each, all of the mass), then crowd members with tiny d^2
    out = BADGE().select(np.zeros(21), 2, embeddings=g, rng=RNG(0))
    assert out[0] == 20 and out[1] < 20


def test_selector_respects_nan_scores_as_non_candidates() -> None:
    g = RNG(0).normal(size=(10, 3))
    g[4] *= 100
    scores = np.zeros(10)
    scores[4] = np.nan
    out = BADGE().select(scores, 3, embeddings=g, rng=RNG(0))
    assert 4 not in out.tolist()


def test_bad_candidates_are_rejected() -> None:
    from curate.errors import InputError

    with pytest.raises(InputError, match="candidates must be row indices"):
        kmeanspp_select(np.zeros((3, 2)), 1, rng=RNG(0), candidates=np.array([5]))
