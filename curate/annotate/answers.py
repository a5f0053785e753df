"""Annotating: what a person sees for a task, and every way their answer is stored.

Every function takes the acting user's name and checks it on the server: an annotator can only fetch, draft,
submit, skip or undo tasks in their own queue; adjudication needs the reviewer role. Answers are append-only
:class:`~curate.store.schema.Annotation` rows written in the same transaction as their audit event, so an answer is
committed before the app acknowledges it. An undo is a ``retract`` row that supersedes the answer; a person's
current answer to a task is their latest row (none if it is a retract).

Values (what the app sends; positions are as displayed):

- rank, two responses: ``{"choice": "A" | "B" | "tie" | "both_bad", "note": str}``; stored with
  ``preferred``: ``chosen`` / ``rejected`` / ``tie`` / ``both_bad`` (the display order is shuffled per task).
- rank, several candidates: ``{"order": [display positions, best first]}``; stored as original indices.
- rewrite: ``{"completion": str, "accepted_as_is": bool}``.
- label: ``{"label": one of the schema's classes}``.

Answers of several people to one task agree when they share :func:`dispute_key` (the class, the preferred response
or order, or a rewrite's text up to whitespace); otherwise the task is ``disputed`` and waits in the reviewers'
queue (:func:`disputes`, :func:`pending_disputes`) for a decision (:func:`adjudicate`) of the same shape as an answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update

from curate.annotate.task_views import TaskView, build_view, display_order
from curate.annotate.values import MAX_NOTE_CHARS, MAX_REWRITE_CHARS, dispute_key, normalise_value
from curate.errors import AccessError, InputError, TaskStateError
from curate.runtime.faults import maybe_crash
from curate.store import audit
from curate.store.accounts import get_account, require
from curate.store.database import Store
from curate.store.schema import Annotation, Assignment, Draft, Task, utcnow

MAX_TASK_ID = 2**63 - 1  # the largest id the database holds


@dataclass(frozen=True, slots=True)
class Submitted:
    """The stored annotation's id, the task's status after it, and the next task in the person's queue."""

    annotation_id: int
    task_status: str
    next_task_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def check_task_id(task_id: Any) -> int:
    """``task_id`` if it can be a task's id; InputError otherwise (not a whole number, or out of range)."""
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise InputError(f"task id must be a whole number (as next_task returns it); got {type(task_id).__name__}")
    if not 1 <= task_id <= MAX_TASK_ID:
        shown = task_id if abs(task_id) < 10**30 else "(a number out of range)"
        raise InputError(f"no task {shown}: task ids are whole numbers from 1 (as next_task returns them)")
    return task_id


def _check_seconds(seconds: Any) -> None:
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
        raise InputError(f"seconds must be a number (the time spent on the task) or null; got "
                         f"{type(seconds).__name__}")


