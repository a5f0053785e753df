"""The annotation service: queues, server-side checks, answers stored with provenance, undo, adjudication."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select, update

from curate.annotate import answers as A
from curate.annotate.task_views import display_order
from curate.errors import AccessError, InputError, TaskStateError
from curate.rounds.assignment import assign_round, set_hide_suggestions
from curate.store.accounts import add_user
from curate.store.audit import verify
from curate.store.schema import Annotation, Assignment, Task
from tests.annotation_setup import PASSWORD, seed


@pytest.fixture
def seeded(workspace, tmp_path):
    return workspace, seed(workspace, tmp_path)


def _rows(ws, **where):
    with ws.store.read() as conn:
        stmt = select(Annotation).order_by(Annotation.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(Annotation, k) == v)
        return conn.execute(stmt).all()


def test_queue_order_and_views_per_type(seeded):
    ws, s = seeded
    first = A.get_task(ws.store, "ann")
    assert first is not None and first.task_id == s.rank[0] and first.type == "rank"
    assert len(first.responses) == 2 and sorted(first.response_names) == ["chosen", "rejected"]
    assert first.guidelines.startswith("Prefer the response") and first.queue == {"open": 9, "skipped": 0, "done": 0}
    # the suggestion "chosen" is shown as the letter where the chosen response is displayed
    order = display_order(first.task_id, 2)
    assert first.suggestion == "AB"[order.index(0)] and first.confidence == pytest.approx(0.7)
    rewrite = A.get_task(ws.store, "ann", s.rewrite[0])
    assert rewrite.prompt.startswith("Summarise") and rewrite.completion == "The invoice got paid 2 times."
    label = A.get_task(ws.store, "ann", s.label[0])
    assert label.classes == ["billing", "bug", "praise"] and label.text == "I was charged twice this month"
    assert (label.suggestion, label.schema) == ("billing", "topic v1")
    cands = A.get_task(ws.store, "bob", s.candidates[0])
    assert sorted(cands.responses) == ["4", "7", "9 is prime"]


def test_answers_are_stored_with_provenance_and_audited(seeded):
    ws, s = seeded
    view = A.get_task(ws.store, "ann", s.label[0])
    out = A.submit(ws.store, "ann", view.task_id, {"label": "billing"})
    assert out.task_status == "done" and out.next_task_id == s.rank[0]
    (row,) = _rows(ws, task_id=s.label[0])
    with ws.store.read() as conn:
        task = conn.execute(select(Task).where(Task.id == s.label[0])).one()
    assert (row.annotator, row.kind, orjson.loads(row.value)) == ("ann", "answer", {"label": "billing"})
    assert (row.round_id, row.strategy_key, row.acquisition_score, row.random_mix, row.model_version_id) == (
        task.round_id, task.strategy_key, task.acquisition_score, False, task.model_version_id)
    assert row.label_schema_id == task.label_schema_id is not None
    assert row.seconds_spent is not None and row.seconds_spent >= 0
    assert verify(ws.store).ok


def test_pair_choice_maps_to_the_data_columns(seeded):
    ws, s = seeded
    task_id = s.rank[1]
    order = display_order(task_id, 2)
    A.submit(ws.store, "ann", task_id, {"choice": "A", "note": "clearer"})
    (row,) = _rows(ws, task_id=task_id)
    assert orjson.loads(row.value) == {"choice": "A", "preferred": ["chosen", "rejected"][order[0]], "note": "clearer"}


def test_candidate_order_is_stored_as_original_indices(seeded):
    ws, s = seeded
    task_id = s.candidates[0]
    view = A.get_task(ws.store, "bob", task_id)
    best_first = sorted(range(3), key=lambda p: ["7", "9 is prime", "4"].index(view.responses[p]))
    A.submit(ws.store, "bob", task_id, {"order": best_first})
    assert orjson.loads(_rows(ws, task_id=task_id)[0].value)["order"] == [1, 2, 0]  # "7", "9 is prime", "4"


def test_server_refuses_what_the_user_may_not_do(seeded):
    ws, s = seeded
    with pytest.raises(AccessError, match="not in ann's queue"):
        A.get_task(ws.store, "ann", s.candidates[0])
    with pytest.raises(AccessError, match="not in ann's queue"):
        A.submit(ws.store, "ann", s.candidates[0], {"order": [0, 1, 2]})
    with pytest.raises(AccessError, match="not logged in"):
        A.get_task(ws.store, None)
    with pytest.raises(AccessError, match="not logged in"):
        A.get_task(ws.store, "mallory")
    with pytest.raises(AccessError, match="reviewer"):
        A.disputes(ws.store, "ann")
    with pytest.raises(InputError, match="label must be one of billing, bug, praise"):
        A.submit(ws.store, "ann", s.label[0], {"label": "spam"})
    with pytest.raises(InputError, match="non-empty completion"):
        A.submit(ws.store, "ann", s.rewrite[0], {"completion": "  "})
    A.submit(ws.store, "ann", s.label[0], {"label": "bug"})
    with pytest.raises(TaskStateError, match="already answered"):
        A.submit(ws.store, "ann", s.label[0], {"label": "billing"})
    assert len(_rows(ws)) == 1


def test_skip_moves_a_task_to_the_end_and_it_comes_back(seeded):
    ws, s = seeded
    assert A.skip(ws.store, "bob", s.rank[0]) == s.rank[1]
    for task_id in (*s.rank[1:], *s.candidates):
        view = A.get_task(ws.store, "bob")
        assert view.task_id == task_id
        A.submit(ws.store, "bob", task_id, {"choice": "tie"} if task_id in s.rank else {"order": [2, 1, 0]})
    assert A.get_task(ws.store, "bob").task_id == s.rank[0]


def test_undo_retracts_restores_the_draft_and_allows_a_new_answer(seeded):
    ws, s = seeded
    first = A.submit(ws.store, "ann", s.rewrite[0], {"completion": "The invoice was paid twice."})
    assert A.undo_last(ws.store, "ann") == s.rewrite[0]
    view = A.get_task(ws.store, "ann", s.rewrite[0])
    assert view.status == "open" and view.draft == {"completion": "The invoice was paid twice.",
                                                    "accepted_as_is": False}
    second = A.submit(ws.store, "ann", s.rewrite[0], {"accepted_as_is": True})
    rows = _rows(ws, task_id=s.rewrite[0])
    assert [r.kind for r in rows] == ["answer", "retract", "answer"]
    assert rows[1].supersedes_id == first.annotation_id and rows[2].supersedes_id == first.annotation_id
    assert orjson.loads(rows[2].value) == {"completion": "The invoice got paid 2 times.", "accepted_as_is": True}
    with ws.store.read() as conn:
        final = A.final_annotations(conn)
    assert final[s.rewrite[0]].id == second.annotation_id
    A.undo_last(ws.store, "ann")
    with pytest.raises(TaskStateError, match="latest submission is undone already: only the latest one can be"):
        A.undo_last(ws.store, "ann")


def test_drafts_survive_until_submitted(seeded):
    ws, s = seeded
    A.save_draft(ws.store, "ann", s.rewrite[1], {"completion": "Bonjour !"})
    assert A.get_task(ws.store, "ann", s.rewrite[1]).draft == {"completion": "Bonjour !"}
    with pytest.raises(AccessError):
        A.save_draft(ws.store, "bob", s.rewrite[1], {"completion": "x"})
    A.submit(ws.store, "ann", s.rewrite[1], {"completion": "Bonjour !"})
    assert A.get_task(ws.store, "ann", s.rewrite[1]).draft is None


def test_disagreement_goes_to_adjudication_and_the_decision_is_final(seeded):
    ws, s = seeded
    task_id = s.rank[0]
    agree = [A.submit(ws.store, who, s.rank[1], {"choice": "tie"}) for who in ("ann", "bob")]
    assert agree[-1].task_status == "done"
    a = A.submit(ws.store, "ann", task_id, {"choice": "A"})
    assert a.task_status == "open"  # bob has not answered yet
    b = A.submit(ws.store, "bob", task_id, {"choice": "B"})
    assert b.task_status == "disputed"
    (dispute,) = A.disputes(ws.store, "rita")
    assert dispute["task_id"] == task_id and [x["annotator"] for x in dispute["answers"]] == ["ann", "bob"]
    with pytest.raises(TaskStateError, match="closed"):
        A.submit(ws.store, "ann", task_id, {"choice": "B"})
    with pytest.raises(AccessError):
        A.adjudicate(ws.store, "ann", task_id, {"choice": "A"})
    with pytest.raises(TaskStateError, match="not disputed"):
        A.adjudicate(ws.store, "rita", s.rank[1], {"choice": "A"})
    decision = A.adjudicate(ws.store, "ada", task_id, {"choice": "B"})  # admins can review too
    (row,) = _rows(ws, kind="adjudication")
    assert orjson.loads(row.adjudicates) == sorted([a.annotation_id, b.annotation_id]) == decision.extra["originals"]
    with ws.store.read() as conn:
        final = A.final_annotations(conn)
    assert final[task_id].id == decision.annotation_id and final[s.rank[1]].annotator in ("ann", "bob")
    with pytest.raises(TaskStateError, match="adjudicated"):
        A.undo_last(ws.store, "bob")
    assert A.disputes(ws.store, "rita") == [] and verify(ws.store).ok


def test_hidden_suggestions_are_not_sent(seeded):
    ws, s = seeded
    set_hide_suggestions(ws.store, True, round_number=3)
    view = A.get_task(ws.store, "ann", s.label[0])
    assert view.suggestion is None and view.confidence is None and view.suggestions_hidden


def test_annotations_table_is_append_only(seeded):
    ws, s = seeded
    A.submit(ws.store, "ann", s.label[0], {"label": "bug"})
    with pytest.raises(Exception, match="append-only"), ws.store.write() as conn:
        conn.execute(update(Annotation).values(value='{"label": "praise"}'))
    assert orjson.loads(_rows(ws)[0].value) == {"label": "bug"}


def test_assignment_overlap_and_balance(workspace, tmp_path):
    s = seed(workspace, tmp_path, overlap_rank=False)
    with workspace.store.read() as conn:
        rank = conn.execute(select(Assignment.annotator).where(Assignment.task_id.in_(s.rank))).scalars().all()
    assert sorted(rank) == ["ann", "ann", "bob", "bob"]  # no overlap: each task once, balanced
    for name in ("cy", "dee", "eve"):
        add_user(workspace.store, name, "annotator", PASSWORD)
    from curate.rounds.tasks import create_round

    records = list(workspace.store.iter_records(kind="text"))
    import numpy as np

    create_round(workspace.store, records * 4, list(range(12)), scores=np.zeros(12), strategy_key="x")
    report = assign_round(workspace.store, ["cy", "dee", "eve"], overlap=0.5, copies=3, seed=1)
    assert report["tasks"] == 12 and report["overlapping_tasks"] == 6 and report["assignments"] == 6 + 6 * 3
    assert sorted(report["per_annotator"].values()) == [8, 8, 8]
    with pytest.raises(InputError, match="--copies"):
        assign_round(workspace.store, ["cy"], overlap=0.5, copies=2)
    with pytest.raises(InputError, match="no active account 'nobody'"):
        assign_round(workspace.store, ["nobody"])


def test_concurrent_submits_of_one_answer_store_it_once(seeded):
    """Two tabs (or an API retry) submitting the same task at once: one answer is stored, the other is refused."""
    import threading

    ws, s = seeded
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def submit() -> None:
        barrier.wait()
        try:
            A.submit(ws.store, "ann", s.label[0], {"label": "bug"})
            outcomes.append("stored")
        except TaskStateError:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "refused", "refused", "stored"]
    assert len(_rows(ws, task_id=s.label[0])) == 1 and verify(ws.store).ok


def test_skipping_the_first_skipped_task_again_reaches_the_others(seeded):
    """Only skipped tasks left: skipping the one shown moves it behind the others, so each is reachable."""
    ws, s = seeded
    first, second = s.rank[0], s.rank[1]
    A.skip(ws.store, "bob", first)
    A.skip(ws.store, "bob", second)
    for task_id in (*s.rank[2:], *s.candidates):
        A.submit(ws.store, "bob", task_id, {"choice": "tie"} if task_id in s.rank else {"order": [2, 1, 0]})
    assert A.get_task(ws.store, "bob").task_id == first
    assert A.skip(ws.store, "bob", first) == second
    assert A.skip(ws.store, "bob", second) == first


def test_disabling_an_annotator_releases_their_unanswered_tasks(seeded):
    """A disabled account's open tasks do not strand: shared ones become final on the others' answers, the rest
    are unassigned again and curate assign gives them out; assigning to it names the account, not a login."""
    from curate.annotate.queues import release_queue
    from curate.errors import InputError
    from curate.rounds.assignment import assign_round
    from curate.store.accounts import add_user, deactivate_user
    from curate.store.schema import Assignment, Task

    ws, s = seeded
    for task_id in s.rank:  # ann answers the shared rank tasks; bob does not
        A.submit(ws.store, "ann", task_id, {"choice": "A"})
    with ws.store.read() as conn:
        bobs = set(conn.scalars(select(Assignment.task_id).where(Assignment.annotator == "bob",
                                                                   Assignment.status == "open")))
    deactivate_user(ws.store, "bob")
    report = release_queue(ws.store, "bob")
    assert report["released"] == len(bobs) and report["now_final"] == len(s.rank)
    with ws.store.read() as conn:
        statuses = dict(conn.execute(select(Task.id, Task.status).where(Task.id.in_(s.rank))).all())
        unassigned = set(bobs) - set(conn.scalars(select(Assignment.task_id)))
    assert set(statuses.values()) == {"done"} and len(unassigned) == report["unassigned"]
    with pytest.raises(InputError, match="no active account 'bob' \\(unknown or disabled\\)"):
        assign_round(ws.store, ["bob"])
    add_user(ws.store, "cat", "annotator", "correct-horse-42")
    for number in report["rounds"]:
        assign_round(ws.store, ["cat"], round_number=number)
    with ws.store.read() as conn:
        assert unassigned <= set(conn.scalars(select(Assignment.task_id).where(Assignment.annotator == "cat")))
