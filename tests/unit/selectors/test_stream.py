from __future__ import annotations

import json

import numpy as np
import pytest

from curate.errors import InputError
from curate.selectors import StreamGate

RNG = np.random.default_rng
N = 2_000


def stream(kind: str, seed: int) -> np.ndarray:
    rng = RNG(seed)
    noise = rng.normal(size=N)
    if kind == "iid":
        return noise
    if kind == "drift":  # the whole distribution moves up by 5 standard deviations over the stream
        return noise + np.linspace(0.0, 5.0, N)
    if kind == "monotone":  # every score is higher than all before it: the hardest case for a window quantile
        return np.linspace(0.0, 1.0, N)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["iid", "drift", "monotone"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("target", [0.1, 0.3])
def test_rate_stays_within_20_percent_of_the_target(kind: str, seed: int, target: float) -> None:
    gate = StreamGate(target_rate=target)
    decisions = gate.decide_many(stream(kind, seed))
    assert abs(decisions.mean() - target) <= 0.2 * target
    assert abs(decisions[N // 2:].mean() - target) <= 0.2 * target  # and in the second half alone
    assert gate.rate == pytest.approx(decisions.mean())


def test_the_gate_labels_high_scores_not_just_any_tenth() -> None:
    scores = stream("iid", 3)
    decisions = StreamGate(target_rate=0.1).decide_many(scores)
    top20 = scores >= np.quantile(scores, 0.8)
    assert top20[decisions].mean() > 0.8
    assert scores[decisions].mean() > scores.mean() + 1.2


def test_state_round_trips_through_json_and_resumes_identically() -> None:
    scores = stream("drift", 4)
    uninterrupted = StreamGate(target_rate=0.1).decide_many(scores)
    first = StreamGate(target_rate=0.1)
    a = first.decide_many(scores[:1000])
    resumed = StreamGate.from_dict(json.loads(json.dumps(first.to_dict())))
    b = resumed.decide_many(scores[1000:])
    np.testing.assert_array_equal(np.concatenate([a, b]), uninterrupted)
    assert resumed.n_seen == N


def test_nan_scores_are_never_labelled_and_do_not_move_the_rate() -> None:
    gate = StreamGate(target_rate=0.5, warmup=0)
    assert gate.decide(float("nan")) is False
    assert gate.n_unscorable == 1 and gate.n_seen == 0


def test_warm_up_paces_by_budget() -> None:
    gate = StreamGate(target_rate=0.25, warmup=8)
    assert gate.decide_many(np.zeros(8)).tolist() == [True, False, False, False, True, False, False, False]
    assert gate.threshold() > -np.inf


def test_constant_scores_still_meet_the_rate() -> None:
    decisions = StreamGate(target_rate=0.1).decide_many(np.ones(1000))
    assert decisions.mean() == pytest.approx(0.1)


def test_bad_parameters_and_states_are_rejected() -> None:
    with pytest.raises(InputError, match="target_rate"):
        StreamGate(target_rate=0.0)
    with pytest.raises(InputError, match="warmup"):
        StreamGate(window=10, warmup=20)
    with pytest.raises(InputError, match="incomplete or malformed"):
        StreamGate.from_dict({"version": 1, "target_rate": 0.1})
    with pytest.raises(InputError, match="version"):
        StreamGate.from_dict({**StreamGate().to_dict(), "version": 99})
