"""Rounds and tasks: put a selected batch of records in front of people.

A round records which strategy (scorer + selector key), which model version and which records; each task
keeps its round, strategy key, model version, acquisition score and whether it came from the random mix, so
every label knows why it was asked for.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, func, insert, select

from curate.errors import InputError
from curate.ingest.records import Record
from curate.runtime.faults import maybe_crash
from curate.store import audit
from curate.store.database import Store
from curate.store.schema import ModelVersion, Round, Task

TASK_TYPES = ("rank", "rewrite", "label")
DEFAULT_TASK_TYPE = {"preference": "rank", "candidates": "rank", "example": "rewrite", "text": "label"}


@dataclass
class RoundReport:
    """What a new round holds: its id and number, and how many tasks came from each origin."""

    round_id: int
    number: int
    strategy_key: str
    model_version: str | None
    tasks: int
    by_origin: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)


def model_version_id(conn: Connection, name: str, *, base: str | None = None,
                     adapter_path: str | None = None) -> int:
    """Id of the model version called ``name``, registering it on first use."""
    found = conn.scalar(select(ModelVersion.id).where(ModelVersion.name == name))
    if found is not None:
        return int(found)
    return int(conn.execute(
        insert(ModelVersion).values(name=name, base=base or name, adapter_path=adapter_path).returning(ModelVersion.id)
    ).scalar_one())


def selected_record_ids(store: Store) -> set[str]:
    """Ids of records that already have a task (they are not offered again)."""
    with store.read() as conn:
        return set(conn.scalars(select(Task.record_id).distinct()))


def create_round(
    store: Store,
    records: Sequence[Record],
    indices: Sequence[int] | np.ndarray,
    *,
    scores: np.ndarray,
    origins: Sequence[str] | None = None,
    strategy_key: str,
    model_version: str | None = None,
    task_type: str | None = None,
    params: dict[str, Any] | None = None,
    actor: str | None = None,
) -> RoundReport:
    """Create a round with one task per selected record, in one transaction with its audit event.

    Args:
        records: the candidate records; ``indices`` and ``scores`` refer to them.
        indices: the selected positions, in selection order.
        scores: acquisition scores aligned with ``records`` (higher = more worth labeling).
        origins: why each selected index was chosen ("strategy", "random", "quota:<group>"), aligned with
            ``indices``; default all "strategy".
        task_type: ``rank``, ``rewrite`` or ``label``; default by record kind (preference/candidates -> rank,
            example -> rewrite, text -> label).
    """
    picked = [int(i) for i in indices]
    origin_list = list(origins) if origins is not None else ["strategy"] * len(picked)
    if len(origin_list) != len(picked):
        raise InputError(f"origins has {len(origin_list)} entries for {len(picked)} selected indices")
    if task_type is not None and task_type not in TASK_TYPES:
        raise InputError(f"task type must be one of {', '.join(TASK_TYPES)}; got {task_type!r}")
    with store.write() as conn:
        number = int(conn.scalar(select(func.coalesce(func.max(Round.number), 0))) or 0) + 1
        mv_id = model_version_id(conn, model_version) if model_version else None
        round_id = int(conn.execute(insert(Round).values(
            number=number, strategy_key=strategy_key, model_version_id=mv_id,
            params=orjson.dumps(params or {}, default=str).decode(),
        ).returning(Round.id)).scalar_one())
        rows = []
        for i, origin in zip(picked, origin_list, strict=True):
            rec = records[i]
            value = float(scores[i])
            rows.append({
                "round_id": round_id, "record_id": rec.id,
                "type": task_type or DEFAULT_TASK_TYPE[rec.kind], "status": "open",
                "strategy_key": strategy_key if origin in ("strategy", strategy_key) else f"{strategy_key}|{origin}",
                "acquisition_score": value if np.isfinite(value) else None,
                "random_mix": origin == "random", "model_version_id": mv_id,
            })
        if rows:
            conn.execute(insert(Task), rows)
        by_origin = dict(Counter(origin_list))
        by_type = dict(Counter(str(r["type"]) for r in rows))
        digest = hashlib.blake2b("".join(records[i].id for i in picked).encode(), digest_size=16).hexdigest()
        audit.append(conn, "round", {"round_id": round_id, "number": number, "strategy_key": strategy_key[:400],
                                     "tasks": len(rows), "by_origin": by_origin, "record_ids_digest": digest},
                     actor=actor, model_version=model_version)
        maybe_crash("round.commit")  # tests only: SIGKILL before the commit (curate.runtime.faults)
    return RoundReport(round_id, number, strategy_key, model_version, len(rows), by_origin, by_type)


def insert_tasks(
    conn: Connection,
    round_id: int,
    records: Sequence[Record],
    scores: Sequence[float] | np.ndarray,
    *,
    origin: str = "stream",
    task_type: str | None = None,
) -> list[int]:
    """Add one task per record to an existing round, inside the caller's transaction (no audit event).

    A record that already has a task in this round is skipped, so replaying the same records is harmless.

    Args:
        records: the records to put in front of people (already stored in ``records``).
        scores: acquisition scores aligned with ``records`` (higher = more worth labeling; NaN stored as NULL).
        origin: why they were chosen; anything but "strategy" is appended to the round's strategy key.

    Returns:
        The ids of the tasks created, in the order of ``records`` (skipped ones left out).
    """
    if task_type is not None and task_type not in TASK_TYPES:
        raise InputError(f"task type must be one of {', '.join(TASK_TYPES)}; got {task_type!r}")
    row = conn.execute(select(Round.strategy_key, Round.model_version_id).where(Round.id == round_id)).first()
    if row is None:
        raise InputError(f"no round with id {round_id}")
    strategy_key = row.strategy_key if origin == "strategy" else f"{row.strategy_key}|{origin}"
    have = set(conn.scalars(select(Task.record_id).where(Task.round_id == round_id,
                                                          Task.record_id.in_([r.id for r in records]))))
    created: list[int] = []
    for rec, score in zip(records, scores, strict=True):
        if rec.id in have:
            continue
        have.add(rec.id)
        value = float(score)
        created.append(int(conn.execute(insert(Task).values(
            round_id=round_id, record_id=rec.id, type=task_type or DEFAULT_TASK_TYPE[rec.kind], status="open",
            strategy_key=strategy_key, acquisition_score=value if np.isfinite(value) else None,
            random_mix=False, model_version_id=row.model_version_id,
        ).returning(Task.id)).scalar_one()))
    return created


def add_tasks(
    store: Store,
    round_id: int,
    records: Sequence[Record],
    scores: Sequence[float] | np.ndarray,
    *,
    origin: str = "stream",
    task_type: str | None = None,
    actor: str | None = None,
) -> list[int]:
    """:func:`insert_tasks` in a transaction of its own, with a ``round.add_tasks`` audit event."""
    with store.write() as conn:
        created = insert_tasks(conn, round_id, records, scores, origin=origin, task_type=task_type)
        digest = hashlib.blake2b("".join(r.id for r in records).encode(), digest_size=16).hexdigest()
        audit.append(conn, "round.add_tasks", {"round_id": round_id, "tasks": len(created), "task_ids": created[:50],
                                               "record_ids_digest": digest}, actor=actor)
    return created
