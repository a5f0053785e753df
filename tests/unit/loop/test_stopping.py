from __future__ import annotations

import numpy as np
import pytest

from curate.errors import InputError
from curate.loop.stopping import marginal_gain, prediction_agreement, stopping_report

LABELS = [100, 200, 300, 400, 500, 600]


def test_marginal_gain_is_the_slope_per_label_over_the_window() -> None:
    assert marginal_gain([0.5, 0.6, 0.7, 0.71, 0.72], [100, 200, 300, 400, 500], window=2) == pytest.approx(1e-4)
    assert marginal_gain([0.5, 0.6, 0.7], [100, 200, 300], window=3) == pytest.approx(1e-3)
    assert np.isnan(marginal_gain([0.5], [100], window=3))


def test_stop_on_a_flat_curve() -> None:
    report = stopping_report([0.50, 0.70, 0.80, 0.801, 0.801, 0.802], LABELS)
    assert report.stop is True
    assert report.gain_per_label < report.min_gain_per_label == 1e-4
    assert report.window == 3 and "below" in report.reasons[0]


def test_continue_on_a_rising_curve() -> None:
    report = stopping_report([0.50, 0.55, 0.60, 0.65, 0.70, 0.75], LABELS)
    assert report.stop is False
    assert report.gain_per_label == pytest.approx(5e-4)
    assert "not below" in report.reasons[0]


def test_continue_without_enough_history() -> None:
    report = stopping_report([0.5, 0.5], [100, 200])
    assert report.stop is False and "need 3 rounds" in report.reasons[0]


def test_stabilising_predictions_say_stop_when_successive_models_agree() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, 500)
    moving = [rng.integers(0, 3, 500) for _ in range(4)]
    stable = [base.copy() for _ in range(4)]
    stable[1][:2] = (stable[1][:2] + 1) % 3  # one small change early on
    assert stopping_report(predictions_history=stable, min_kappa=0.99).stop is True
    report = stopping_report(predictions_history=moving)
    assert report.stop is False and len(report.kappas) == 3 and max(report.kappas) < 0.2


def test_both_signals_must_agree() -> None:
    stable = [np.array([0, 1, 1, 0, 2])] * 4
    rising = [0.5, 0.55, 0.60, 0.65, 0.70, 0.75]
    assert stopping_report(rising, LABELS, stable).stop is False
    flat = [0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    report = stopping_report(flat, LABELS, stable)
    assert report.stop is True and len(report.reasons) == 2
    assert report.to_dict()["min_kappa"] == 0.99


def test_prediction_agreement_handles_constant_predictions() -> None:
    assert prediction_agreement([1, 1, 1], [1, 1, 1]) == 1.0
    assert prediction_agreement([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


def test_bad_histories_are_rejected() -> None:
    with pytest.raises(InputError, match="same length"):
        marginal_gain([0.1, 0.2], [100])
    with pytest.raises(InputError, match="cumulative"):
        marginal_gain([0.1, 0.2, 0.3], [100, 50, 200])
    with pytest.raises(InputError, match="give metric_history"):
        stopping_report()
    with pytest.raises(InputError, match="same stop set"):
        prediction_agreement([1, 2], [1, 2, 3])
