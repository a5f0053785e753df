"""Uncertainty formulas against hand-computed values, validation, NaN handling and range properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from curate.errors import InputError
from curate.scorers.uncertainty import (
    MARGIN_TIE_EPS,
    bald,
    bt_entropy,
    disagreement,
    entropy,
    kl_to_mean,
    least_confidence,
    margin,
    vote_entropy,
)

LN2 = math.log(2)


def h2(p: float) -> float:
    """Bernoulli entropy in nats, by hand."""
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


# ----------------------------------------------------------------------------------------------- hand cases


def test_least_confidence_hand_values():
    out = least_confidence([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]])
    assert out.dtype == np.float64 and out.shape == (2,)
    np.testing.assert_allclose(out, [0.5, 0.0])
    np.testing.assert_allclose(least_confidence([[0.25] * 4]), [0.75])


def test_margin_hand_value():
    assert margin([[0.5, 0.3, 0.2]], tie_break=False)[0] == pytest.approx(0.8, abs=1e-15)
    assert margin([[0.5, 0.3, 0.2]])[0] == pytest.approx(0.8, abs=1e-8)
    assert margin([[0.2, 0.5, 0.3]])[0] == pytest.approx(0.8, abs=1e-8)  # class order does not matter
    np.testing.assert_allclose(margin([[1.0, 0.0], [0.5, 0.5]], tie_break=False), [0.0, 1.0])


def test_margin_tie_break_is_deterministic_by_entropy():
    # Both rows have margin 0 between the top two (score 1.0); the first spreads its remaining mass.
    rows = np.array([[0.4, 0.4, 0.2], [0.5, 0.5, 0.0]])
    bare = margin(rows, tie_break=False)
    assert bare[0] == bare[1] == 1.0
    broken = margin(rows)
    assert broken[0] > broken[1]
    h = [-(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)), LN2]
    expected = [(1 - MARGIN_TIE_EPS) * 1.0 + MARGIN_TIE_EPS * hi / math.log(3) for hi in h]
    np.testing.assert_allclose(broken, expected, rtol=0, atol=1e-15)
    # Row order and class order do not change a row's score; repeated calls give identical bits.
    np.testing.assert_array_equal(margin(rows[::-1]), broken[::-1])
    np.testing.assert_array_equal(margin(rows[:, ::-1]), broken)
    np.testing.assert_array_equal(margin(rows), broken)
    # Rows equal in both keys score exactly the same.
    same = margin([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4]])
    assert same[0] == same[1]


def test_entropy_hand_values():
    np.testing.assert_allclose(entropy([[0.25] * 4]), [math.log(4)])
    np.testing.assert_allclose(entropy([[0.25] * 4], normalize=True), [1.0])
    np.testing.assert_allclose(entropy([[1.0, 0.0, 0.0]]), [0.0])
    np.testing.assert_allclose(entropy([[0.9, 0.1]]), [h2(0.9)])


def test_vote_entropy_from_votes_and_from_probs():
    votes = np.array([[0, 1], [0, 1], [1, 1]])  # item 0: votes (2, 1); item 1: unanimous
    expected = [-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)), 0.0]
    np.testing.assert_allclose(vote_entropy(votes), expected)
    np.testing.assert_allclose(vote_entropy(votes, n_classes=3), expected)
    probs = np.array([[[0.8, 0.2], [0.3, 0.7]],
                      [[0.6, 0.4], [0.1, 0.9]],
                      [[0.4, 0.6], [0.2, 0.8]]])
    np.testing.assert_allclose(vote_entropy(probs), expected)
    # argmax ties go to the lowest class index: both members vote class 0.
    assert vote_entropy(np.array([[[0.5, 0.5]], [[0.6, 0.4]]]))[0] == 0.0


def test_kl_to_mean_hand_values():
    same = np.array([[[0.7, 0.2, 0.1]], [[0.7, 0.2, 0.1]], [[0.7, 0.2, 0.1]]])
    np.testing.assert_allclose(kl_to_mean(same), [0.0], atol=1e-15)
    np.testing.assert_allclose(kl_to_mean(np.array([[[1.0, 0.0]], [[0.0, 1.0]]])), [LN2])
    m1, m2, mean = (0.9, 0.1), (0.5, 0.5), (0.7, 0.3)
    kl1 = sum(p * math.log(p / q) for p, q in zip(m1, mean, strict=True))
    kl2 = sum(p * math.log(p / q) for p, q in zip(m2, mean, strict=True))
    np.testing.assert_allclose(kl_to_mean(np.array([[m1], [m2]])), [(kl1 + kl2) / 2])


def test_bald_zero_when_agreeing_and_hand_value_when_not():
    np.testing.assert_allclose(bald([[0.7, 0.2], [0.7, 0.2], [0.7, 0.2]]), [0.0, 0.0], atol=1e-15)
    out = bald([[0.9], [0.1]])
    assert out[0] > 0
    assert out[0] == pytest.approx(LN2 - h2(0.9), abs=1e-12)  # H(0.5) - (H(0.9) + H(0.1)) / 2


def test_bt_entropy_and_disagreement_hand_values():
    np.testing.assert_allclose(bt_entropy([0.5]), [LN2])
    np.testing.assert_allclose(bt_entropy([[0.9], [0.1]]), [LN2])  # the mean is 0.5
    np.testing.assert_allclose(bt_entropy([0.0, 1.0, 0.9]), [0.0, 0.0, h2(0.9)])
    np.testing.assert_allclose(disagreement([[0.9], [0.1]]), [0.4])
    np.testing.assert_allclose(disagreement([[0.3, 0.8], [0.3, 0.8]]), [0.0, 0.0])


# ----------------------------------------------------------------------------------------------- NaN and errors


def test_nan_rows_score_nan_and_others_are_unaffected():
    probs = np.array([[0.5, 0.3, 0.2], [np.nan, 0.5, 0.5], [0.25, 0.25, 0.5]])
    for fn in (least_confidence, margin, entropy):
        out = fn(probs)
        assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
        np.testing.assert_allclose(out[[0, 2]], fn(probs[[0, 2]]))
    committee = np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.2, 0.8], [np.nan, np.nan]]])
    assert np.isnan(kl_to_mean(committee)[1]) and kl_to_mean(committee)[0] > 0
    assert np.isnan(vote_entropy(committee)[1]) and vote_entropy(committee)[0] == pytest.approx(LN2)
    p = np.array([[0.9, np.nan], [0.1, 0.5]])
    for fn in (bald, bt_entropy, disagreement):
        out = fn(p)
        assert np.isnan(out[1]) and np.isfinite(out[0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: entropy([0.5, 0.5]), r"shape \(n, K\)"),
        (lambda: entropy([[1.0]]), "at least 2 classes"),
        (lambda: margin([[0.5, 0.6]]), "sum to 1"),
        (lambda: least_confidence([[1.2, -0.2]]), r"\[0, 1\]"),
        (lambda: entropy([[np.inf, 0.0]]), "finite"),
        (lambda: entropy([["a", "b"]]), "numeric"),
        (lambda: kl_to_mean([[0.5, 0.5]]), r"\(m, n, K\)"),
        (lambda: vote_entropy([[0.5, 1.0]]), "integer"),
        (lambda: vote_entropy([[0, 3]], n_classes=2), "n_classes"),
        (lambda: vote_entropy(np.full((2, 1, 3), 1 / 3), n_classes=2), "n_classes"),
        (lambda: bald([0.5, 0.5]), r"\(m, n\)"),
        (lambda: disagreement([[1.5]]), r"\[0, 1\]"),
    ],
)
def test_invalid_input_raises_input_error(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_small_rounding_is_tolerated_and_renormalised():
    out = entropy([[0.5 + 4e-6, 0.5]])
    assert out[0] <= LN2 and out[0] == pytest.approx(LN2, abs=1e-9)
    assert entropy(np.zeros((0, 3))).shape == (0,)


# ----------------------------------------------------------------------------------------------- properties

_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, width=64)


def _normalise(raw: np.ndarray) -> np.ndarray:
    raw = raw + 1e-12
    return raw / raw.sum(axis=-1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(2, 8)), elements=_unit))
@example(np.array([[1.0, 0.0], [0.0, 0.0]]))
def test_single_model_scores_finite_and_in_range(raw):
    probs = _normalise(raw)
    k = probs.shape[1]
    lc, mg, h, hn = least_confidence(probs), margin(probs), entropy(probs), entropy(probs, normalize=True)
    for out in (lc, mg, h, hn):
        assert out.dtype == np.float64 and out.shape == (probs.shape[0],) and np.isfinite(out).all()
        assert (out >= 0).all()
    assert (lc <= 1 - 1 / k + 1e-12).all()
    assert (mg <= 1 + 1e-12).all()
    assert (h <= math.log(k) + 1e-12).all() and (hn <= 1 + 1e-12).all()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(2, 5)), elements=_unit))
def test_committee_scores_in_range(raw):
    probs = _normalise(raw)
    m, _, k = probs.shape
    ve, kl = vote_entropy(probs), kl_to_mean(probs)
    assert np.isfinite(ve).all() and np.isfinite(kl).all()
    assert ((ve >= 0) & (ve <= math.log(min(m, k)) + 1e-12)).all()
    assert ((kl >= 0) & (kl <= min(math.log(m), math.log(k)) + 1e-12)).all()


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)), elements=_unit))
@example(np.array([[0.0], [1.0]]))
def test_pairwise_scores_in_range(p):
    b, e, d = bald(p), bt_entropy(p), disagreement(p)
    for out in (b, e, d):
        assert out.shape == (p.shape[1],) and np.isfinite(out).all() and (out >= 0).all()
    assert (b <= LN2 + 1e-12).all() and (e <= LN2 + 1e-12).all() and (d <= 0.5 + 1e-12).all()
    assert (b <= e + 1e-12).all()  # mutual information never exceeds the predictive entropy
