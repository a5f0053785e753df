"""Kill -9 during scoring, selection, an annotation submit and an export: after a restart the workspace is
consistent, no answer is lost or duplicated, finished score batches are not recomputed, and no half-written
export looks complete.

Each scenario runs the real command in a subprocess (``python -m curate ...`` or a short ``python -c``) on the
test's database (a SQLite file, or a PostgreSQL server with ``CURATE_TEST_PG_URL``) and kills it with SIGKILL
at a controlled point: from outside, once the database shows the state to kill in, or from inside with the
test-only hook ``CURATE_FAULT=SITE:N`` (:mod:`curate.runtime.faults`) where the window is too short to hit from outside.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from curate.annotate.answers import get_task, submit
from curate.errors import TaskStateError
from curate.export.writer import export, remove_stale_temp
from curate.ingest.sources import ingest
from curate.scorers.cache import DEFAULT_BATCH
from curate.store.schema import Annotation, Assignment, AuditEvent, ModelVersion, Round, ScoreRow, Task
from curate.store.workspace import Workspace
from tests.annotation_setup import seed
from tests.reliability.fault_helpers import (
    SUBMIT_CHILD,
    assert_cli_verify,
    assert_consistent,
    assert_killed,
    child_env,
    cli_argv,
    count,
    json_file,
    kill_when,
    run_cli,
    run_python,
)
from tests.reliability.fault_scorer import DELAY_ENV, LOG_ENV, SPEC, RecordingLength, logged_ids

pytestmark = pytest.mark.timeout(600)

N_TEXTS = 2 * DEFAULT_BATCH + 276  # three batches: two full ones and a short one
SCORER_KEY = RecordingLength().key()


def ingest_texts(ws: Workspace, tmp_path: Path, n: int) -> list[str]:
    """``n`` distinct texts in the pool; returns their ids in id order (the order they are scored in)."""
    path = tmp_path / f"texts-{n}.jsonl"
    path.write_text("".join(json.dumps({"text": f"message {i}: " + "word " * (i % 23)}) + "\n" for i in range(n)),
                    encoding="utf-8")
    ingest(ws, path)
    return [r.id for r in ws.store.iter_records()]


def stored_scores(ws: Workspace) -> set[str]:
    """Ids of the records with a stored score under the test scorer's key."""
    with ws.store.read() as conn:
        return set(conn.scalars(select(ScoreRow.record_id).where(ScoreRow.scorer_key == SCORER_KEY)))


def audit_events(ws: Workspace, action: str) -> list[dict[str, object]]:
    with ws.store.read() as conn:
        return [json.loads(p) for p in conn.scalars(select(AuditEvent.payload).where(AuditEvent.action == action)
                                                    .order_by(AuditEvent.seq))]


# --- scoring -------------------------------------------------------------------------------------------------


def test_kill_during_scoring_keeps_finished_batches_and_the_rerun_computes_only_the_rest(workspace, tmp_path):
    ids = ingest_texts(workspace, tmp_path, N_TEXTS)
    logs = [tmp_path / f"run{i}.log" for i in range(3)]
    # 1. killed from outside while the (slow) scorer is busy with the second batch: only the first is stored
    child, _ = kill_when(cli_argv(workspace, "score", "--scorer", SPEC),
                         lambda: len(logged_ids(logs[0])) > DEFAULT_BATCH,
                         env=child_env(**{LOG_ENV: str(logs[0]), DELAY_ENV: "0.8"}))
    assert_killed(child)
    assert logged_ids(logs[0]) == ids[: 2 * DEFAULT_BATCH]  # it had started the second batch ...
    assert stored_scores(workspace) == set(ids[:DEFAULT_BATCH]), "only the finished batch may be stored"
    assert_consistent(workspace)

    # 2. the restart is killed (CURATE_FAULT) right after its first batch commits: that batch is kept as well
    killed = run_cli(workspace, "score", "--scorer", SPEC, fault="score.batch:1", **{LOG_ENV: str(logs[1])})
    assert_killed(killed)
    assert logged_ids(logs[1]) == ids[DEFAULT_BATCH : 2 * DEFAULT_BATCH], "finished batches are not recomputed"
    assert stored_scores(workspace) == set(ids[: 2 * DEFAULT_BATCH])
    assert audit_events(workspace, "score") == []  # neither run finished
    assert_consistent(workspace)

    # 3. the next run computes exactly the unfinished records
    done = run_cli(workspace, "score", "--scorer", SPEC, "--json", str(tmp_path / "score.json"),
                   **{LOG_ENV: str(logs[2])})
    assert done.returncode == 0, done.stderr
    report = json_file(tmp_path / "score.json")
    assert (report["records"], report["cached"], report["computed"]) == (N_TEXTS, 2 * DEFAULT_BATCH, 276)
    assert logged_ids(logs[2]) == ids[2 * DEFAULT_BATCH :]
    assert stored_scores(workspace) == set(ids)
    (event,) = audit_events(workspace, "score")
    assert (event["cached"], event["computed"]) == (2 * DEFAULT_BATCH, 276)
    assert_consistent(workspace)