def _encode(value: Any, what: str) -> str:
    """``value`` as stored JSON text; InputError (not a crash) when JSON cannot hold it."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, RecursionError) as exc:  # orjson.JSONEncodeError is a TypeError
        raise InputError(f"{what} cannot be stored ({exc}): send text without unpaired surrogates, integers "
                         "within 64 bits and at most 250 levels of nesting") from None


def _assignment(conn: Connection, task_id: int, user: str) -> Any:
    row = conn.execute(select(Assignment).where(Assignment.task_id == task_id, Assignment.annotator == user)).first()
    if row is None:
        raise AccessError(f"task {task_id} is not in {user}'s queue")
    return row


def _task(conn: Connection, task_id: int) -> Any:
    row = conn.execute(select(Task).where(Task.id == task_id)).first()
    if row is None:
        raise InputError(f"no task {task_id}: check the id (next_task and disputes list the tasks you can act on)")
    return row


def next_task_id(conn: Connection, user: str, *, statuses: tuple[str, ...] = ("open", "skipped"),
                 besides: int | None = None) -> int | None:
    """The first open task of ``user``'s queue; skipped ones come back once the open ones are done.

    ``statuses``: the assignment statuses looked at, in turn; ``besides``: a task id left out.
    """
    for status in statuses:
        query = (select(Assignment.task_id).join(Task, Task.id == Assignment.task_id)
                 .where(Assignment.annotator == user, Assignment.status == status, Task.status.in_(("open", "done")))
                 .order_by(Assignment.position).limit(1))
        found = conn.scalar(query if besides is None else query.where(Assignment.task_id != besides))
        if found is not None:
            return int(found)
    return None


def upcoming_view(store: Store, user: str, after_task_id: int) -> TaskView | None:
    """Read-only view of the open task that follows ``after_task_id`` in ``user``'s queue (None at the end).

    Starts no clock and writes nothing: the app renders it while the expert reads the current task.
    """
    with store.read() as conn:
        found = next_task_id(conn, user, statuses=("open",), besides=after_task_id)
        return None if found is None else build_view(conn, _task(conn, found), store=store)


def queue_counts(conn: Connection, user: str) -> dict[str, int]:
    """``{"open": n, "skipped": n, "done": n}`` for ``user``'s queue."""
    counts = {"open": 0, "skipped": 0, "done": 0}
    for status in conn.scalars(select(Assignment.status).where(Assignment.annotator == user)):
        counts[status] = counts.get(status, 0) + 1
    return counts


def get_task(store: Store, user: str | None, task_id: int | None = None) -> TaskView | None:
    """The view of ``task_id`` (default: the next task in the queue), or None when the queue is empty.

    Fetching a task starts its clock (seconds spent are measured on the server).
    """
    account = get_account(store, user)
    if task_id is not None:
        check_task_id(task_id)
    with store.write() as conn:
        if task_id is None:
            task_id = next_task_id(conn, account.name)
            if task_id is None:
                return None
        assignment = _assignment(conn, task_id, account.name)
        if assignment.opened_at is None or assignment.status != "done":
            conn.execute(update(Assignment).where(Assignment.id == assignment.id).values(opened_at=utcnow()))
        draft_raw = conn.scalar(select(Draft.value).where(Draft.task_id == task_id, Draft.annotator == account.name))
        view = build_view(conn, _task(conn, task_id), store=store)
        view.status = assignment.status
        view.draft = orjson.loads(draft_raw) if draft_raw else None
        view.queue = queue_counts(conn, account.name)
    return view


def save_draft(store: Store, user: str | None, task_id: int, value: dict[str, Any]) -> None:
    """Keep what ``user`` has typed on ``task_id`` (replaces the previous draft)."""
    account = get_account(store, user)
    check_task_id(task_id)
    if not isinstance(value, dict):
        raise InputError(f"task {task_id}: a draft must be an object, like an answer; got {type(value).__name__}")
    raw = _encode(value, f"task {task_id}: the draft")
    if len(raw) > MAX_REWRITE_CHARS + MAX_NOTE_CHARS + 1000:
        raise InputError(f"draft for task {task_id} is too long ({len(raw):,} characters)")
    with store.write() as conn:
        if _assignment(conn, task_id, account.name).status == "done":
            raise TaskStateError(f"task {task_id} is already answered; undo it to change the answer")
        conn.execute(delete(Draft).where(Draft.task_id == task_id, Draft.annotator == account.name))
        conn.execute(insert(Draft).values(task_id=task_id, annotator=account.name, value=raw, updated_at=utcnow()))


def _as_displayed(task: Any, value: dict[str, Any]) -> dict[str, Any]:
    """A stored answer as a draft in display terms: a candidates order becomes ``order_shown`` (on-screen
    positions, best first), the form the app saves drafts in."""
    if task.type == "rank" and isinstance(value.get("order"), list):
        order = display_order(int(task.id), len(value["order"]))
        rest = {k: v for k, v in value.items() if k != "order"}
        return {**rest, "order_shown": [order.index(int(i)) for i in value["order"]]}
    return value


