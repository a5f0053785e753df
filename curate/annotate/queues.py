"""An annotator's queue released: the tasks a disabled account has not answered go back to the others."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from curate.annotate.answers import refresh_status
from curate.store import audit
from curate.store.database import Store
from curate.store.schema import Assignment, Round, Task


def release_queue(store: Store, name: str, *, actor: str | None = None) -> dict[str, Any]:
    """Take the tasks ``name`` has not answered (open or skipped) out of their queue, as when the account is
    disabled: a task shared with others becomes final (done or disputed) on their answers, one nobody else holds
    becomes unassigned again, so ``curate assign`` gives it to someone else. Answers and drafts stay.

    Returns:
        ``{"released": n, "now_final": n, "unassigned": n, "rounds": [round numbers of the unassigned]}``.
    """
    with store.write() as conn:
        ids = [int(t) for t in conn.scalars(select(Assignment.task_id).where(
            Assignment.annotator == name, Assignment.status.in_(("open", "skipped"))))]
        if ids:
            conn.execute(delete(Assignment).where(Assignment.annotator == name, Assignment.task_id.in_(ids)))
        holders = {int(t) for t in conn.scalars(select(Assignment.task_id).where(Assignment.task_id.in_(ids)))}
        final = 0
        for task in conn.execute(select(Task).where(Task.id.in_(holders))).all():
            final += refresh_status(conn, task) in ("done", "disputed")
        alone = [t for t in ids if t not in holders]
        rounds = sorted({int(n) for n in conn.scalars(select(Round.number).join(Task, Task.round_id == Round.id)
                                                      .where(Task.id.in_(alone)))})
        report = {"released": len(ids), "now_final": final, "unassigned": len(alone), "rounds": rounds}
        if ids:
            audit.append(conn, "assign.release", {"user": name, **report}, actor=actor)
    return report
