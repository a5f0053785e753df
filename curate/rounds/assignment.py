"""Who labels what: per-annotator queues, overlap for agreement, label schemas and per-round settings.

:func:`assign_round` spreads a round's tasks over annotators in selection order (round-robin, so everybody's
queue starts with the most valuable tasks); a fraction ``overlap`` of the tasks goes to ``copies`` annotators so
their agreement can be measured. Nobody sees another's answer: queues hold tasks, never other people's values.

Schemas follow the task's type (:func:`schema_task_types`): a schema with classes is a label schema, for label
tasks; a schema without classes holds guidelines for rank and rewrite tasks. A round that mixes types takes one
schema per type (``--schema topic --schema rank=rank-guide --schema rewrite=edit-guide``), and a task whose type
got none shows no guidelines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, delete, func, insert, select, update

from curate.errors import AccessError, InputError
from curate.rounds.tasks import TASK_TYPES
from curate.store import audit
from curate.store.accounts import get_account
from curate.store.database import Store
from curate.store.schema import Annotation, Assignment, LabelSchema, Round, Suggestion, Task


def add_label_schema(store: Store, name: str, classes: Sequence[str] = (), guidelines: str = "", *,
                     actor: str | None = None) -> tuple[int, int]:
    """Store a new version of the label schema ``name``; returns ``(schema id, version)``.

    Raises:
        InputError: duplicate or empty class names.
    """
    cleaned = [c.strip() for c in classes]
    if any(not c for c in cleaned) or len(set(cleaned)) != len(cleaned):
        raise InputError(f"label schema {name!r}: classes must be distinct and non-empty; got {list(classes)}")
    with store.write() as conn:
        version = int(conn.scalar(select(func.coalesce(func.max(LabelSchema.version), 0))
                                  .where(LabelSchema.name == name)) or 0) + 1
        schema_id = int(conn.execute(insert(LabelSchema).values(
            name=name, version=version, classes=orjson.dumps(cleaned).decode(), guidelines=guidelines,
        ).returning(LabelSchema.id)).scalar_one())
        audit.append(conn, "schema.add", {"name": name, "version": version, "classes": cleaned}, actor=actor)
    return schema_id, version


def ensure_label_schema(store: Store, name: str, classes: Sequence[str] = (), guidelines: str = "", *,
                        actor: str | None = None) -> tuple[int, int, bool]:
    """The latest version of ``name`` when it has these classes and guidelines, else a new version (as
    :func:`add_label_schema`); returns ``(schema id, version, created)``. What a recipe run again to resume calls:
    the answers of one loop keep one schema version while nothing about the schema changed."""
    cleaned = [c.strip() for c in classes]
    with store.read() as conn:
        latest = conn.execute(select(LabelSchema.id, LabelSchema.version, LabelSchema.classes, LabelSchema.guidelines)
                              .where(LabelSchema.name == name).order_by(LabelSchema.version.desc()).limit(1)).first()
    if latest is not None and orjson.loads(latest.classes or "[]") == cleaned \
            and (latest.guidelines or "") == guidelines:
        return int(latest.id), int(latest.version), False
    schema_id, version = add_label_schema(store, name, cleaned, guidelines, actor=actor)
    return schema_id, version, True


def schema_task_types(classes: Sequence[str]) -> tuple[str, ...]:
    """The task types a schema with ``classes`` applies to: label tasks when it has classes, else rank and rewrite.

    >>> schema_task_types(["billing", "bug"]), schema_task_types([])
    (('label',), ('rank', 'rewrite'))
    """
    return ("label",) if classes else ("rank", "rewrite")


def label_schema_id(conn: Connection, name: str, version: int | None = None) -> int:
    """Id of schema ``name`` at ``version`` (default: the latest); raises InputError if there is none."""
    stmt = select(LabelSchema.id).where(LabelSchema.name == name)
    if version is not None:
        stmt = stmt.where(LabelSchema.version == version)
    found = conn.scalar(stmt.order_by(LabelSchema.version.desc()).limit(1))
    if found is None:
        raise InputError(f"no label schema called {name!r}" + (f" at version {version}" if version else "")
                         + "; create it with: curate schema add NAME --classes a,b,c")
    return int(found)


def schemas_by_type(conn: Connection, specs: str | Sequence[str] | None) -> dict[str, str]:
    """``{task type: schema name}`` from ``--schema`` values: ``NAME`` (its latest version applies to the types of
    :func:`schema_task_types`) or ``TYPE=NAME`` (only that type; it overrides a plain ``NAME``).

    Raises:
        InputError: an unknown schema or task type, a schema that does not fit the type it is given for, or two
            schemas for one type.
    """
    items = [specs] if isinstance(specs, str) else list(specs or [])
    plain: dict[str, str] = {}
    typed: dict[str, str] = {}
    for spec in items:
        head, sep, tail = spec.partition("=")
        kind, name = (head.strip(), tail.strip()) if sep else ("", spec.strip())
        if (sep and kind not in TASK_TYPES) or not name:
            raise InputError(f"--schema {spec!r}: expected NAME or TYPE=NAME with TYPE one of {', '.join(TASK_TYPES)}")
        raw = conn.scalar(select(LabelSchema.classes).where(LabelSchema.id == label_schema_id(conn, name)))
        fits = schema_task_types(orjson.loads(raw) if raw else [])
        if kind and kind not in fits:
            raise InputError(
                f"--schema {spec}: {name} has classes, so it is a label schema and shows only on label tasks; put "
                f"{kind} guidelines in a schema without classes (curate schema add NAME --guidelines @FILE)"
                if kind != "label" else
                f"--schema {spec}: {name} has no classes, so label tasks could not be answered; give a schema "
                "with classes (curate schema add NAME --classes a,b,c)")
        into = typed if kind else plain
        for task_type in (kind,) if kind else fits:
            if into.get(task_type, name) != name:
                raise InputError(f"--schema: two schemas for {task_type} tasks ({into[task_type]} and {name}); "
                                 f"give one per task type, e.g. --schema {task_type}=NAME")
            into[task_type] = name
    return {**plain, **typed}


def round_id_of(conn: Connection, number: int | None) -> int:
    """Id of round ``number`` (default: the latest); raises InputError if there is none."""
    stmt = select(Round.id)
    stmt = stmt.where(Round.number == number) if number is not None else stmt.order_by(Round.number.desc())
    found = conn.scalar(stmt.limit(1))
    if found is None:
        raise InputError("no rounds yet: create one with curate select" if number is None
                         else f"no round number {number}")
    return int(found)


def assign_round(store: Store, annotators: Sequence[str], *, round_number: int | None = None,
                 overlap: float = 0.0, copies: int = 2, schema: str | Sequence[str] | None = None, seed: int = 0,
                 actor: str | None = None) -> dict[str, Any]:
    """Put the round's unassigned tasks into the annotators' queues.

    Args:
        annotators: account names (each must exist); queues are filled round-robin in selection order.
        overlap: fraction of tasks (chosen at random with ``seed``) given to ``copies`` annotators.
        schema: schema name(s) whose latest version the round's tasks of the fitting type use (classes,
            guidelines), assigned or not, unless answered: ``NAME`` or ``TYPE=NAME`` (see :func:`schemas_by_type`).

    Returns:
        ``{"round": number, "tasks": n, "assignments": m, "overlapping_tasks": k, "per_annotator": {...},
        "schemas": {task type: schema name}, "unused_schemas": [...], "schema_changed": n,
        "schema_kept_answered": n}``: ``schemas`` lists the types the round has, ``unused_schemas`` the schemas given
        that fit none of them; tasks already answered keep their schema version (``schema_kept_answered``: move
        their answers with ``curate schema migrate``).
    """
    names = list(dict.fromkeys(annotators))
    if not names:
        raise InputError("give at least one annotator (--annotators a,b)")
    for name in names:
        try:
            get_account(store, name)
        except AccessError:  # its own words ("not logged in") mean nothing at the command line
            raise InputError(f"no active account {name!r} (unknown or disabled): see curate users list") from None
    if not 0.0 <= overlap <= 1.0:
        raise InputError(f"--overlap must be a fraction in [0, 1]; got {overlap}")
    if overlap > 0 and not 2 <= copies <= len(names):
        raise InputError(f"--copies must be between 2 and the number of annotators ({len(names)}); got {copies}")
    with store.write() as conn:
        rid = round_id_of(conn, round_number)
        number = int(conn.scalar(select(Round.number).where(Round.id == rid)) or 0)
        wanted = schemas_by_type(conn, schema)
        present = set(conn.scalars(select(Task.type).where(Task.round_id == rid).distinct()))
        applied = {t: name for t, name in wanted.items() if t in present}
        answered = select(Annotation.task_id)
        changed = kept = 0
        for task_type, name in applied.items():
            sid = label_schema_id(conn, name)
            # tasks with answers keep the version they were answered under (curate schema migrate moves answers);
            # switching them would make their answers and disputes invalid under the new classes
            of_type = (Task.round_id == rid, Task.type == task_type)
            changed += conn.execute(update(Task).where(*of_type, Task.id.not_in(answered),
                                                       Task.label_schema_id.is_distinct_from(sid))
                                    .values(label_schema_id=sid)).rowcount or 0
            kept += int(conn.scalar(select(func.count()).select_from(Task).where(
                *of_type, Task.id.in_(answered), Task.label_schema_id.is_distinct_from(sid))) or 0)
        assigned = select(Assignment.task_id)
        tasks = [int(t) for t in conn.scalars(select(Task.id).where(Task.round_id == rid, Task.id.not_in(assigned))
                                              .order_by(Task.id))]
        rng = np.random.default_rng(seed)
        n_overlap = int(round(overlap * len(tasks)))
        overlapping = set(rng.choice(len(tasks), size=n_overlap, replace=False).tolist()) if n_overlap else set()
        next_pos = {n: int(conn.scalar(select(func.coalesce(func.max(Assignment.position), 0))
                                       .where(Assignment.annotator == n)) or 0) for n in names}
        load = dict.fromkeys(names, 0)
        rows = []
        for i, task_id in enumerate(tasks):
            k = copies if i in overlapping else 1
            chosen = sorted(names, key=lambda n: (load[n], names.index(n)))[:k]
            for name in chosen:
                load[name] += 1
                next_pos[name] += 1
                rows.append({"task_id": task_id, "annotator": name, "position": next_pos[name], "status": "open"})
        if rows:
            conn.execute(insert(Assignment), rows)
        unused = sorted(set(wanted.values()) - set(applied.values()))
        report = {"round": number, "tasks": len(tasks), "assignments": len(rows), "overlapping_tasks": n_overlap,
                  "per_annotator": load, "schemas": dict(sorted(applied.items())), "unused_schemas": unused,
                  "schema_changed": changed, "schema_kept_answered": kept}
        audit.append(conn, "assign", {**report, "overlap": overlap, "copies": copies, "schema": schema}, actor=actor)
    return report


def round_settings(conn: Connection, round_id: int) -> dict[str, Any]:
    """The round's ``params`` (selection parameters plus app settings such as ``hide_suggestions``)."""
    raw = conn.scalar(select(Round.params).where(Round.id == round_id))
    value = orjson.loads(raw) if raw else {}
    return value if isinstance(value, dict) else {}


