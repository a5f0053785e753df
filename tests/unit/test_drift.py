"""Drift monitor: an MMD permutation test fires on a shifted stream and stays quiet on an unshifted one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curate.errors import InputError
from curate.loop.drift import DriftMonitor, median_bandwidth, mmd_test


def test_mmd_test_separates_a_mean_shift_from_noise():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 8))
    same = mmd_test(rng.normal(size=(100, 8)), reference, rng=np.random.default_rng(1))
    shifted = mmd_test(rng.normal(size=(100, 8)) + 0.5, reference, rng=np.random.default_rng(1))
    assert same.p_value > 0.2 and abs(same.mmd2) < 0.01
    assert shifted.p_value < 0.01 and shifted.mmd2 > 10 * abs(same.mmd2)
    assert shifted.p_value == pytest.approx(1 / 201)
    assert median_bandwidth(reference) == pytest.approx(same.bandwidth, rel=0.2)
    with pytest.raises(InputError, match="dimensions"):
        mmd_test(np.zeros((5, 3)), reference, rng=np.random.default_rng(0))


def _stream(monitor, rng, n, shift_at=None, shift=0.6):
    onsets, p_values = [], []
    for i in range(n):
        vector = rng.normal(size=8) + (shift if shift_at is not None and i >= shift_at else 0.0)
        test = monitor.update(vector)
        if test is not None:
            p_values.append(test.p_value)
            if monitor.onset:
                onsets.append(i)
    return onsets, p_values


def test_monitor_fires_after_a_shift_and_not_before():
    rng = np.random.default_rng(7)
    reference = rng.normal(size=(200, 8))
    monitor = DriftMonitor(reference, window=80, alpha=0.01, n_permutations=100, seed=3)
    onsets, p_values = _stream(monitor, rng, 600, shift_at=300)
    assert len(onsets) == 1 and 300 < onsets[0] < 300 + 80 + 2 * monitor.every
    assert monitor.drifted and monitor.events[0]["p_value"] < 0.01
    # before the shift at most a lone test rejected (a false alarm that patience=2 does not report)
    before = p_values[: (300 - 80) // monitor.every]
    assert sum(p < 0.01 for p in before) <= 1 and np.median(before) > 0.1


def test_monitor_stays_quiet_on_an_unshifted_stream():
    rng = np.random.default_rng(11)
    reference = rng.normal(size=(200, 8))
    monitor = DriftMonitor(reference, window=80, alpha=0.01, n_permutations=100, seed=3)
    onsets, p_values = _stream(monitor, rng, 600)
    assert onsets == [] and not monitor.drifted and monitor.events == []
    assert len(p_values) == monitor.n_tests > 20 and np.median(p_values) > 0.2


def test_monitor_state_round_trips_through_json():
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(100, 4))
    stream = rng.normal(size=(300, 4)) + np.where(np.arange(300) >= 150, 0.8, 0.0)[:, None]
    whole = DriftMonitor(reference, window=40, n_permutations=150)
    half = DriftMonitor(reference, window=40, n_permutations=150)
    results_whole = [whole.update(v) for v in stream]
    results_half = [half.update(v) for v in stream[:170]]
    restored = DriftMonitor.from_dict(json.loads(json.dumps(half.to_dict())), reference=reference)
    results_half += [restored.update(v) for v in stream[170:]]
    assert results_half == results_whole and restored.events == whole.events and whole.events
    with pytest.raises(InputError, match="malformed"):
        DriftMonitor.from_dict({"version": 1}, reference=reference)
    with pytest.raises(InputError, match="never be below alpha"):
        DriftMonitor(reference, n_permutations=50, alpha=0.01)


def test_stream_writes_a_drift_line_on_another_topic_only(workspace, tmp_path):
    from curate.ingest.sources import ingest
    from curate.loop.stream import StreamConfig, run_stream
    from curate.runtime.embeddings import MemoEmbedder
    from tests.unit.test_loop import bow_encode, text_rows, write_jsonl
    from tests.unit.test_stream import LengthScorer, topic_rows

    pool = [r for r in text_rows(200, 1, 0.8) if r["label"] in ("billing", "bug")]
    ingest(workspace, write_jsonl(tmp_path / "pool.jsonl", pool))
    same = write_jsonl(tmp_path / "same.jsonl", topic_rows(("billing", "bug"), 300, 9))
    other = write_jsonl(tmp_path / "other.jsonl", topic_rows(("praise", "shipping"), 300, 9))
    outputs = {}
    for name, source in (("same", same), ("other", other)):
        config = StreamConfig(name=name, target_rate=0.1, drift_window=60, drift_reference=100, scorer="unused")
        summary = run_stream(workspace, config, source, tmp_path / f"{name}.jsonl.out",
                             embedder=MemoEmbedder("bow", encode=bow_encode), scorer=LengthScorer())
        lines = [json.loads(line) for line in (tmp_path / f"{name}.jsonl.out").read_text().splitlines()]
        outputs[name] = ([x for x in lines if x["type"] == "drift"], summary)
    drift_lines, summary = outputs["other"]
    assert len(drift_lines) == 1 and drift_lines[0]["p_value"] < 0.01 and "retrain" in drift_lines[0]["advice"]
    assert summary.drift["drifted"] and len(summary.drift["events"]) == 1
    quiet_lines, quiet = outputs["same"]
    assert quiet_lines == [] and quiet.drift["events"] == [] and quiet.drift["tests"] >= 10