def current_answers(conn: Connection, task_id: int) -> dict[str, Any]:
    """``{annotator: annotation row}`` of each person's current answer (retracted ones left out)."""
    latest: dict[str, Any] = {}
    for row in conn.execute(select(Annotation).where(Annotation.task_id == task_id, Annotation.kind != "adjudication")
                            .order_by(Annotation.id)):
        latest[row.annotator] = row
    return {name: row for name, row in latest.items() if row.kind == "answer"}


def refresh_status(conn: Connection, task: Any) -> str:
    """A task's status from its assignments and answers: done or disputed once every assignee answered; stored."""
    assigned = conn.scalars(select(Assignment.status).where(Assignment.task_id == task.id)).all()
    if task.status == "adjudicated":
        return "adjudicated"
    status = "open"
    if assigned and all(s == "done" for s in assigned):
        keys = {dispute_key(task.type, orjson.loads(r.value)) for r in current_answers(conn, task.id).values()}
        status = "disputed" if len(keys - {None}) > 1 else "done"
    conn.execute(update(Task).where(Task.id == task.id).values(status=status))
    return status


def _claim(conn: Connection, statement: Any, message: str) -> None:
    """Run a conditional UPDATE that moves a row out of the state the action needs; TaskStateError if no row
    moved (a concurrent request got there first: on PostgreSQL the UPDATE waits for its row lock, then re-checks)."""
    if conn.execute(statement).rowcount != 1:
        raise TaskStateError(message)


def _provenance(task: Any) -> dict[str, Any]:
    return {"round_id": task.round_id, "model_version_id": task.model_version_id,
            "acquisition_score": task.acquisition_score, "strategy_key": task.strategy_key,
            "random_mix": bool(task.random_mix), "label_schema_id": task.label_schema_id}


def _seconds(opened_at: str | None, client_seconds: float | None) -> float | None:
    if client_seconds is not None and 0 <= client_seconds < 86_400:
        return round(float(client_seconds), 3)
    if opened_at:
        from datetime import datetime

        return round((datetime.fromisoformat(utcnow()) - datetime.fromisoformat(opened_at)).total_seconds(), 3)
    return None


def submit(store: Store, user: str | None, task_id: int, value: Any, *,
           seconds: float | None = None) -> Submitted:
    """Store ``user``'s answer to ``task_id`` (committed with its audit event before this returns).

    Raises:
        AccessError: not logged in, or the task is not in the user's queue.
        TaskStateError: already answered (undo first) or the task is closed (adjudicated).
        InputError: the answer does not fit the task.
    """
    account = get_account(store, user)
    check_task_id(task_id)
    _check_seconds(seconds)
    with store.write() as conn:
        assignment = _assignment(conn, task_id, account.name)
        task = _task(conn, task_id)
        if task.status in ("adjudicated", "disputed"):
            raise TaskStateError(f"task {task_id} is closed ({task.status}); it cannot take new answers")
        if assignment.status == "done":
            raise TaskStateError(f"task {task_id} is already answered by {account.name}; undo it to change it")
        stored = normalise_value(conn, task, value)
        raw = _encode(stored, f"task {task_id}: the answer")
        _claim(conn, update(Assignment).where(Assignment.id == assignment.id, Assignment.status != "done")
               .values(status="done"), f"task {task_id} is already answered by {account.name}; undo it to change it")
        previous = conn.scalar(select(Annotation.supersedes_id).where(
            Annotation.task_id == task_id, Annotation.annotator == account.name, Annotation.kind == "retract")
            .order_by(Annotation.id.desc()).limit(1))
        ann_id = int(conn.execute(insert(Annotation).values(
            task_id=task_id, annotator=account.name, value=raw, kind="answer", created_at=utcnow(),
            seconds_spent=_seconds(assignment.opened_at, seconds), supersedes_id=previous, **_provenance(task),
        ).returning(Annotation.id)).scalar_one())
        conn.execute(delete(Draft).where(Draft.task_id == task_id, Draft.annotator == account.name))
        status = refresh_status(conn, task)
        audit.append(conn, "annotate", {"annotation_id": ann_id, "task_id": task_id, "kind": "answer",
                                        "value_sha256": hashlib.sha256(raw.encode()).hexdigest()},
                     actor=account.name)
        following = next_task_id(conn, account.name)
        maybe_crash("annotate.commit")  # tests only: SIGKILL before the commit (curate.runtime.faults)
    maybe_crash("annotate.ack")  # tests only: SIGKILL after the commit, before the acknowledgement
    return Submitted(ann_id, status, following)


