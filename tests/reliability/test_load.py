"""Many annotators at once against one running app: every answer is stored exactly once, by the right person, on
the right task, as acknowledged, and the audit log (chain and annotation cross-check) verifies.

The fast variant (5 annotators x 10 answers) runs in ``make test``; the full one (20 x 50) is marked slow. The
same machinery measures throughput and latency in ``benchmarks/bench_load.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_load import annotator_names, build_workspace, check_stored, run_load
from curate.store import audit
from curate.store.workspace import Workspace


def _load(workspace: Workspace, tmp_path: Path, serve, annotators: int, per_annotator: int) -> None:
    expected = build_workspace(workspace, tmp_path, annotators=annotators, per_annotator=per_annotator)
    assert sorted(len(tasks) for tasks in expected.values()) == [per_annotator] * annotators
    served = serve()
    run = run_load(served.url, annotator_names(annotators), per_annotator)
    assert run.errors == []
    assert sum(len(r.submitted) for r in run.runs) == annotators * per_annotator
    assert check_stored(workspace.store, expected, run) == []
    report = audit.verify(workspace.store)
    assert report.ok, report.as_dict()
    # one annotate event per answer, each naming its own annotation
    assert report.n_events >= annotators * per_annotator


def test_concurrent_annotators_store_each_answer_exactly_once(workspace: Workspace, tmp_path: Path, serve) -> None:
    _load(workspace, tmp_path, serve, annotators=5, per_annotator=10)


@pytest.mark.slow
def test_twenty_annotators_fifty_answers_each(workspace: Workspace, tmp_path: Path, serve) -> None:
    _load(workspace, tmp_path, serve, annotators=20, per_annotator=50)


def test_the_check_catches_a_double_store(workspace: Workspace, tmp_path: Path) -> None:
    """The exactly-once check itself can fail: an answer stored twice, by the wrong person or missing is named."""
    from sqlalchemy import text

    from benchmarks.bench_load import expected_label
    from curate.annotate import answers as annotation

    expected = build_workspace(workspace, tmp_path, annotators=2, per_annotator=2)
    (a, b), store = annotator_names(2), workspace.store
    for name in (a, b):
        for task in sorted(expected[name]):
            annotation.submit(store, name, task, {"label": expected_label(task)})
    assert check_stored(store, expected) == []
    first, other = min(expected[a]), min(expected[b])
    with store.write() as conn:
        for task, who in ((first, a), (other, a)):  # a replayed submit, and an answer on someone else's task
            conn.execute(text("INSERT INTO annotations (task_id, annotator, value, kind, created_at) VALUES "
                              "(:t, :a, :v, 'answer', '2026-01-01T00:00:00+00:00')"),
                         {"t": task, "a": who, "v": f'{{"label":"{expected_label(task)}"}}'})
    problems = check_stored(store, expected)
    assert f"task {first} by {a}: stored 2 times" in problems
    assert any(f"by {a} on task {other}, which is {b}'s" in p for p in problems)
    assert "6 annotations stored, 4 expected" in problems
