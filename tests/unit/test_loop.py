"""The pool-based loop: stops at the budget, the target and the gain signal; waits for the app; survives kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlalchemy import select

from curate.errors import InputError
from curate.ingest.sources import ingest
from curate.loop.pool_loop import LoopConfig, history, loop_rounds, loop_status, run_loop, state_path
from curate.runtime.embeddings import Embedder
from curate.store.schema import Annotation, AuditEvent, Task

ROOT = Path(__file__).resolve().parents[2]
CLASSES = {"billing": "invoice charge refund payment card price bill paid fee account".split(),
           "bug": "crash error freeze broken bug fails exception screen load slow".split(),
           "praise": "love great thanks awesome excellent happy wonderful nice best perfect".split(),
           "shipping": "parcel delivery courier shipped tracking arrive package late box address".split()}
NOISE = "the a my it is was this today please help again just".split()


def bow_encode(texts):
    """A deterministic hashing bag of words, 64 dimensions (the injected featurizer: no model to load)."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, zlib.crc32(word.encode()) % 64] += 1.0
    return out


def bow() -> Embedder:
    return Embedder("bow", encode=bow_encode)


def text_rows(n: int, seed: int, signal_share: float) -> list[dict]:
    """``n`` texts of 4 classes in turn: six words, each from the class vocabulary with ``signal_share``."""
    rng = np.random.default_rng(seed)
    names = sorted(CLASSES)
    rows = []
    for i in range(n):
        cls = names[i % len(names)]
        words = [rng.choice(CLASSES[cls]) if rng.random() < signal_share else rng.choice(NOISE) for _ in range(6)]
        rows.append({"text": " ".join(words) + f" #{seed}-{i}", "label": cls})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def seed_texts(ws, tmp_path: Path, *, signal_share: float = 0.5, n_pool: int = 160) -> None:
    """A pool, a frozen test set and a calibration slice of labelled texts."""
    for name, n, seed, split in (("pool", n_pool, 1, "pool"), ("test", 80, 2, "test"),
                                 ("calibration", 60, 3, "calibration")):
        ingest(ws, write_jsonl(tmp_path / f"{name}.jsonl", text_rows(n, seed, signal_share)), split=split)


def events(ws, action: str) -> list[dict]:
    with ws.store.read() as conn:
        return [orjson.loads(p) for p in conn.scalars(select(AuditEvent.payload).where(AuditEvent.action == action)
                                                      .order_by(AuditEvent.seq))]


def test_loop_stops_at_the_budget(workspace, tmp_path):
    seed_texts(workspace, tmp_path)
    config = LoopConfig(name="budget", rounds=10, budget=45, batch=15, oracle="label", min_gain_per_label=0)
    result = run_loop(workspace, config, embedder=bow())
    assert (result.status, result.stop_reason) == ("stopped", "budget")
    assert [h["loop_round"] for h in result.history] == [1, 2, 3]
    assert [h["labels"] for h in result.history] == [15, 30, 45]
    assert all(h["metrics"]["accuracy"] is not None and h["metrics"]["calibration_ece"] is not None
               for h in result.history)
    assert sum(r["tasks"] for r in result.rounds) == 45
    assert len(events(workspace, "loop.round")) == 3 and len(events(workspace, "loop.stop")) == 1
    stored = orjson.loads(state_path(workspace, "budget").read_bytes())
    assert stored["stop_reason"] == "budget" and len(stored["history"]) == 3
    # the model's suggestions were overruled in round 2, so round 3 was scored with the feedback wrapper
    assert result.history[1]["overrules"] > 0
    assert events(workspace, "loop.round")[2]["scorer_key"].startswith("feedback(weight=1,")
    # running it again does nothing new
    again = run_loop(workspace, config, embedder=bow())
    assert again.stop_reason == "budget" and len(again.history) == 3 and len(events(workspace, "loop.eval")) == 3


def test_loop_stops_at_the_target(workspace, tmp_path):
    seed_texts(workspace, tmp_path)
    config = LoopConfig(name="target", rounds=10, budget=150, batch=15, oracle="label", target="accuracy=0.8",
                        min_gain_per_label=0)
    result = run_loop(workspace, config, embedder=bow())
    assert result.stop_reason == "target"
    accuracies = [h["metrics"]["accuracy"] for h in result.history]
    assert accuracies[-1] >= 0.8 and all(a < 0.8 for a in accuracies[:-1])
    assert result.history[-1]["tasks"] < 150


