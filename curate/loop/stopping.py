"""When to stop labelling: diminishing returns and stabilising predictions.

Two signals, each with its threshold recorded in the :class:`StoppingReport`:

- **Marginal gain per label** over the last ``window`` rounds: the least-squares slope of the evaluation metric
  (higher = better, e.g. accuracy or win rate) against the cumulative number of labels. Says "stop" when the slope
  is below ``min_gain_per_label`` (default 1e-4 = 1 accuracy point per 100 labels).
- **Stabilising predictions** (Bloodgood & Vijay-Shanker, 2009): Cohen's kappa (scikit-learn) between the
  predictions of successive models on a fixed, unlabelled stop set. Says "stop" when each of the last ``window``
  agreements is at least ``min_kappa`` (default 0.99).

:func:`stopping_report` recommends stopping when **every signal that was supplied** says stop. A signal with too
little history (fewer than ``window`` rounds, or ``window`` + 1 prediction sets) cannot say stop, so the
recommendation is to continue.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError

MIN_GAIN_PER_LABEL = 1e-4
MIN_KAPPA = 0.99
WINDOW = 3


def marginal_gain(metric_history: Sequence[float] | npt.ArrayLike, labels_history: Sequence[int] | npt.ArrayLike,
                  *, window: int = WINDOW) -> float:
    """Slope of the metric per label over the last ``window`` rounds (least squares; NaN if it cannot be computed).

    Args:
        metric_history: Shape ``(r,)``, the metric after each round, higher = better.
        labels_history: Shape ``(r,)``, cumulative labels after each round (non-decreasing).
        window: Rounds to fit (at least 2).

    >>> marginal_gain([0.5, 0.6, 0.7], [100, 200, 300])
    0.001
    """
    metric = np.asarray(metric_history, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels_history, dtype=np.float64).reshape(-1)
    if metric.shape != labels.shape:
        raise InputError(f"marginal_gain: metric_history and labels_history must have the same length (one entry "
                         f"per round); got {metric.size} and {labels.size}")
    if not isinstance(window, int) or window < 2:
        raise InputError(f"marginal_gain: window must be an integer >= 2; got {window!r}")
    if np.any(np.diff(labels) < 0):
        raise InputError("marginal_gain: labels_history must be cumulative (non-decreasing); got "
                         f"{labels.tolist()}")
    if metric.size < window:
        return float("nan")
    m, lab = metric[-window:], labels[-window:]
    if np.ptp(lab) == 0 or not np.all(np.isfinite(m)):
        return float("nan")
    slope = np.polyfit(lab, m, 1)[0]
    return round(float(slope), 12)


def prediction_agreement(previous: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Cohen's kappa between two models' predictions on the same stop set (shape ``(s,)`` each).

    Identical predictions count as 1.0 even when kappa is undefined (a single class predicted throughout).
    """
    from sklearn.metrics import cohen_kappa_score

    a = np.asarray(previous).reshape(-1)
    b = np.asarray(current).reshape(-1)
    if a.shape != b.shape or a.size == 0:
        raise InputError(f"prediction_agreement: both prediction sets must be non-empty and cover the same stop set; "
                         f"got lengths {a.size} and {b.size}")
    if np.array_equal(a, b):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = float(cohen_kappa_score(a, b))
    return kappa if np.isfinite(kappa) else 0.0


@dataclasses.dataclass(frozen=True)
class StoppingReport:
    """Whether to stop labelling, and why.

    Attributes:
        stop: True if every supplied signal says stop.
        reasons: One sentence per signal (what it measured against which threshold).
        gain_per_label: Latest marginal gain (metric per label), NaN if not computed.
        kappas: Agreement of each pair of successive prediction sets, oldest first.
        window: Rounds each signal looks at.
        min_gain_per_label: Threshold of the gain signal.
        min_kappa: Threshold of the agreement signal.
        rounds: Rounds of metric history received.
    """

    stop: bool
    reasons: tuple[str, ...]
    gain_per_label: float
    kappas: tuple[float, ...]
    window: int
    min_gain_per_label: float
    min_kappa: float
    rounds: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN becomes None)."""
        out = dataclasses.asdict(self)
        out["reasons"] = list(self.reasons)
        out["kappas"] = list(self.kappas)
        out["gain_per_label"] = None if np.isnan(self.gain_per_label) else self.gain_per_label
        return out


def stopping_report(metric_history: Sequence[float] | npt.ArrayLike | None = None,
                    labels_history: Sequence[int] | npt.ArrayLike | None = None,
                    predictions_history: Sequence[npt.ArrayLike] | None = None, *, window: int = WINDOW,
                    min_gain_per_label: float = MIN_GAIN_PER_LABEL, min_kappa: float = MIN_KAPPA) -> StoppingReport:
    """Combine the two stopping signals (module docstring) into one recommendation.

    Args:
        metric_history: Shape ``(r,)``, the evaluation metric after each round (higher = better), or None.
        labels_history: Shape ``(r,)``, cumulative labels after each round; required with ``metric_history``.
        predictions_history: One prediction array per round, each shape ``(s,)`` on the same stop set, or None.
        window: Rounds each signal looks at.
        min_gain_per_label: Stop threshold of the gain signal.
        min_kappa: Stop threshold of the agreement signal.

    Raises:
        InputError: No signal given, or histories of different lengths.
    """
    if metric_history is None and predictions_history is None:
        raise InputError("stopping_report: give metric_history (with labels_history), predictions_history, or both")
    votes: list[bool] = []
    reasons: list[str] = []
    gain = float("nan")
    rounds = 0
    if metric_history is not None:
        if labels_history is None:
            raise InputError("stopping_report: metric_history needs labels_history (cumulative labels per round)")
        rounds = int(np.size(metric_history))
        gain = marginal_gain(metric_history, labels_history, window=window)
        if np.isnan(gain):
            votes.append(False)
            reasons.append(f"gain: need {window} rounds with a growing label count to measure it; have {rounds}")
        else:
            votes.append(gain < min_gain_per_label)
            verdict = "below" if gain < min_gain_per_label else "not below"
            reasons.append(f"gain: {gain:.3g} per label over the last {window} rounds is {verdict} "
                           f"{min_gain_per_label:g}")
    kappas: tuple[float, ...] = ()
    if predictions_history is not None:
        preds = list(predictions_history)
        kappas = tuple(prediction_agreement(a, b) for a, b in zip(preds, preds[1:], strict=False))
        if len(kappas) < window:
            votes.append(False)
            reasons.append(f"agreement: need {window + 1} prediction sets on the stop set; have {len(preds)}")
        else:
            last = kappas[-window:]
            votes.append(min(last) >= min_kappa)
            verdict = "all at least" if min(last) >= min_kappa else "not all at least"
            reasons.append(f"agreement: Cohen's kappa of the last {window} model pairs "
                           f"{[round(v, 4) for v in last]} is {verdict} {min_kappa:g}")
    return StoppingReport(all(votes), tuple(reasons), gain, kappas, window, float(min_gain_per_label),
                          float(min_kappa), rounds)
