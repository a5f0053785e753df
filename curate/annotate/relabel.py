"""Label-schema migration: carry annotations from older versions of a schema to the latest, explicitly.

Label-schema versions never mix silently. When a schema changes (``curate schema add`` stores a new version),
:func:`migrate_schema` maps each older class to a new one: answers whose class maps are re-stored under the new
version (a new annotation superseding the old; the old stays, append-only); answers whose class does not map are
retracted and their tasks go back to their annotators' queues, so the app asks for them again (the relabel
queue). A class whose name exists unchanged in the new version maps to itself.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from sqlalchemy import insert, select, update

from curate.annotate.answers import current_answers
from curate.errors import InputError
from curate.store import audit
from curate.store.database import Store
from curate.store.schema import Annotation, Assignment, LabelSchema, Task, utcnow


def _copy(row: Any, **changes: Any) -> dict[str, Any]:
    keep = ("task_id", "annotator", "value", "label_schema_id", "seconds_spent", "kind", "round_id",
            "model_version_id", "acquisition_score", "strategy_key", "random_mix", "adjudicates")
    return {**{k: getattr(row, k) for k in keep}, "supersedes_id": row.id, "created_at": utcnow(), **changes}


def migrate_schema(store: Store, name: str, mapping: dict[str, str], *, actor: str | None = None) -> dict[str, Any]:
    """Move the tasks and final answers of older versions of schema ``name`` to its latest version.

    Args:
        mapping: old class -> new class (new classes must exist in the latest version).

    Returns:
        ``{"to_version", "tasks", "migrated", "relabel", "by_mapping"}``: answers carried over, answers sent back
        to the relabel queue, and how many went through each ``old -> new`` pair.
    """
    with store.write() as conn:
        versions = conn.execute(select(LabelSchema).where(LabelSchema.name == name)
                                .order_by(LabelSchema.version)).all()
        if len(versions) < 2:
            raise InputError(f"label schema {name!r} has {len(versions)} version(s); add the new version first "
                             "with: curate schema add NAME --classes ...")
        latest = versions[-1]
        new_classes = list(orjson.loads(latest.classes))
        bad = {k: v for k, v in mapping.items() if v not in new_classes}
        if bad:
            raise InputError(f"--map targets must be classes of {name} v{latest.version} "
                             f"({', '.join(new_classes)}); not: {', '.join(sorted(set(bad.values())))}")
        full = {c: c for c in new_classes} | dict(mapping)
        old_ids = [int(v.id) for v in versions[:-1]]
        tasks = conn.execute(select(Task).where(Task.label_schema_id.in_(old_ids))).all()
        used: Counter[str] = Counter()
        migrated = relabel = 0
        for task in tasks:
            answers = list(current_answers(conn, int(task.id)).values())
            adjudication = conn.execute(select(Annotation).where(Annotation.task_id == task.id,
                                                                 Annotation.kind == "adjudication")
                                        .order_by(Annotation.id.desc()).limit(1)).first()
            rows = answers + ([adjudication] if adjudication is not None and task.status == "adjudicated" else [])
            lost = False
            for row in rows:
                old = orjson.loads(row.value).get("label")
                if old in full:
                    value = orjson.dumps({"label": full[old]}).decode()
                    conn.execute(insert(Annotation).values(_copy(row, value=value, label_schema_id=latest.id)))
                    used[f"{old} -> {full[old]}"] += 1
                    migrated += 1
                elif row.kind == "answer":
                    conn.execute(insert(Annotation).values(_copy(row, value=None, kind="retract",
                                                                 label_schema_id=latest.id)))
                    conn.execute(update(Assignment).where(Assignment.task_id == task.id,
                                                          Assignment.annotator == row.annotator)
                                 .values(status="open"))
                    relabel += 1
                    lost = True
                else:
                    lost = True
            status = task.status
            if lost:
                status = "open"
                if task.status == "adjudicated":  # the decision no longer holds: everybody answers again
                    for row in answers:
                        conn.execute(insert(Annotation).values(_copy(row, value=None, kind="retract",
                                                                     label_schema_id=latest.id)))
                    conn.execute(update(Assignment).where(Assignment.task_id == task.id).values(status="open"))
            conn.execute(update(Task).where(Task.id == task.id).values(label_schema_id=latest.id, status=status))
        report = {"schema": name, "to_version": int(latest.version), "tasks": len(tasks), "migrated": migrated,
                  "relabel": relabel, "by_mapping": dict(used)}
        audit.append(conn, "schema.migrate", report, actor=actor)
    return report
