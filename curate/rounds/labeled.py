"""The records whose answer is known, for the scorers that learn (classifiers, committees, reward models).

* ``text`` records: a label from the source, or the final answer of a ``label`` task (which wins);
* preference pairs from the final answer of every ``rank`` task: a ``preference`` record oriented so that
  ``chosen`` is the response the expert preferred (a tie or "both bad" teaches nothing and is left out); a
  ``candidates`` record ranked by the expert gives its best response over its worst.

Final answers are :func:`curate.annotate.answers.final_annotations`: the reviewer's decision where there was one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from sqlalchemy import select

from curate.ingest.records import Record
from curate.store.schema import Task
from curate.store.workspace import Workspace


def ranked_pair(record: Record, answer: dict[str, Any]) -> Record | None:
    """The preference record a rank ``answer`` on ``record`` teaches (``chosen`` preferred), or ``None``.

    A ``preference`` record keeps its id (swapped when the expert preferred ``rejected``); a ``candidates``
    record becomes the pair best-over-worst of the expert's order, under the same id.
    """
    from curate.export.rows import RowOptions, training_rows

    rows = training_rows("dpo", "rank", record.fields, answer, RowOptions(ties="drop", pairs="best-worst"))
    if not rows:
        return None
    fields = {**{k: v for k, v in record.fields.items() if k not in ("completions", "chosen", "rejected")},
              **{k: rows[0][k] for k in ("chosen", "rejected")}}
    if "prompt" in rows[0] and "prompt" not in fields:
        fields["prompt"] = rows[0]["prompt"]
    return dataclasses.replace(record, kind="preference", fields=fields, label=None)


def labeled_records(ws: Workspace, *, kind: str | None = None) -> list[Record]:
    """Text records with a known label and preference pairs from final rank answers (module docstring), of the
    pool records of ``kind`` (all kinds when ``None``)."""
    from curate.annotate.answers import final_annotations

    pool = {r.id: r for r in ws.store.iter_records(kind=kind)}
    out: dict[str, Record] = {rid: r for rid, r in pool.items() if r.kind == "text" and r.label is not None}
    with ws.store.read() as conn:
        finals = final_annotations(conn)
        tasks = {int(t.id): t for t in conn.execute(select(Task).where(Task.id.in_(list(finals))))} if finals else {}
    for task_id, annotation in sorted(finals.items()):
        task = tasks.get(task_id)
        record = pool.get(task.record_id) if task is not None else None
        if task is None or record is None:
            continue
        answer = orjson.loads(annotation.value)
        if task.type == "label" and record.kind == "text" and isinstance(answer, dict) and "label" in answer:
            out[record.id] = dataclasses.replace(record, label=answer["label"])
        elif task.type == "rank" and record.kind in ("preference", "candidates") and isinstance(answer, dict):
            pair = ranked_pair(record, answer)
            if pair is not None:
                out[record.id] = pair
            else:
                out.pop(record.id, None)
    return list(out.values())