# --- selection -----------------------------------------------------------------------------------------------


def _rounds(ws: Workspace) -> list[tuple[int, int, int]]:
    """``(round id, number, tasks)`` of every round, by number."""
    with ws.store.read() as conn:
        rounds = conn.execute(select(Round.id, Round.number).order_by(Round.number)).all()
        return [(int(r.id), int(r.number), int(conn.scalar(select(func.count(Task.id)).where(Task.round_id == r.id))
                                               or 0)) for r in rounds]


def test_kill_inside_the_round_transaction_leaves_no_round_and_no_tasks(workspace, tmp_path):
    ingest_texts(workspace, tmp_path, 60)
    select_args = ("select", "--scorer", SPEC, "-k", "5", "--random-mix", "0", "--dedup", "1")
    killed = run_cli(workspace, *select_args, fault="round.commit")
    assert_killed(killed)
    assert _rounds(workspace) == [] and count(workspace, Task.id) == 0  # neither the round nor any task
    assert count(workspace, ModelVersion.id) == 0 and audit_events(workspace, "round") == []
    assert len(stored_scores(workspace)) == 60  # the scores were committed before the round: kept
    assert_consistent(workspace)

    done = run_cli(workspace, *select_args, "--json", str(tmp_path / "r1.json"))
    assert done.returncode == 0, done.stderr
    first = json_file(tmp_path / "r1.json")
    assert (first["round"], first["tasks"]) == (1, 5)
    assert (first["scoring"]["cached"], first["scoring"]["computed"]) == (60, 0)
    assert [(n, t) for _, n, t in _rounds(workspace)] == [(1, 5)]  # exactly one round

    killed = run_cli(workspace, *select_args, fault="round.commit")  # the next round dies the same way
    assert_killed(killed)
    assert [(n, t) for _, n, t in _rounds(workspace)] == [(1, 5)] and count(workspace, Task.id) == 5

    done = run_cli(workspace, *select_args, "--json", str(tmp_path / "r2.json"))
    assert done.returncode == 0, done.stderr
    assert json_file(tmp_path / "r2.json")["round"] == 2
    rounds = _rounds(workspace)
    assert [(n, t) for _, n, t in rounds] == [(1, 5), (2, 5)]  # numbered without a gap, every round complete
    with workspace.store.read() as conn:
        records = list(conn.scalars(select(Task.record_id)))
        orphans = conn.scalar(select(func.count(Task.id)).where(Task.round_id.not_in([r for r, _, _ in rounds])))
    assert orphans == 0 and len(records) == len(set(records)) == 10
    assert [e["number"] for e in audit_events(workspace, "round")] == [1, 2]
    assert_consistent(workspace)


# --- annotation submit ---------------------------------------------------------------------------------------

ANSWER = '{"choice": "A"}'


def _answers(ws: Workspace, task_id: int, user: str = "ann") -> list[int]:
    with ws.store.read() as conn:
        return [int(i) for i in conn.scalars(select(Annotation.id).where(
            Annotation.task_id == task_id, Annotation.annotator == user).order_by(Annotation.id))]


def _assignment_status(ws: Workspace, task_id: int, user: str = "ann") -> str:
    with ws.store.read() as conn:
        return str(conn.scalar(select(Assignment.status).where(Assignment.task_id == task_id,
                                                               Assignment.annotator == user)))