def skip(store: Store, user: str | None, task_id: int) -> int | None:
    """Move ``task_id`` to the end of ``user``'s queue; returns the next task id."""
    account = get_account(store, user)
    check_task_id(task_id)
    with store.write() as conn:
        assignment = _assignment(conn, task_id, account.name)
        if assignment.status == "done":
            raise TaskStateError(f"task {task_id} is already answered; nothing to skip")
        last = conn.scalar(select(func.max(Assignment.position)).where(Assignment.annotator == account.name))
        # to the end of the queue for real: skipped tasks come back in the order they were skipped, so skipping
        # the first of them again reaches the others (it used to come back at once)
        conn.execute(update(Assignment).where(Assignment.id == assignment.id)
                     .values(status="skipped", position=int(last or 0) + 1))
        audit.append(conn, "skip", {"task_id": task_id}, actor=account.name)
        return next_task_id(conn, account.name)


def undo_last(store: Store, user: str | None) -> int:
    """Retract ``user``'s latest answer (a superseding ``retract`` row); returns its task id, open again.

    The retracted answer becomes the task's draft, so the person sees what they had chosen.

    Raises:
        TaskStateError: nothing to undo, or the task has been adjudicated.
    """
    account = get_account(store, user)
    with store.write() as conn:
        last = conn.execute(select(Annotation).where(Annotation.annotator == account.name,
                                                     Annotation.kind.in_(("answer", "retract")))
                            .order_by(Annotation.id.desc()).limit(1)).first()
        if last is None:
            raise TaskStateError(f"{account.name} has no submission to undo")
        if last.kind != "answer":
            raise TaskStateError(f"{account.name}'s latest submission is undone already: only the latest one can be "
                                 "undone (answer that task again, then undo is possible again)")
        task = _task(conn, last.task_id)
        if task.status == "adjudicated":
            raise TaskStateError(f"task {task.id} has been adjudicated by a reviewer; it cannot be undone")
        _claim(conn, update(Assignment).where(Assignment.task_id == task.id, Assignment.annotator == account.name,
                                              Assignment.status == "done").values(status="open", opened_at=utcnow()),
               f"task {task.id} was already undone")
        retract_id = int(conn.execute(insert(Annotation).values(
            task_id=task.id, annotator=account.name, value=None, kind="retract", supersedes_id=last.id,
            created_at=utcnow(), **_provenance(task),
        ).returning(Annotation.id)).scalar_one())
        conn.execute(delete(Draft).where(Draft.task_id == task.id, Draft.annotator == account.name))
        conn.execute(insert(Draft).values(task_id=task.id, annotator=account.name, updated_at=utcnow(),
                                          value=orjson.dumps(_as_displayed(task, orjson.loads(last.value))).decode()))
        conn.execute(update(Task).where(Task.id == task.id).values(status="open"))
        audit.append(conn, "annotate", {"annotation_id": retract_id, "task_id": task.id, "kind": "retract",
                                        "supersedes": last.id}, actor=account.name)
    return int(task.id)


