"""curate stream: label-now or auto-accept at the target rate, tasks in the app at once, resumable sessions."""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import curate.cli.loop  # noqa: F401  (adds `loop` and `stream` to the app)
from curate.cli.main import app
from curate.scorers.base import BaseScorer
from curate.store.schema import Task
from tests.unit.test_loop import CLASSES, NOISE, bow_encode, write_jsonl


@dataclasses.dataclass(frozen=True)
class LengthScorer(BaseScorer):
    """A cheap scorer for streams: the text's length (higher = longer)."""

    name: ClassVar[str] = "length"

    def score(self, records):
        return np.array([float(len(r.fields["text"])) for r in records])


def topic_rows(classes, n, seed):
    """``n`` texts about ``classes`` in turn, of varying length."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = CLASSES[classes[i % len(classes)]]
        size = int(rng.integers(3, 12))
        rows.append({"text": " ".join(rng.choice(words) if rng.random() < 0.8 else rng.choice(NOISE)
                                      for _ in range(size)) + f" s{seed}-{i}"})
    return rows


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_stream_cli_keeps_the_rate_and_queues_tasks(workspace, tmp_path):
    from curate.annotate.answers import get_task
    from curate.ingest.sources import ingest
    from curate.rounds.assignment import add_label_schema
    from curate.store.accounts import add_user

    ingest(workspace, write_jsonl(tmp_path / "pool.jsonl", topic_rows(sorted(CLASSES), 120, 1)))
    add_user(workspace.store, "ann", "annotator", "correct-horse-42")
    add_label_schema(workspace.store, "topic", sorted(CLASSES))
    source = write_jsonl(tmp_path / "stream.jsonl", topic_rows(sorted(CLASSES), 2000, 2))
    with source.open("a") as fh:
        fh.write("this is not json\n")
    out, summary_path = tmp_path / "decisions.jsonl", tmp_path / "summary.json"
    result = CliRunner().invoke(app, [
        "stream", "--input", str(source), "--out", str(out), "--target-rate", "0.1",
        "--scorer", "tests.unit.test_stream:LengthScorer", "--embedder", "tests.unit.test_loop:bow_encode",
        "--drift-window", "100", "--drift-reference", "100", "--annotators", "ann", "--schema", "topic",
        "-w", str(workspace.root), "--db", workspace.db_url, "--json", str(summary_path)])
    assert result.exit_code == 0, result.output
    lines = read_lines(out)
    decisions = [x for x in lines if x["type"] == "decision"]
    assert len(decisions) == 2000 and [x["type"] for x in lines].count("error") == 1
    labelled = [x for x in decisions if x["decision"] == "label"]
    rate = len(labelled) / len(decisions)
    assert abs(rate - 0.1) <= 0.02, rate
    assert decisions[-1]["rate"] == pytest.approx(rate, abs=1e-6)
    summary = json.loads(summary_path.read_text())
    assert summary["labelled"] == len(labelled) and summary["tasks"] == len(labelled) and summary["errors"] == 1
    assert summary["drift"]["events"] == []
    with workspace.store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(Task)) == len(labelled)
    view = get_task(workspace.store, "ann")
    assert view is not None and view.task_id == labelled[0]["task_id"] and view.record_id == labelled[0]["id"]
    assert view.classes == sorted(CLASSES) and view.round_number == summary["round"]


def _run(ws, source, out, *, name="s", crash_at=None, **config):
    from curate.loop.stream import StreamConfig, run_stream
    from curate.runtime.embeddings import MemoEmbedder

    def crash(item):
        if crash_at is not None and item.get("line") == crash_at:
            raise RuntimeError("simulated crash")

    settings = {"drift_window": 40, "drift_reference": 60, "target_rate": 0.2, "scorer": "length", **config}
    return run_stream(ws, StreamConfig(name=name, **settings), source, out, checkpoint_every=50,
                      embedder=MemoEmbedder("bow", encode=bow_encode), scorer=LengthScorer(), on_line=crash)


def test_stream_resumes_where_it_stopped_and_replays_after_a_crash(workspace, tmp_path):
    from curate.ingest.sources import ingest
    from curate.store.workspace import Workspace

    rows = topic_rows(sorted(CLASSES), 700, 3)
    for ws in (workspace, Workspace.open(tmp_path / "reference")):
        ingest(ws, write_jsonl(tmp_path / "pool.jsonl", topic_rows(sorted(CLASSES), 80, 1)))
    whole = _run(Workspace.open(tmp_path / "reference"), write_jsonl(tmp_path / "all.jsonl", rows),
                 tmp_path / "all.out")
    # a growing file: the first 400 lines, then a crash in the middle of the next batch, then the rest
    source, out = tmp_path / "grow.jsonl", tmp_path / "grow.out"
    write_jsonl(source, rows[:400])
    first = _run(workspace, source, out)
    assert first.lines == 400
    write_jsonl(source, rows)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(workspace, source, out, crash_at=530)
    resumed = _run(workspace, source, out)
    expected, got = read_lines(tmp_path / "all.out"), read_lines(out)
    assert got == expected  # same decisions, thresholds and drift lines; no line twice
    assert (resumed.lines, resumed.labelled, resumed.tasks) == (whole.lines, whole.labelled, whole.labelled)
    with workspace.store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(Task)) == whole.labelled
    with pytest.raises(Exception, match="different settings"):
        _run(workspace, source, out, target_rate=0.3)


def test_stream_follows_a_growing_file_and_reads_stdin(workspace, tmp_path):
    import threading
    import time

    from curate.loop.stream import StreamConfig, run_stream
    from curate.runtime.embeddings import MemoEmbedder

    rows = topic_rows(sorted(CLASSES), 60, 5)
    source = write_jsonl(tmp_path / "grow.jsonl", rows[:30])
    lines = [json.dumps(r) + "\n" for r in rows[30:]]

    def writer():
        time.sleep(0.3)
        with source.open("a") as fh:
            fh.write("".join(lines[:-1]) + lines[-1][:10])  # the last line arrives in two pieces
            fh.flush()
            time.sleep(0.4)
            fh.write(lines[-1][10:])

    thread = threading.Thread(target=writer)
    thread.start()
    config = StreamConfig(name="follow", target_rate=0.2, drift_window=0)
    summary = run_stream(workspace, config, source, tmp_path / "out.jsonl", follow=True, idle_exit=1.5,
                         poll_seconds=0.05, embedder=MemoEmbedder("bow", encode=bow_encode), scorer=LengthScorer())
    thread.join()
    assert (summary.lines, summary.records, summary.errors) == (60, 60, 0)
    assert [x["line"] for x in read_lines(tmp_path / "out.jsonl")] == list(range(1, 61))

    result = CliRunner().invoke(app, [
        "stream", "--input", "-", "--name", "stdin", "--target-rate", "0.5", "--drift-window", "0",
        "--scorer", "tests.unit.test_stream:LengthScorer", "--embedder", "tests.unit.test_loop:bow_encode",
        "-w", str(workspace.root), "--db", workspace.db_url], input="".join(lines))
    assert result.exit_code == 0, result.output
    decisions = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert len(decisions) == 30 and {d["decision"] for d in decisions} == {"label", "accept"}


def test_a_stream_of_another_kind_says_which_kind_and_fails(workspace, tmp_path):
    from curate.store.accounts import add_user

    add_user(workspace.store, "ann", "annotator", "correct-horse-42")
    source = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": f"question {i}?", "chosen": f"good answer {i}",
                                                     "rejected": f"bad answer {i}"} for i in range(5)])
    out = tmp_path / "decisions.jsonl"
    result = CliRunner().invoke(app, [
        "stream", "--input", str(source), "--out", str(out), "--scorer", "tests.unit.test_stream:LengthScorer",
        "--embedder", "tests.unit.test_loop:bow_encode", "--drift-window", "0", "--annotators", "ann",
        "-w", str(workspace.root), "--db", workspace.db_url])
    assert result.exit_code == 1
    errors = [x["error"] for x in read_lines(out) if x["type"] == "error"]
    assert len(errors) == 5 and all(e.endswith("; it reads as a preference record: pass --kind preference")
                                    for e in errors)


def test_ctrl_c_ends_a_followed_stream_with_its_summary_and_the_rerun_goes_on(workspace, tmp_path):
    import _thread
    import signal
    import threading
    import time

    from curate.loop.stream import StreamConfig, run_stream
    from curate.runtime.checkpoint import kept
    from curate.runtime.embeddings import MemoEmbedder

    rows = topic_rows(sorted(CLASSES), 50, 6)
    source, out = write_jsonl(tmp_path / "grow.jsonl", rows[:30]), tmp_path / "out.jsonl"
    config = StreamConfig(name="follow", target_rate=0.2, drift_window=0)
    embedder = MemoEmbedder("bow", encode=bow_encode)

    def ctrl_c_when_idle():  # the user presses Ctrl-C while the stream waits for new lines
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 30):
            time.sleep(0.05)
        time.sleep(0.3)
        _thread.interrupt_main()

    # a test run started with SIGINT ignored (`nohup make test &`) would drop the Ctrl-C: Python's handler for now
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    thread = threading.Thread(target=ctrl_c_when_idle)
    thread.start()
    try:  # idle_exit: if the Ctrl-C is lost anyway, the stream ends by itself and the asserts fail instead of hanging
        summary = run_stream(workspace, config, source, out, follow=True, idle_exit=60, poll_seconds=0.05,
                             embedder=embedder, scorer=LengthScorer())
    finally:
        thread.join()
        signal.signal(signal.SIGINT, previous)
    assert summary.lines == 30
    assert summary.notes == ["stopped by Ctrl-C after line 30; the session is saved: run the same command again to "
                             "go on from there"]
    write_jsonl(source, rows)
    again = run_stream(workspace, config, source, out, follow=True, idle_exit=0.3, poll_seconds=0.05,
                       embedder=embedder, scorer=LengthScorer())
    assert (again.lines, again.notes) == (50, [])
    assert [x["line"] for x in read_lines(out)] == list(range(1, 51))

    # without --follow, Ctrl-C is an interruption: re-raised, with what the session kept counted for the message
    def interrupt(item):
        if item.get("line") == 20:
            raise KeyboardInterrupt

    before = kept().get("decided line(s) of stream 'plain' (session saved)", 0)
    with pytest.raises(KeyboardInterrupt):
        run_stream(workspace, StreamConfig(name="plain", target_rate=0.2, drift_window=0), source,
                   tmp_path / "plain.jsonl", checkpoint_every=10, embedder=embedder, scorer=LengthScorer(),
                   on_line=interrupt)
    assert kept()["decided line(s) of stream 'plain' (session saved)"] - before == 10
