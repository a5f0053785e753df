"""Annotations cross-checked against the audit chain, so a row edited, deleted or forged in the database is caught.

The hash chain (:func:`curate.store.audit.verify`) proves that no audit event was edited, deleted, inserted or
reordered. It says nothing about the ``annotations`` table: someone with database access can change an answer,
delete one or insert one without touching the log. Every annotation is written in the same transaction as an
event naming its id (``annotate`` for answers and retracts, ``adjudicate`` for a reviewer's decision) with the
SHA-256 of the stored value, the superseded answer of a retract, or the answers a decision settles.
:func:`check_annotations` ties the two together in one pass over each:

- every annotation row is named by exactly one event, whose action, kind, task, actor and value hash (superseded
  id for a retract, decided ids for an adjudication) match the row;
- no event names an annotation that is not in the table.

Rows copied by ``curate schema migrate`` (an answer re-stored under the latest schema version, or retracted to
be relabelled) have no event of their own, only the migration's ``schema.migrate`` event with counts. They are
accepted when they copy an earlier row of the same task and annotator under another version of the same schema,
and the copied answers per ``old -> new`` class pair add up to the migration events' ``by_mapping`` totals.

Not covered: the provenance columns copied from the task (round, strategy, acquisition score) and
``seconds_spent``, which no event records.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import orjson
from sqlalchemy import Connection, select

from curate.store.database import Store
from curate.store.schema import Annotation, AuditEvent, LabelSchema

LinkProblemKind = Literal["unaudited", "value-mismatch", "record-mismatch", "duplicate-event",
                          "missing-annotation", "migration-mismatch"]
ANNOTATION_ACTIONS = ("annotate", "adjudicate")
MIGRATE_ACTION = "schema.migrate"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class LinkProblem:
    """One annotation that does not match the audit chain: what, which annotation and event, in words."""

    problem: LinkProblemKind
    annotation_id: int | None
    seq: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"problem": self.problem, "annotation_id": self.annotation_id, "seq": self.seq,
                "message": self.message}


class _Event(NamedTuple):
    """What an ``annotate`` / ``adjudicate`` event recorded about its annotation (compact: one per annotation)."""

    seq: int
    actor: str
    kind: str | None  # answer, retract or adjudication
    task_id: Any
    sha: str | None  # value_sha256 (None: not recorded)
    link: Any  # a retract's superseded id; an adjudication's decided ids


def _event(seq: int, action: str, actor: str, p: dict[str, Any]) -> _Event:
    if action == "adjudicate":
        return _Event(seq, actor, "adjudication", p.get("task_id"), p.get("value_sha256"), p.get("originals"))
    return _Event(seq, actor, p.get("kind"), p.get("task_id"), p.get("value_sha256"), p.get("supersedes"))


@contextmanager
def snapshot(store: Store) -> Iterator[Connection]:
    """A read transaction in which every query sees the same state (REPEATABLE READ on PostgreSQL, whose
    default gives each statement its own snapshot; a SQLite read transaction already is one)."""
    if store.dialect != "postgresql":
        with store.read() as conn:
            yield conn
        return
    with store.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        yield conn


def sha256(text: str | None) -> str | None:
    """The hex SHA-256 of a stored value, as the audit events record it (None for no value)."""
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def verify_annotations(store: Store) -> list[LinkProblem]:
    """Every way the ``annotations`` table disagrees with the audit events, in annotation order (empty: none)."""
    with snapshot(store) as conn:
        return check_annotations(conn)


def check_annotations(conn: Connection) -> list[LinkProblem]:
    """:func:`verify_annotations` inside the caller's (snapshot) transaction."""
    by_annotation: dict[int, _Event] = {}
    extra: dict[int, list[int]] = {}  # annotation id -> seqs of further events naming it
    migrations: list[dict[str, Any]] = []
    actors: dict[str, str] = {}  # one string object per actor name
    for seq, action, actor, raw in conn.execute(
            select(AuditEvent.seq, AuditEvent.action, AuditEvent.actor, AuditEvent.payload)
            .where(AuditEvent.action.in_((*ANNOTATION_ACTIONS, MIGRATE_ACTION))).order_by(AuditEvent.seq)
            .execution_options(yield_per=5000)):
        payload = _loads(raw)
        annotation_id = payload.get("annotation_id")
        if action == MIGRATE_ACTION:
            migrations.append(payload)
        elif isinstance(annotation_id, int):
            if annotation_id in by_annotation:
                extra.setdefault(annotation_id, []).append(int(seq))
            else:
                by_annotation[annotation_id] = _event(int(seq), action, actors.setdefault(actor, actor), payload)
    problems: list[LinkProblem] = []
    unaudited: list[Any] = []
    rows = conn.execute(
        select(Annotation.id, Annotation.task_id, Annotation.annotator, Annotation.kind, Annotation.value,
               Annotation.supersedes_id, Annotation.adjudicates, Annotation.label_schema_id)
        .order_by(Annotation.id).execution_options(yield_per=2000))
    for row in rows:
        ev = by_annotation.pop(int(row.id), None)
        if ev is None:
            unaudited.append(row)
            continue
        if int(row.id) in extra:
            seqs = [ev.seq, *extra[int(row.id)]]
            problems.append(LinkProblem(
                "duplicate-event", int(row.id), seqs[1],
                f"{_describe(row)} is named by {len(seqs)} audit events ({', '.join(f'#{s}' for s in seqs)}): "
                "one of them was forged or replayed"))
        problems.extend(_compare(row, ev))
    for annotation_id, ev in sorted(by_annotation.items()):
        problems.append(LinkProblem(
            "missing-annotation", annotation_id, ev.seq,
            f"annotation #{annotation_id} ({ev.kind} by {ev.actor} on task {ev.task_id}) was deleted: "
            f"event #{ev.seq} recorded it but it is not in the annotations table"))
    problems.extend(_check_migration_copies(conn, unaudited, migrations))
    problems.sort(key=lambda p: (p.annotation_id is None, p.annotation_id or 0, p.seq or 0))
    return problems


