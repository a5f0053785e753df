from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from curate.selectors import ClusterPick, KCenterGreedy, NoNearDuplicates, Quota, RandomMix, TopK
from curate.selectors.allocation import largest_remainder, round_robin_minimums


def test_keys_list_only_non_default_parameters_and_nest_wrapped_selectors() -> None:
    assert KCenterGreedy().key() == "kcenter()"
    assert KCenterGreedy(metric="cosine").key() == "kcenter(metric=cosine)"
    assert ClusterPick(minibatch_threshold=500).key() == "cluster(minibatch_threshold=500)"
    assert RandomMix(TopK()).key() == "random_mix(base=topk())"
    assert RandomMix(KCenterGreedy(metric="cosine"), fraction=0.2).key() == \
        "random_mix(base=kcenter(metric=cosine),fraction=0.2)"
    assert Quota(NoNearDuplicates(TopK()), minimum=3).key() == \
        "quota(base=no_near_duplicates(base=topk()),minimum=3)"


def test_selectors_are_frozen_and_comparable() -> None:
    assert KCenterGreedy(metric="cosine") == KCenterGreedy(metric="cosine")
    assert RandomMix(TopK()) == RandomMix(TopK())


def test_largest_remainder_hand_computed() -> None:
    out = largest_remainder(np.array([5.0, 3.0, 2.0]), 7, np.array([10, 10, 10]))
    assert out.tolist() == [4, 2, 1]  # 3.5, 2.1, 1.4 -> 3, 2, 1 + the largest remainder (0.5) to the first


def test_largest_remainder_respects_caps() -> None:
    out = largest_remainder(np.array([90.0, 5.0, 5.0]), 10, np.array([2, 5, 5]))
    assert out.tolist() == [2, 4, 4]


@given(st.lists(st.integers(0, 50), min_size=1, max_size=8), st.integers(0, 200))
def test_largest_remainder_sums_to_total_within_caps(sizes: list[int], total: int) -> None:
    caps = np.asarray(sizes, dtype=np.int64)
    out = largest_remainder(caps.astype(np.float64), total, caps)
    assert out.sum() == min(total, caps.sum())
    assert (out <= caps).all() and (out >= 0).all()


def test_round_robin_minimums_serves_the_rarest_groups_first() -> None:
    sizes = np.array([100, 5, 10])
    assert round_robin_minimums(sizes, 3, 20).tolist() == [3, 3, 3]
    assert round_robin_minimums(sizes, 3, 5).tolist() == [1, 2, 2]
    assert round_robin_minimums(sizes, 3, 2).tolist() == [0, 1, 1]
