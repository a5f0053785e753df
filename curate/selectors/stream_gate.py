"""Stream gate: for records that arrive one at a time, decide "label now" or "auto-accept" at a target rate.

:class:`StreamGate` keeps a window of recent scores and labels a record when its score is above

    threshold = Q(1 - target_rate) of the window  +  gain * spread * (labelled - target_rate * seen)

The first term is a running quantile: on i.i.d. scores it labels about ``target_rate`` of the records. The
second is the budget pacer, an integral controller on the realised rate: every label beyond the budget raises
the threshold by ``gain * spread`` (``spread`` = the window's interquartile range / 1.349, a robust standard
deviation), every record let through below budget lowers it by ``gain * spread * target_rate``. It removes the
bias the quantile has when scores drift (a window of past scores lags behind a rising distribution), so the
cumulative rate stays near the target; its steady-state error is a few labels, not a share of the stream.

Warm-up: until ``warmup`` scores have been seen, and whenever a score ties the threshold exactly, the gate labels
if and only if the labelled count is below ``target_rate * seen`` (pure pacing). NaN scores are never labelled
(the selector rule: NaN cannot be chosen) and do not enter the window; they are counted in ``n_unscorable``.

The whole state is plain numbers and a list of floats: :meth:`StreamGate.to_dict` / :meth:`StreamGate.from_dict`
round-trip through JSON, so a stream can stop and resume with identical decisions.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.selectors.arrays import check_fraction

STATE_VERSION = 1


class StreamGate:
    """Online label-or-accept decisions at ``target_rate`` (see the module docstring for the rule).

    Args:
        target_rate: Share of scorable records to send to a human, in (0, 1].
        window: How many recent scores the running quantile uses.
        warmup: Scores seen before the quantile rule starts (pure pacing before that); at most ``window``.
        gain: Pacer strength: threshold shift per label of budget error, in units of the score spread.

    Score direction: higher = more worth labelling.

    >>> gate = StreamGate(target_rate=0.5, warmup=2)
    >>> [gate.decide(s) for s in [0.1, 0.9, 0.2, 0.8]]
    [True, False, False, True]
    """

    def __init__(self, target_rate: float = 0.1, *, window: int = 200, warmup: int = 20, gain: float = 0.05) -> None:
        self.target_rate = check_fraction(target_rate, "StreamGate", "target_rate")
        if self.target_rate <= 0:
            raise InputError("StreamGate: target_rate must be in (0, 1]; got 0. To label nothing, skip the gate.")
        if not isinstance(window, int) or window < 2:
            raise InputError(f"StreamGate: window must be an integer >= 2; got {window!r}")
        if not isinstance(warmup, int) or not 0 <= warmup <= window:
            raise InputError(f"StreamGate: warmup must be an integer in [0, window={window}]; got {warmup!r}")
        self.gain = check_fraction(gain, "StreamGate", "gain", high=math.inf)
        self.window = window
        self.warmup = warmup
        self.recent: deque[float] = deque(maxlen=window)
        self.n_seen = 0
        self.n_labelled = 0
        self.n_unscorable = 0

    @property
    def rate(self) -> float:
        """Realised share of scorable records labelled so far (0 before any)."""
        return self.n_labelled / self.n_seen if self.n_seen else 0.0

    def budget_error(self) -> float:
        """Labels given minus labels budgeted so far (positive = ahead of budget)."""
        return self.n_labelled - self.target_rate * self.n_seen

    def threshold(self) -> float:
        """The current threshold (``-inf`` during warm-up: pacing decides then)."""
        if len(self.recent) < max(self.warmup, 1):
            return -math.inf
        values = np.fromiter(self.recent, dtype=np.float64, count=len(self.recent))
        q25, base, q75 = np.quantile(values, [0.25, 1.0 - self.target_rate, 0.75])
        spread = (q75 - q25) / 1.349
        if not spread > 0:
            spread = float(values.std())
        return float(base + self.gain * spread * self.budget_error())

    def decide(self, score: float) -> bool:
        """True = send this record to a human now; False = auto-accept. Updates the state.

        Args:
            score: The record's score (higher = more worth labelling); NaN is never labelled.
        """
        value = float(score)
        if math.isnan(value):
            self.n_unscorable += 1
            return False
        under_budget = self.n_labelled < self.target_rate * (self.n_seen + 1)
        if len(self.recent) < max(self.warmup, 1):
            label = under_budget
        else:
            thr = self.threshold()
            label = value > thr or (value == thr and under_budget)
        self.recent.append(value)
        self.n_seen += 1
        self.n_labelled += int(label)
        return label

    def decide_many(self, scores: Iterable[float]) -> npt.NDArray[np.bool_]:
        """:meth:`decide` for each score in order; shape ``(n,)`` booleans."""
        return np.asarray([self.decide(s) for s in scores], dtype=bool)

    def to_dict(self) -> dict[str, Any]:
        """The full state as JSON-serialisable data."""
        return {
            "version": STATE_VERSION,
            "target_rate": self.target_rate,
            "window": self.window,
            "warmup": self.warmup,
            "gain": self.gain,
            "recent": list(self.recent),
            "n_seen": self.n_seen,
            "n_labelled": self.n_labelled,
            "n_unscorable": self.n_unscorable,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> StreamGate:
        """Rebuild a gate from :meth:`to_dict` output; decisions continue exactly where they stopped."""
        try:
            if state["version"] != STATE_VERSION:
                raise InputError(f"StreamGate.from_dict: state version {state['version']!r} is not supported "
                                 f"(expected {STATE_VERSION}); start a new gate")
            gate = cls(state["target_rate"], window=int(state["window"]), warmup=int(state["warmup"]),
                       gain=state["gain"])
            gate.recent.extend(float(v) for v in state["recent"])
            gate.n_seen = int(state["n_seen"])
            gate.n_labelled = int(state["n_labelled"])
            gate.n_unscorable = int(state["n_unscorable"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"StreamGate.from_dict: the state is incomplete or malformed ({exc!r}); expected the "
                             "dict written by StreamGate.to_dict()") from None
        return gate
