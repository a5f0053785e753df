"""Rows ingested into a held-out split (``test``, ``calibration``) that are already pool records.

A record's id is its content hash, so such a row is not stored twice: the stored pool record is *moved* to the
held-out split (never selectable again), counted, and named in an ``ingest.move_split`` audit event. A pool record
that was already selected for annotation (it has tasks) is not moved unless asked (``allow_selected``): moving it
takes its answers out of training, and a model trained on them would then be evaluated on its training data, so
the ingest stops with an error that lists the rows (nothing is stored). Rows already in another split stay there
and are counted (``already_in``).

PII redaction changes a record's content and so its id: a held-out row is also matched to the pool record that is
its redacted copy (``meta.pii_source_id``, the id of the content before redaction), in both directions (a redacted
pool and a raw test file, or a raw pool and a test file ingested with ``--pii redact``); see :meth:`SplitMoves.twins`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select, update

from curate.errors import InputError
from curate.ingest.records import Record
from curate.store.schema import Annotation, RecordRow, Task

HELDOUT = ("test", "calibration")
#: Moved ids listed in the audit event up to this many (always: their count and digest).
MAX_LISTED_IDS = 10_000
_CHUNK = 1000


@dataclass
class SplitMoves:
    """What one ingest into ``split`` found among rows that were already stored.

    Attributes:
        moved: ids of pool records moved to ``split``.
        moved_selected: of them, those that had tasks (moved because ``allow_selected``).
        blocked: ``(id, line)`` of pool records with tasks that were not moved.
        blocked_answered: of the blocked, how many have answers.
        already_in: rows whose record already sits in another split, by that split (left there).
        label_conflicts: ``(line, stored label, this file's label)`` of moved records whose label here differs
            from the one stored (the stored one is kept; the first few are listed).
        n_label_conflicts: how many moved records had such a label.
    """

    split: str
    allow_selected: bool = False
    moved: list[str] = field(default_factory=list)
    moved_selected: list[str] = field(default_factory=list)
    blocked: list[tuple[str, int]] = field(default_factory=list)
    blocked_answered: int = 0
    already_in: Counter[str] = field(default_factory=Counter)
    label_conflicts: list[tuple[int, Any, Any]] = field(default_factory=list)
    n_label_conflicts: int = 0

    _redacted: dict[str, str] | None = None  # pii_source_id -> id of the pool's redacted copy (read once)

    def twins(self, conn: Connection, batch: Sequence[Record]) -> list[Record]:
        """``batch`` with each held-out row that is a pool record under PII redaction given that record's id, so it
        is moved like any copy (and not stored a second time): its content before redaction is a redacted pool
        record's ``pii_source_id``, or (this ingest redacts) its own ``pii_source_id`` is a pool record's id."""
        if self.split not in HELDOUT:
            return list(batch)
        if self._redacted is None:
            self._redacted = {}
            rows = conn.execute(select(RecordRow.id, RecordRow.meta).where(
                RecordRow.split == "pool", RecordRow.meta.like('%"pii_source_id"%')))
            for rid, meta in rows:
                source = json.loads(meta).get("pii_source_id") if meta else None
                if isinstance(source, str):
                    self._redacted[source] = rid
        raw_ids = [str(r.meta["pii_source_id"]) for r in batch if isinstance(r.meta.get("pii_source_id"), str)]
        in_pool = {rid for rid, split in _splits(conn, raw_ids).items() if split == "pool"} if raw_ids else set()
        out = []
        for rec in batch:
            twin = self._redacted.get(rec.id)
            source = rec.meta.get("pii_source_id")
            if twin is None and isinstance(source, str) and source in in_pool:
                twin = source
            out.append(dataclasses.replace(rec, id=twin) if twin is not None else rec)
        return out

    def check(self, conn: Connection, batch: Sequence[Record], new_ids: set[str]) -> None:
        """Look at the rows of ``batch`` that were stored before (not in ``new_ids``); move pool records."""
        known: dict[str, Record] = {}
        for rec in batch:
            if rec.id not in new_ids:
                known.setdefault(rec.id, rec)
        if not known:
            return
        splits = _splits(conn, list(known))
        in_pool = [rid for rid, split in splits.items() if split == "pool" and split != self.split]
        for split in splits.values():
            if split != self.split and not (split == "pool" and self.split in HELDOUT):
                self.already_in[split] += 1
        if self.split not in HELDOUT or not in_pool:
            return
        tasks = _with_tasks(conn, in_pool)
        if not self.allow_selected and tasks:
            self.blocked.extend((rid, known[rid].line) for rid in in_pool if rid in tasks)
            self.blocked_answered += _answered(conn, [rid for rid in in_pool if rid in tasks])
            in_pool = [rid for rid in in_pool if rid not in tasks]
        for start in range(0, len(in_pool), _CHUNK):
            conn.execute(update(RecordRow).where(RecordRow.id.in_(in_pool[start:start + _CHUNK]),
                                                 RecordRow.split == "pool").values(split=self.split))
        self.moved.extend(in_pool)
        self.moved_selected.extend(rid for rid in in_pool if rid in tasks)
        self._compare_labels(conn, {rid: known[rid] for rid in in_pool})

    def _compare_labels(self, conn: Connection, moved: dict[str, Record]) -> None:
        """Note moved records whose stored label differs from this file's (a held-out file's gold, say)."""
        with_label = [rid for rid, rec in moved.items() if rec.label is not None]
        for start in range(0, len(with_label), _CHUNK):
            rows = conn.execute(select(RecordRow.id, RecordRow.label).where(
                RecordRow.id.in_(with_label[start:start + _CHUNK])))
            for rid, stored in rows:
                old = json.loads(stored) if stored else None
                if str(old) != str(moved[rid].label):
                    self.n_label_conflicts += 1
                    if len(self.label_conflicts) < 10:
                        self.label_conflicts.append((moved[rid].line, old, moved[rid].label))

    def raise_if_blocked(self, source: str) -> None:
        """:class:`InputError` naming the rows that are selected pool records, when any were found."""
        if not self.blocked:
            return
        lines = ", ".join(str(line) for _, line in self.blocked[:10]) + (", ..." if len(self.blocked) > 10 else "")
        answered = f", {self.blocked_answered:,} of them answered" if self.blocked_answered else ""
        raise InputError(
            f"{source}: {len(self.blocked):,} row(s) are pool records already selected for annotation (they have "
            f"tasks{answered}): line(s) {lines}. Moving them to the {self.split} split would take their answers out "
            "of training and evaluate models on rows they may have been trained on. Nothing was stored. Remove "
            "those rows from the file, or pass --move-selected to move them anyway.")

    def audit_payload(self) -> dict[str, Any]:
        """The ``ingest.move_split`` event: counts, a digest of the moved ids and (up to a limit) the ids."""
        digest = hashlib.blake2b(digest_size=16)
        for rid in sorted(self.moved):
            digest.update(rid.encode())
        payload: dict[str, Any] = {"from": "pool", "to": self.split, "records": len(self.moved),
                                   "with_tasks": len(self.moved_selected), "ids_digest": digest.hexdigest(),
                                   "label_conflicts": self.n_label_conflicts}
        if len(self.moved) <= MAX_LISTED_IDS:
            payload["ids"] = sorted(self.moved)
        return payload


def _splits(conn: Connection, ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(select(RecordRow.id, RecordRow.split).where(RecordRow.id.in_(ids[start:start + _CHUNK])))
        out.update((rid, split) for rid, split in rows)
    return out


def _with_tasks(conn: Connection, ids: list[str]) -> set[str]:
    out: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        out.update(conn.scalars(select(Task.record_id).where(Task.record_id.in_(ids[start:start + _CHUNK]))
                                .distinct()))
    return out


def _answered(conn: Connection, ids: list[str]) -> int:
    total = 0
    for start in range(0, len(ids), _CHUNK):
        total += int(conn.scalar(select(func.count(func.distinct(Task.record_id)))
                                 .join(Annotation, Annotation.task_id == Task.id)
                                 .where(Task.record_id.in_(ids[start:start + _CHUNK]))) or 0)
    return total