def test_loop_stops_when_the_gain_per_label_runs_out(workspace, tmp_path):
    seed_texts(workspace, tmp_path, signal_share=0.9)
    config = LoopConfig(name="gain", rounds=10, budget=150, batch=15, oracle="label", min_gain_per_label=1e-3,
                        gain_window=3)
    result = run_loop(workspace, config, embedder=bow())
    assert result.stop_reason == "gain"
    assert 3 <= len(result.history) < 10 and result.history[-1]["tasks"] < 150
    from curate.loop.stopping import marginal_gain

    accuracy = [h["metrics"]["accuracy"] for h in result.history]
    labels = [h["labels"] for h in result.history]
    assert marginal_gain(accuracy, labels) < 1e-3
    assert all(marginal_gain(accuracy[:i], labels[:i]) >= 1e-3 for i in range(3, len(accuracy)))


def test_loop_waits_for_the_app_then_continues(workspace, tmp_path):
    from curate.annotate.answers import get_task, submit
    from curate.rounds.assignment import add_label_schema
    from curate.store.accounts import add_user

    seed_texts(workspace, tmp_path)
    add_user(workspace.store, "ann", "annotator", "correct-horse-42")
    add_label_schema(workspace.store, "topic", sorted(CLASSES))
    config = LoopConfig(name="app", rounds=2, budget=40, batch=10, annotators=("ann",), schema="topic",
                        min_gain_per_label=0)
    first = run_loop(workspace, config, embedder=bow())
    assert (first.status, first.waiting_for, first.history) == ("waiting", 10, [])
    gold = {r.id: r.label for r in workspace.store.iter_records()}
    for _ in range(4):
        view = get_task(workspace.store, "ann")
        submit(workspace.store, "ann", view.task_id, {"label": gold[view.record_id]})
    assert run_loop(workspace, config, embedder=bow()).waiting_for == 6
    while (view := get_task(workspace.store, "ann")) is not None:
        submit(workspace.store, "ann", view.task_id, {"label": gold[view.record_id]})
    second = run_loop(workspace, config, embedder=bow())
    assert second.status == "waiting" and len(second.history) == 1 and len(second.rounds) == 2
    assert get_task(workspace.store, "ann").suggestion in CLASSES  # round 2 tasks carry the model's suggestion
    while (view := get_task(workspace.store, "ann")) is not None:
        submit(workspace.store, "ann", view.task_id, {"label": gold[view.record_id]})
    done = run_loop(workspace, config, embedder=bow())
    assert (done.status, done.stop_reason, len(done.history)) == ("stopped", "rounds", 2)
    assert loop_status(workspace, "app").stop_reason == "rounds"


def test_loop_refuses_other_settings_and_bad_config(workspace, tmp_path):
    seed_texts(workspace, tmp_path)
    config = LoopConfig(name="same", rounds=1, budget=10, batch=10, oracle="label")
    run_loop(workspace, config, embedder=bow())
    with pytest.raises(InputError, match=r"different settings \(budget: 10 -> 20; batch: 10 -> 20\)"):
        run_loop(workspace, LoopConfig(name="same", rounds=1, budget=20, batch=20, oracle="label"), embedder=bow())
    with pytest.raises(InputError, match="either --oracle"):
        LoopConfig(name="x")
    with pytest.raises(InputError, match="METRIC=VALUE"):
        LoopConfig(name="x", oracle="label", target="recall=0.9")
    with pytest.raises(InputError, match="does not fit --kind preference"):
        LoopConfig(name="x", kind="preference", oracle="chosen", scorer="margin")


def preference_rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    good, bad = "open settings then reset the device step by step".split(), "no idea sorry cannot help".split()
    topics = "password printer invoice laptop router phone".split()
    return [{"prompt": f"how do I fix my {rng.choice(topics)} issue {seed}-{i}",
             "chosen": " ".join(rng.choice(good, 5)), "rejected": " ".join(rng.choice(bad, 4))} for i in range(n)]


def test_preference_loop_with_the_oracle(workspace, tmp_path):
    from curate.loop.evaluation import training_records

    for name, n, seed, split in (("pool", 60, 1, "pool"), ("test", 30, 2, "test"), ("cal", 20, 3, "calibration")):
        ingest(workspace, write_jsonl(tmp_path / f"p-{name}.jsonl", preference_rows(n, seed)), split=split)
    config = LoopConfig(name="prefs", kind="preference", rounds=2, budget=40, batch=10, oracle="chosen",
                        min_gain_per_label=0)
    result = run_loop(workspace, config, embedder=bow())
    assert result.stop_reason == "rounds" and len(result.history) == 2
    assert result.history[-1]["metrics"]["accuracy"] == 1.0
    labeled = training_records(workspace, kind="preference")
    pool = {r.id: r for r in workspace.store.iter_records(kind="preference")}
    assert len(labeled) == 20 and all(r.fields["chosen"] == pool[r.id].fields["chosen"] for r in labeled)