def _submit_child(ws: Workspace, task_id: int, *, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_python(SUBMIT_CHILD, str(ws.root), ws.db_url, "ann", str(task_id), ANSWER, fault=fault)


def test_kill_before_the_submit_commits_keeps_the_task_open(workspace, tmp_path):
    task_id = seed(workspace, tmp_path).rank[0]
    killed = _submit_child(workspace, task_id, fault="annotate.commit")
    assert_killed(killed)
    assert "ack" not in killed.stdout  # the person was never told it was saved ...
    assert _answers(workspace, task_id) == []  # ... and it was not: no row, the assignment still open
    assert _assignment_status(workspace, task_id) == "open" and audit_events(workspace, "annotate") == []
    view = get_task(workspace.store, "ann")
    assert view is not None and view.task_id == task_id  # the task is offered again
    assert_consistent(workspace)

    again = _submit_child(workspace, task_id)
    assert again.returncode == 0 and again.stdout.startswith("ack"), again.stderr
    assert len(_answers(workspace, task_id)) == 1
    assert_consistent(workspace)


def test_kill_after_the_submit_commits_keeps_exactly_one_answer(workspace, tmp_path):
    seeded = seed(workspace, tmp_path)
    task_id = seeded.rank[0]
    killed = _submit_child(workspace, task_id, fault="annotate.ack")
    assert_killed(killed)
    assert "ack" not in killed.stdout  # killed before the acknowledgement, after the commit:
    (answer_id,) = _answers(workspace, task_id)  # the answer is stored, once
    assert _assignment_status(workspace, task_id) == "done"
    assert [e["annotation_id"] for e in audit_events(workspace, "annotate")] == [answer_id]
    # the app (restarted) resubmits the same answer: refused, nothing duplicated
    with pytest.raises(TaskStateError, match="already answered"):
        submit(workspace.store, "ann", task_id, json.loads(ANSWER))
    assert _answers(workspace, task_id) == [answer_id]
    view = get_task(workspace.store, "ann")
    assert view is not None and view.task_id == seeded.rank[1]  # the queue moved on
    assert_consistent(workspace)


# --- export --------------------------------------------------------------------------------------------------


def _answered(ws: Workspace, tmp_path: Path) -> None:
    """The seeded workspace with its four rank tasks answered alike by ann and bob (four DPO rows)."""
    seeded = seed(ws, tmp_path)
    for user in ("ann", "bob"):
        for task_id in seeded.rank:
            submit(ws.store, user, task_id, {"choice": "A"})


def _temp_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_kill_during_export_leaves_no_complete_looking_folder(workspace, tmp_path):
    _answered(workspace, tmp_path)
    reference = export(workspace, "dpo", workspace.exports_dir / "reference")  # an uninterrupted run
    out = workspace.exports_dir / "dpo"
    args = ("export", "--format", "dpo", "--out", str(out))  # --to hf, the default
    # 1. killed with the temp folder half written (the data, no provenance, manifest or card yet)
    killed = run_cli(workspace, *args, fault="export.write")
    assert_killed(killed)
    assert not out.exists()  # nothing at --out: a reader cannot mistake the half-written files for an export
    (half,) = _temp_folders(out)
    names = {p.name for p in half.iterdir()}
    assert "dataset_dict.json" in names and not names & {"export.json", "provenance.jsonl", "README.md"}
    # 2. killed with the temp folder complete, just before the rename
    killed = run_cli(workspace, *args, fault="export.replace")
    assert_killed(killed)
    assert not out.exists()
    (full,) = [p for p in _temp_folders(out) if p != half]
    assert {"dataset_dict.json", "export.json", "provenance.jsonl", "README.md"} <= {p.name for p in full.iterdir()}
    assert len(audit_events(workspace, "export")) == 1  # only the reference export is on record
    assert_consistent(workspace)

    # 3. the rerun writes the same content as the uninterrupted run and removes the crashes' temp folders
    done = run_cli(workspace, *args, "--json", str(tmp_path / "export.json"))
    assert done.returncode == 0, done.stderr
    assert json_file(tmp_path / "export.json")["content_hash"] == reference.content_hash
    assert json.loads((out / "export.json").read_text())["content_hash"] == reference.content_hash
    assert _temp_folders(out) == []
    hashes = [e["content_hash"] for e in audit_events(workspace, "export")]
    assert hashes == [reference.content_hash, reference.content_hash]
    assert_consistent(workspace)
    assert_cli_verify(workspace)


def test_stale_temp_clean_up_removes_only_old_temp_folders_of_that_export(tmp_path):
    out = tmp_path / "dpo"
    stale = tmp_path / ".dpo.ab_cd123"  # left by a killed export of dpo
    fresh = tmp_path / ".dpo.zz_zz999"  # an export of dpo running now
    other = tmp_path / ".dpo.b.ab_cd123"  # a killed export of "dpo.b": not ours
    lookalike = tmp_path / ".dpo.notatemp-folder"  # not mkdtemp's pattern
    for folder in (stale, fresh, other, lookalike):
        folder.mkdir()
        (folder / "train.jsonl").write_text("{}\n")
    as_file = tmp_path / ".dpo.abcdefgh"
    as_file.write_text("a file, not a folder")
    as_link = tmp_path / ".dpo.linklink"
    as_link.symlink_to(other, target_is_directory=True)
    now = time.time()
    for path in (stale, other, lookalike, as_file):
        os.utime(path, (now - 3600, now - 3600))
    os.utime(as_link, (now - 3600, now - 3600), follow_symlinks=False)
    assert remove_stale_temp(out, before=now - 1) == [stale]
    assert not stale.exists()
    assert all(p.exists() for p in (fresh, other, lookalike, as_file, as_link, other / "train.jsonl"))


def test_a_fault_fires_at_the_nth_arrival_only():
    code = ("from curate.runtime.faults import maybe_crash\n"
            "for i in range(3):\n    maybe_crash('demo'); print(i, flush=True)")
    killed = run_python(code, fault="other:1,demo:2")
    assert_killed(killed)
    assert killed.stdout.split() == ["0"]
    assert run_python(code).stdout.split() == ["0", "1", "2"]  # unset: never fires
