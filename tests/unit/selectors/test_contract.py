"""One contract suite for every selector: shape, dtype, determinism, empty pool, k > n, NaN, invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from curate.errors import InputError
from curate.selectors import (
    BADGE,
    DEITA,
    ClusterPick,
    EmptyPoolError,
    KCenterGreedy,
    NoNearDuplicates,
    PrefilterCentroid,
    Quota,
    RandomMix,
    Selector,
    TaggedSelector,
    TopK,
)

SELECTORS: list[Selector] = [
    TopK(),
    KCenterGreedy(),
    KCenterGreedy(metric="cosine", score_weight=1.0),
    ClusterPick(),
    ClusterPick(metric="cosine", minibatch_threshold=8),
    BADGE(),
    PrefilterCentroid(factor=2),
    DEITA(),
    DEITA(threshold=0.2),
    RandomMix(TopK()),
    RandomMix(KCenterGreedy(), fraction=0.3),
    Quota(TopK(), minimum=2),
    Quota(ClusterPick(), minimum=1, proportional=True),
    NoNearDuplicates(TopK(), threshold=0.5),
    RandomMix(Quota(NoNearDuplicates(KCenterGreedy(), threshold=0.8), minimum=2), fraction=0.2),
]
IDS = [s.key() for s in SELECTORS]


def groups_for(n: int) -> np.ndarray:
    """A rare group (every 7th record) and two common ones."""
    return np.where(np.arange(n) % 7 == 0, "rare", np.where(np.arange(n) % 2 == 0, "a", "b"))


def run(selector: Selector, scores: np.ndarray, k: int, embeddings: np.ndarray | None, seed: int,
        with_groups: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if with_groups and isinstance(selector, TaggedSelector):
        return selector.select_tagged(scores, k, embeddings=embeddings, rng=rng, groups=groups_for(len(scores))).indices
    return selector.select(scores, k, embeddings=embeddings, rng=rng)


def pool(n: int, seed: int = 0, d: int = 6, nan_every: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    if nan_every:
        scores[::nan_every] = np.nan
    return scores, rng.normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("selector", SELECTORS, ids=IDS)
def test_shape_and_dtype(selector: Selector) -> None:
    scores, emb = pool(40)
    out = run(selector, scores, 7, emb, 0)
    assert out.dtype == np.intp
    assert out.ndim == 1
    assert out.shape == (7,)
    assert len(set(out.tolist())) == 7


@pytest.mark.parametrize("selector", SELECTORS, ids=IDS)
@pytest.mark.parametrize("with_groups", [True, False])
def test_deterministic_under_fixed_seed(selector: Selector, with_groups: bool) -> None:
    scores, emb = pool(60, seed=3)
    a = run(selector, scores, 9, emb, 42, with_groups)
    b = run(selector, scores, 9, emb, 42, with_groups)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("selector", SELECTORS, ids=IDS)
def test_empty_pool_raises(selector: Selector) -> None:
    with pytest.raises(EmptyPoolError, match="empty"):
        selector.select(np.array([]), 3, embeddings=np.zeros((0, 4)), rng=np.random.default_rng(0))


@pytest.mark.parametrize("selector", SELECTORS, ids=IDS)
def test_k_larger_than_pool_returns_every_scorable_index(selector: Selector) -> None:
    scores, emb = pool(15, nan_every=4)
    out = run(selector, scores, 50, emb, 1)
    assert sorted(out.tolist()) == np.flatnonzero(~np.isnan(scores)).tolist()


@pytest.mark.parametrize("selector", SELECTORS, ids=IDS)
def test_nan_scores_are_never_selected(selector: Selector) -> None:
    scores, emb = pool(50, nan_every=3)
    for k in (1, 10, 30):
        out = run(selector, scores, k, emb, 2)
        assert not np.isnan(scores[out]).any()
        assert len(out) == min(k, int((~np.isnan(scores)).sum()))


@pytest.mark.parametrize("selector", SELECTORS, ids=IDS)
def test_bad_inputs_raise_input_errors_that_say_what_was_expected(selector: Selector) -> None:
    scores, emb = pool(10)
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="non-negative integer"):
        selector.select(scores, -1, embeddings=emb, rng=rng)
    with pytest.raises(InputError, match=r"shape \(n, d\)"):
        selector.select(scores, 2, embeddings=emb[:5], rng=rng)
    with pytest.raises(InputError, match="one-dimensional"):
        selector.select(scores.reshape(2, 5), 2, embeddings=emb, rng=rng)
    with pytest.raises(InputError, match="numpy.random.Generator"):
        selector.select(scores, 2, embeddings=emb, rng=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("selector", SELECTORS, ids=IDS)
def test_key_names_the_selector_and_is_stable(selector: Selector) -> None:
    assert selector.key().startswith(selector.name + "(")
    assert selector.key() == selector.key()
    assert isinstance(selector, Selector)


@pytest.mark.parametrize("selector", SELECTORS, ids=IDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 24),
    k=st.integers(0, 30),
    nan_mask=st.lists(st.booleans(), min_size=24, max_size=24),
    duplicates=st.booleans(),
    seed=st.integers(0, 2**16),
)
@example(n=1, k=0, nan_mask=[False] * 24, duplicates=False, seed=0)
@example(n=1, k=1, nan_mask=[False] * 24, duplicates=False, seed=0)
@example(n=5, k=3, nan_mask=[True] * 24, duplicates=False, seed=0)
@example(n=6, k=6, nan_mask=[False] * 24, duplicates=True, seed=1)
@example(n=24, k=30, nan_mask=[i % 2 == 0 for i in range(24)], duplicates=True, seed=2)
def test_at_most_k_unique_in_range_scorable_indices(selector: Selector, n: int, k: int, nan_mask: list[bool],
                                                    duplicates: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    scores[np.asarray(nan_mask[:n])] = np.nan
    emb = rng.normal(size=(n, 3)).astype(np.float32)
    if duplicates:
        emb[:] = emb[0]
        scores[~np.isnan(scores)] = 0.5
    out = run(selector, scores, k, emb, seed)
    assert out.dtype == np.intp
    assert len(out) <= k
    assert len(set(out.tolist())) == len(out)
    assert ((out >= 0) & (out < n)).all()
    assert not np.isnan(scores[out]).any()
    m = int((~np.isnan(scores)).sum())
    assert len(out) == min(k, m)