def pending_disputes(store: Store, user: str | None) -> int:
    """How many disputed tasks wait for a decision, for ``user``: 0 unless they have the reviewer role.

    One count query, cheap enough for every page load: the app opens a reviewer on the adjudication queue when
    it is not empty.

    Raises:
        AccessError: not logged in (or the account is disabled).
    """
    if not get_account(store, user).can("reviewer"):
        return 0
    with store.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(Task).where(Task.status == "disputed")) or 0)


def disputes(store: Store, user: str | None) -> list[dict[str, Any]]:
    """Disputed tasks for a reviewer, by task id: each ``{"task_id", "view", "answers"}``.

    ``view`` is the task's :class:`TaskView`; ``answers`` are the current answers in disagreement, by annotator:
    ``{"annotation_id", "annotator", "value"}`` with values as stored (see the module doc). For a rewrite task
    ``view.completion`` is the original and each value's ``completion`` one person's full rewrite (the original
    itself when ``accepted_as_is``): what a side-by-side diff needs. The decision goes to :func:`adjudicate`.
    """
    require(store, user, "reviewer")
    with store.read() as conn:
        tasks = conn.execute(select(Task).where(Task.status == "disputed").order_by(Task.id)).all()
        out = []
        for task in tasks:
            answers = current_answers(conn, task.id)
            out.append({"task_id": task.id, "view": build_view(conn, task, store=store),
                        "answers": [{"annotation_id": r.id, "annotator": name, "value": orjson.loads(r.value)}
                                    for name, r in sorted(answers.items())]})
    return out


def adjudicate(store: Store, user: str | None, task_id: int, value: Any, *,
               seconds: float | None = None) -> Submitted:
    """A reviewer's final decision on a disputed task, linking the answers it decided between.

    The decision has the shape of an answer to the task: for a rewrite ``{"completion": str, "accepted_as_is":
    bool}``, one of the rewrites or a merged text (``accepted_as_is`` keeps the original). It becomes the task's
    final answer (:func:`final_annotations`), what exports use.
    """
    account = require(store, user, "reviewer")
    check_task_id(task_id)
    _check_seconds(seconds)
    with store.write() as conn:
        task = _task(conn, task_id)
        if task.status != "disputed":
            raise TaskStateError(f"task {task_id} is {task.status}, not disputed; only disputes are adjudicated")
        stored = normalise_value(conn, task, value)
        raw = _encode(stored, f"task {task_id}: the decision")
        _claim(conn, update(Task).where(Task.id == task_id, Task.status == "disputed").values(status="adjudicated"),
               f"task {task_id} was adjudicated by someone else a moment ago")
        originals = sorted(r.id for r in current_answers(conn, task_id).values())
        ann_id = int(conn.execute(insert(Annotation).values(
            task_id=task_id, annotator=account.name, value=raw, kind="adjudication", created_at=utcnow(),
            seconds_spent=_seconds(None, seconds), adjudicates=orjson.dumps(originals).decode(), **_provenance(task),
        ).returning(Annotation.id)).scalar_one())
        audit.append(conn, "adjudicate", {"annotation_id": ann_id, "task_id": task_id, "originals": originals,
                                          "value_sha256": hashlib.sha256(raw.encode()).hexdigest()},
                     actor=account.name)
    return Submitted(ann_id, "adjudicated", None, {"originals": originals})


def final_annotations(conn: Connection) -> dict[int, Any]:
    """``{task id: annotation row}``: the reviewer's decision where adjudicated, else the latest current answer
    of a task whose answers agree (``done``). Disputed and open tasks have none."""
    out: dict[int, Any] = {}
    for row in conn.execute(select(Annotation).join(Task, Task.id == Annotation.task_id)
                            .where(Annotation.kind == "adjudication", Task.status == "adjudicated")
                            .order_by(Annotation.id)):
        out[int(row.task_id)] = row
    for task_id in conn.scalars(select(Task.id).where(Task.status == "done")):
        answers = current_answers(conn, int(task_id))
        if answers and int(task_id) not in out:
            out[int(task_id)] = max(answers.values(), key=lambda r: r.id)
    return out
