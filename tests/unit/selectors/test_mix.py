from __future__ import annotations

import numpy as np
import pytest

from curate.errors import InputError
from curate.selectors import (
    KCenterGreedy,
    NoNearDuplicates,
    Quota,
    RandomMix,
    TaggedSelection,
    TopK,
    near_duplicate_pairs,
    select_tagged,
)

RNG = np.random.default_rng


@pytest.mark.parametrize(("k", "fraction", "expected"), [(20, 0.1, 2), (25, 0.1, 3), (10, 0.0, 0), (7, 1.0, 7),
                                                         (30, 0.25, 8)])
def test_random_mix_draws_round_half_up_fraction_of_k_at_random(k: int, fraction: float, expected: int) -> None:
    scores = RNG(0).random(200)
    tagged = RandomMix(TopK(), fraction=fraction).select_tagged(scores, k, rng=RNG(1))
    assert tagged.counts().get("random", 0) == expected
    assert tagged.counts().get("strategy", 0) == k - expected
    strategy = tagged.with_origin("strategy")
    np.testing.assert_array_equal(strategy, TopK().select(scores, k - expected, rng=RNG(0)))  # base picks first
    assert not set(tagged.with_origin("random").tolist()) & set(strategy.tolist())
    assert len(tagged) == k


def test_random_picks_are_uniform_over_the_rest_of_the_pool() -> None:
    scores = np.arange(50, dtype=float)
    counts = np.zeros(50)
    for s in range(2000):
        counts[RandomMix(TopK(), fraction=0.5).select_tagged(scores, 2, rng=RNG(s)).with_origin("random")] += 1
    assert counts[49] == 0  # the top score is the strategy's pick
    rest = counts[:49] / 2000
    np.testing.assert_allclose(rest, 1 / 49, atol=0.012)


def test_select_returns_the_tagged_indices_only() -> None:
    scores = RNG(0).random(30)
    mix = RandomMix(TopK(), fraction=0.3)
    out = mix.select(scores, 10, rng=RNG(4))
    np.testing.assert_array_equal(out, mix.select_tagged(scores, 10, rng=RNG(4)).indices)
    assert isinstance(out, np.ndarray) and out.dtype == np.intp


def test_quota_gives_a_rare_class_its_minimum() -> None:
    rng = RNG(0)
    groups = np.array(["common"] * 195 + ["rare"] * 5)
    scores = np.concatenate([rng.uniform(0.5, 1.0, 195), rng.uniform(0.0, 0.1, 5)])  # rare ones score low
    tagged = Quota(TopK(), minimum=3).select_tagged(scores, 20, rng=RNG(0), groups=groups)
    assert len(tagged) == 20
    assert (groups[tagged.indices] == "rare").sum() == 3
    assert tagged.counts() == {"quota:rare": 3, "strategy": 17}
    rare = tagged.with_origin("quota:rare")
    assert sorted(rare.tolist()) == sorted(np.argsort(-scores[195:])[:3] + 195)  # the best rare ones
    np.testing.assert_array_equal(tagged.with_origin("strategy"), TopK().select(scores, 17, rng=RNG(0)))


def test_quota_keeps_strategy_picks_that_already_meet_the_minimum() -> None:
    groups = np.array(["a", "b"] * 10)
    scores = np.linspace(1, 0, 20)  # the strategy alternates groups on its own
    tagged = Quota(TopK(), minimum=2).select_tagged(scores, 6, rng=RNG(0), groups=groups)
    assert tagged.counts() == {"strategy": 6}


def test_proportional_quota_mirrors_the_pool() -> None:
    groups = np.array(["a"] * 60 + ["b"] * 30 + ["c"] * 10)
    scores = np.concatenate([np.full(60, 0.9), np.full(30, 0.5), np.full(10, 0.1)])
    tagged = Quota(TopK(), minimum=0, proportional=True).select_tagged(scores, 10, rng=RNG(0), groups=groups)
    picked = groups[tagged.indices]
    assert [(picked == g).sum() for g in "abc"] == [6, 3, 1]
    assert tagged.counts() == {"quota:b": 3, "quota:c": 1, "strategy": 6}


def test_proportional_quota_still_honours_the_minimum() -> None:
    groups = np.array(["a"] * 98 + ["b"] * 2)
    scores = np.concatenate([np.full(98, 0.9), np.full(2, 0.1)])
    tagged = Quota(TopK(), minimum=2, proportional=True).select_tagged(scores, 10, rng=RNG(0), groups=groups)
    picked = groups[tagged.indices]
    assert (picked == "b").sum() == 2 and (picked == "a").sum() == 8