def set_hide_suggestions(store: Store, hide: bool, *, round_number: int | None = None,
                         actor: str | None = None) -> int:
    """Hide (or show) the model's suggestions in the app for one round (default: the latest); returns its number."""
    with store.write() as conn:
        rid = round_id_of(conn, round_number)
        params = round_settings(conn, rid)
        params["hide_suggestions"] = bool(hide)
        conn.execute(update(Round).where(Round.id == rid).values(params=orjson.dumps(params).decode()))
        number = int(conn.scalar(select(Round.number).where(Round.id == rid)) or 0)
        audit.append(conn, "round.settings", {"round": number, "hide_suggestions": bool(hide)}, actor=actor)
    return number


def set_suggestions(store: Store, suggestions: Sequence[tuple[int, Any, float | None]], *,
                    model_version_id: int | None = None) -> int:
    """Store the model's suggestion ``(task id, value, confidence in [0, 1])`` per task; returns how many."""
    rows = []
    for task_id, value, confidence in suggestions:
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise InputError(f"suggestion confidence must be in [0, 1]; got {confidence} for task {task_id}")
        rows.append({"task_id": int(task_id), "value": orjson.dumps(value).decode(), "confidence": confidence,
                     "model_version_id": model_version_id})
    with store.write() as conn:
        ids = [r["task_id"] for r in rows]
        if ids:
            conn.execute(delete(Suggestion).where(Suggestion.task_id.in_(ids)))
            conn.execute(insert(Suggestion), rows)
    return len(rows)