def _loads(raw: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _describe(row: Any) -> str:
    return f"annotation #{row.id} ({row.kind} by {row.annotator} on task {row.task_id})"


def _compare(row: Any, ev: _Event) -> list[LinkProblem]:
    """What of ``row`` differs from the event that recorded it."""
    recorded: list[tuple[str, Any, Any]] = [("kind", row.kind, ev.kind), ("task", row.task_id, ev.task_id),
                                            ("annotator", row.annotator, ev.actor)]
    if ev.kind == "retract":
        recorded.append(("superseded answer", row.supersedes_id, ev.link))
    elif ev.kind == "adjudication":
        recorded.append(("decided answers", _loads_list(row.adjudicates), ev.link))
    out = [LinkProblem("record-mismatch", int(row.id), ev.seq,
                       f"{_describe(row)} does not match its audit event: its {name} is {have!r} but event "
                       f"#{ev.seq} recorded {want!r}")
           for name, have, want in recorded if have != want]
    if (row.value is not None if row.kind == "retract" else ev.sha is not None and sha256(row.value) != ev.sha):
        out.append(LinkProblem(
            "value-mismatch", int(row.id), ev.seq,
            f"{_describe(row)} was edited: its value no longer matches the SHA-256 that event #{ev.seq} recorded"))
    return out


def _loads_list(raw: str | None) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw


def _check_migration_copies(conn: Connection, rows: list[Any], migrations: list[dict[str, Any]]) -> list[LinkProblem]:
    """Rows without an event: accepted only as copies made by ``curate schema migrate`` that add up to the
    migration events' totals (checked even when no such row is left: deleted copies break the count too)."""
    if not rows and not migrations:
        return []
    schema_names = {int(i): str(n) for i, n in conn.execute(select(LabelSchema.id, LabelSchema.name))} if rows else {}
    wanted = sorted({int(r.supersedes_id) for r in rows if r.supersedes_id is not None})
    originals: dict[int, Any] = {}
    for start in range(0, len(wanted), _CHUNK):
        for found in conn.execute(select(Annotation.id, Annotation.task_id, Annotation.annotator, Annotation.value,
                                         Annotation.label_schema_id)
                                  .where(Annotation.id.in_(wanted[start:start + _CHUNK]))):
            originals[int(found.id)] = found
    recorded: Counter[tuple[str, str]] = Counter()
    for payload in migrations:
        for pair, n in (payload.get("by_mapping") or {}).items():
            recorded[(str(payload.get("schema")), str(pair))] += int(n)
    problems: list[LinkProblem] = []
    copied: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        orig = originals.get(int(row.supersedes_id)) if row.supersedes_id is not None else None
        schema = schema_names.get(row.label_schema_id or -1)
        if (not migrations or orig is None or schema is None or orig.task_id != row.task_id
                or orig.annotator != row.annotator or orig.label_schema_id == row.label_schema_id
                or schema_names.get(orig.label_schema_id or -1) != schema):
            problems.append(LinkProblem(
                "unaudited", int(row.id), None,
                f"{_describe(row)} has no audit event: it was inserted directly into the database, or its event "
                "was deleted"))
            continue
        if row.kind != "retract":
            old, new = _loads(orig.value or "{}").get("label"), _loads(row.value or "{}").get("label")
            copied.setdefault((schema, f"{old} -> {new}"), []).append(int(row.id))
    for key in sorted(set(copied) | set(recorded)):
        ids = copied.get(key, [])
        if len(ids) != recorded[key]:
            problems.append(LinkProblem(
                "migration-mismatch", ids[0] if ids else None, None,
                f"schema {key[0]}: {len(ids)} annotation(s) copied as {key[1]} by migration "
                f"({', '.join(f'#{i}' for i in ids[:10]) or 'none'}), but the schema.migrate events record "
                f"{recorded[key]}: rows were inserted, edited or deleted directly"))
    return problems