def test_minimums_that_do_not_fit_go_to_the_rarest_groups() -> None:
    groups = np.array(["big"] * 50 + ["mid"] * 10 + ["tiny"] * 3)
    scores = np.concatenate([np.full(50, 1.0), np.zeros(13)])
    tagged = Quota(TopK(), minimum=5).select_tagged(scores, 4, rng=RNG(0), groups=groups)
    picked = groups[tagged.indices]
    assert sorted(picked.tolist()) == ["big", "mid", "tiny", "tiny"]


def test_quota_without_groups_is_the_base_selector() -> None:
    scores = RNG(0).random(40)
    np.testing.assert_array_equal(Quota(TopK()).select(scores, 5, rng=RNG(0)), TopK().select(scores, 5, rng=RNG(0)))


def test_quota_checks_the_groups_length() -> None:
    with pytest.raises(InputError, match=r"one label per score, shape \(4,\)"):
        Quota(TopK()).select(np.ones(4), 2, rng=RNG(0), groups=["a", "b"])


def test_no_near_duplicates_replaces_a_near_copy_with_the_next_pick() -> None:
    e = np.array([[1.0, 0.0], [1.0, 0.001], [0.0, 1.0], [-1.0, 0.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    tagged = NoNearDuplicates(TopK()).select_tagged(scores, 3, embeddings=e, rng=RNG(0))
    assert tagged.indices.tolist() == [0, 2, 3]
    assert tagged.counts() == {"strategy": 3}


def test_no_near_duplicates_fills_when_the_pool_is_all_copies() -> None:
    e = np.ones((5, 3))
    tagged = NoNearDuplicates(TopK()).select_tagged(np.arange(5.0), 3, embeddings=e, rng=RNG(0))
    assert tagged.indices.tolist() == [4, 3, 2]
    assert tagged.origin.tolist() == ["strategy", "fill", "fill"]


def test_no_near_duplicates_with_a_real_pool() -> None:
    rng = RNG(2)
    base = rng.normal(size=(40, 16))
    e = np.vstack([base, base * 1.01, base + 0.001])
    scores = rng.random(120)
    out = NoNearDuplicates(TopK(), threshold=0.95).select(scores, 30, embeddings=e, rng=RNG(0))
    assert len(out) == 30
    assert near_duplicate_pairs(e, out, threshold=0.95).shape == (0, 2)


def test_no_near_duplicates_without_embeddings_is_the_base() -> None:
    scores = RNG(0).random(10)
    np.testing.assert_array_equal(NoNearDuplicates(TopK()).select(scores, 4, rng=RNG(0)), np.argsort(-scores)[:4])


def test_wrappers_compose_and_tags_survive() -> None:
    rng = RNG(5)
    n = 300
    e = rng.normal(size=(n, 8)).astype(np.float32)
    groups = np.where(np.arange(n) < 6, "rare", "common")
    scores = rng.random(n)
    scores[:6] *= 0.01
    selector = RandomMix(Quota(NoNearDuplicates(KCenterGreedy()), minimum=2), fraction=0.1)
    tagged = selector.select_tagged(scores, 30, embeddings=e, rng=RNG(0), groups=groups)
    assert len(tagged) == 30 and len(set(tagged.indices.tolist())) == 30
    counts = tagged.counts()
    assert counts["random"] == 3
    assert (groups[tagged.indices[tagged.origin != "random"]] == "rare").sum() >= 2


def test_select_tagged_tags_plain_selectors_as_strategy() -> None:
    tagged = select_tagged(TopK(), np.array([0.1, 0.5, 0.3]), 2, rng=RNG(0))
    assert tagged.indices.tolist() == [1, 2]
    assert tagged.origin.tolist() == ["strategy", "strategy"]


def test_tagged_selection_checks_lengths() -> None:
    with pytest.raises(InputError, match="indices and origin"):
        TaggedSelection(np.array([1, 2]), np.array(["strategy"]))
    both = TaggedSelection.concat([TaggedSelection.uniform([3], "random"), TaggedSelection.uniform([1], "fill")])
    assert both.indices.tolist() == [3, 1] and both.counts() == {"fill": 1, "random": 1}


def test_fraction_must_be_a_share() -> None:
    with pytest.raises(InputError, match=r"fraction must be a number in \[0, 1\]"):
        RandomMix(TopK(), fraction=1.5)