def _cli(ws_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    code = "from curate.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args, "-w", str(ws_dir)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_kill_9_mid_round_resumes_without_repeating_or_losing_answers(tmp_path):
    from curate.store.workspace import Workspace

    ws_dir = tmp_path / "ws"
    ws = Workspace.open(ws_dir)
    seed_texts(ws, tmp_path)
    args = ("loop", "--name", "crash", "--rounds", "3", "--budget", "100", "--batch", "20", "--oracle", "label",
            "--min-gain-per-label", "0", "--embedder", "tests.unit.test_loop:bow_encode")
    killed = _cli(ws_dir, *args, env={"CURATE_LOOP_CRASH_AFTER": "7"})  # dies in round 1
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with ws.store.read() as conn:
        assert conn.scalar(select(Annotation.id).where(Annotation.annotator == "oracle").limit(1)) is not None
    assert len(loop_rounds(ws, "crash")) == 1 and history(ws, "crash") == []
    killed = _cli(ws_dir, *args, env={"CURATE_LOOP_CRASH_AFTER": "25"})  # finishes round 1, dies in round 2
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [r["loop_round"] for r in loop_rounds(ws, "crash")] == [1, 2] and len(history(ws, "crash")) == 1
    done = _cli(ws_dir, *args, "--json", str(tmp_path / "loop.json"))
    assert done.returncode == 0, done.stderr
    assert "stop" in done.stdout and "rounds" in done.stdout

    with ws.store.read() as conn:
        answers = Counter(conn.scalars(select(Annotation.task_id).where(Annotation.kind == "answer")))
        tasks = list(conn.execute(select(Task.id, Task.status, Task.record_id)))
    assert len(tasks) == 60 and set(answers) == {t.id for t in tasks}
    assert set(answers.values()) == {1}, "a task was answered twice"
    assert all(t.status == "done" for t in tasks) and len({t.record_id for t in tasks}) == 60
    rounds = loop_rounds(ws, "crash")
    assert [r["loop_round"] for r in rounds] == [1, 2, 3] and [r["number"] for r in rounds] == [1, 2, 3]
    report = json.loads((tmp_path / "loop.json").read_text())
    assert [h["loop_round"] for h in report["history"]] == [1, 2, 3]
    assert len({h["round_id"] for h in report["history"]}) == 3 and report["stop_reason"] == "rounds"
    assert len(events(ws, "loop.eval")) == 3 and len(events(ws, "loop.round")) == 3
    verify = subprocess.run([sys.executable, "-m", "curate", "audit", "verify", "-w", str(ws_dir)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "intact" in verify.stdout


def test_numeric_classes_of_an_oracle_schema_are_in_numeric_order(workspace, tmp_path):
    """Classes 0..11 made from the gold: '2' before '10', so a class's position is its number."""
    from curate.loop.evaluation import loop_classes
    from curate.rounds.assignment import label_schema_id

    rows = [{"text": f"ticket {i} " + " ".join(CLASSES[sorted(CLASSES)[i % 4]][:3]), "label": i % 12}
            for i in range(48)]
    ingest(workspace, write_jsonl(tmp_path / "pool.jsonl", rows))
    config = LoopConfig(name="numbers", oracle="label")
    assert loop_classes(workspace, config) == tuple(str(i) for i in range(12))
    with workspace.store.read() as conn:
        assert label_schema_id(conn, "loop-numbers") is not None


def test_a_loops_overrules_count_its_own_rounds_only(workspace, tmp_path):
    from curate.loop.evaluation import answered_tasks, overrules

    seed_texts(workspace, tmp_path)
    first = run_loop(workspace, LoopConfig(name="first", rounds=3, budget=45, batch=15, oracle="label",
                                           min_gain_per_label=0), embedder=bow())
    second = run_loop(workspace, LoopConfig(name="second", rounds=1, budget=15, batch=15, oracle="label",
                                            min_gain_per_label=0), embedder=bow())
    answered = answered_tasks(workspace.store)
    own = {int(r["round_id"]) for r in second.rounds}
    assert second.history[-1]["overrules"] == sum(overrules([a for a in answered if a.round_id in own]).values())
    everywhere = sum(overrules(answered).values())
    assert everywhere > second.history[-1]["overrules"] and first.history[-1]["overrules"] > 0
