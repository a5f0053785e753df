"""The workspace database schema (SQLAlchemy 2 declarative tables).

Tables: ``sources`` (ingested files), ``records`` (the pool; content stored as JSON text), ``scores`` (the
score cache) and ``score_metadata`` (what stands behind a key's scores, e.g. a two-stage proxy),
``status_changes`` (what a filter run changed, for undo), ``label_schemas`` (versioned), ``model_versions``,
``rounds``, ``tasks``, ``annotations`` (append-only; a correction is a new row that ``supersedes`` the old one),
``audit_events`` (append-only, hash-chained; see :mod:`curate.store.audit`), ``users`` and ``login_throttle``
(failed logins and lockouts; see :mod:`curate.store.login_guard`). JSON columns are stored as text written by
:func:`orjson.dumps`, which keeps bulk inserts fast and portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    DDL,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 2


def utcnow() -> str:
    """Current UTC time as an ISO-8601 string (stored as text, identical on every database)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Base(DeclarativeBase):
    """Declarative base of every curate table."""


class Meta(Base):
    """Key-value facts about the workspace database, e.g. ``schema_version``."""

    __tablename__ = "curate_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Source(Base):
    """One ingested file (or dataset folder); records point back to it with their line number."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    ingested_at: Mapped[str] = mapped_column(String(40), default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    n_new: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    n_quarantined: Mapped[int] = mapped_column(Integer, default=0)
    quarantine_path: Mapped[str | None] = mapped_column(Text, nullable=True)


class RecordRow(Base):
    """A record of the pool. ``data`` holds the TRL-named content fields as JSON text."""

    __tablename__ = "records"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    data: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    source_line: Mapped[int] = mapped_column(Integer)
    source_row: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(16), default="pool", index=True)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)


class LabelSchema(Base):
    """A versioned set of classes (or questions) with guidelines; old annotations keep their version."""

    __tablename__ = "label_schemas"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    classes: Mapped[str] = mapped_column(Text)
    guidelines: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)


class ModelVersion(Base):
    """A model that scored or suggested: a base model plus optionally a trained LoRA adapter."""

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    base: Mapped[str] = mapped_column(Text)
    adapter_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    adapter_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    metrics: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)


class Round(Base):
    """One application of a strategy to the pool."""

    __tablename__ = "rounds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(Integer)
    strategy_key: Mapped[str] = mapped_column(Text)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    params: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)


class Task(Base):
    """A record put in front of people: ``rank``, ``rewrite`` or ``label``."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_assignee_status", "assignee", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    strategy_key: Mapped[str] = mapped_column(Text)
    acquisition_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    random_mix: Mapped[bool] = mapped_column(Boolean, default=False)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    label_schema_id: Mapped[int | None] = mapped_column(ForeignKey("label_schemas.id"), nullable=True)
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)


class Annotation(Base):
    """One person's answer to one task. Append-only: never updated, never deleted.

    ``kind`` is ``answer``, ``retract`` (an undo: supersedes an answer, ``value`` null) or ``adjudication`` (a
    reviewer's final decision; ``adjudicates`` lists the annotation ids it decided between, as JSON). The task's
    provenance (round, requesting model version, acquisition score, strategy, random-mix flag) is copied onto
    each annotation, so an annotation row alone says why it was asked for.
    """

    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    annotator: Mapped[str] = mapped_column(String(128), index=True)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    label_schema_id: Mapped[int | None] = mapped_column(ForeignKey("label_schemas.id"), nullable=True)
    seconds_spent: Mapped[float | None] = mapped_column(Float, nullable=True)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id"), nullable=True)
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), default="answer")
    round_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    acquisition_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    strategy_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    random_mix: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    adjudicates: Mapped[str | None] = mapped_column(Text, nullable=True)


#: Columns added to ``annotations`` by schema version 2 (for the 1 -> 2 migration).
ANNOTATION_V2_COLUMNS: dict[str, str] = {
    "kind": "VARCHAR(16) NOT NULL DEFAULT 'answer'", "round_id": "INTEGER", "model_version_id": "INTEGER",
    "acquisition_score": "FLOAT", "strategy_key": "TEXT", "random_mix": "BOOLEAN", "adjudicates": "TEXT",
}


class User(Base):
    """An account: ``role`` is annotator, reviewer or admin; ``password_hash`` is scrypt (never the password)."""

    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)


class LoginThrottle(Base):
    """Failed logins of one account name (``scope`` "name", ``key`` a hash of the name as typed) or one client
    address (``scope`` "address"): consecutive failures, the last attempt and, for names, a lockout (epoch
    seconds). Kept in the database so every app process and ``curate users unlock`` share it; see
    :mod:`curate.store.login_guard`."""

    __tablename__ = "login_throttle"
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt: Mapped[float] = mapped_column(Float, default=0.0, index=True)
    locked_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class Assignment(Base):
    """One task in one person's queue. ``status``: open, done (answered), skipped. ``position`` orders the queue."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("task_id", "annotator"), Index("ix_assignments_queue", "annotator", "status"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    annotator: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)


class Draft(Base):
    """What a person has typed on a task but not yet submitted (kept across reloads; replaced on each save)."""

    __tablename__ = "drafts"
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    annotator: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[str] = mapped_column(String(40), default=utcnow)


class Suggestion(Base):
    """The model's suggestion for a task (a class, a preferred response, ...) with its confidence in [0, 1]."""

    __tablename__ = "task_suggestions"
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)


class ScoreRow(Base):
    """A cached score: one record under one scorer key (which names the scorer, its parameters and model)."""

    __tablename__ = "scores"
    scorer_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)


class ScoreMetadata(Base):
    """What stands behind a scorer key's cached scores beyond the scores themselves (JSON), e.g. a two-stage run's
    proxy key, sample and measured agreement (:func:`curate.scorers.cache.save_metadata`)."""

    __tablename__ = "score_metadata"
    scorer_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)


class RecordCluster(Base):
    """Which duplicate cluster a record belongs to, per method; ``cluster_id`` is the kept record's id."""

    __tablename__ = "record_clusters"
    method: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(String(32), index=True)


class StatusChange(Base):
    """One record's status changed by a filter run, kept so the run can be undone.

    ``run`` names the run (also in its audit event and report file), ``action`` the command (``filter.dedup``),
    ``cluster_id`` the record it duplicates or leaks from; ``undone_at`` is set when the change is undone.
    """

    __tablename__ = "status_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), index=True)
    before: Mapped[str] = mapped_column(String(16))
    after: Mapped[str] = mapped_column(String(16))
    cluster_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)
    undone_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class PiiFinding(Base):
    """Where PII was found in a record: field, type, offsets and a keyed hash of the value (never the value)."""

    __tablename__ = "pii_findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(32), index=True)
    field: Mapped[str] = mapped_column(String(128))
    entity_type: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    value_hash: Mapped[str] = mapped_column(String(64))


class PiiOriginal(Base):
    """The original text of one redacted field, encrypted (AES-256-GCM) with a key kept outside the workspace.

    ``field`` is the field path (``prompt``, ``messages[2].content``, ``@meta.email``); ``ciphertext`` is
    ``nonce || ciphertext+tag``, bound to the record id and field; ``key_id`` names the key (never the key). See
    :mod:`curate.filters.pii_vault`.
    """

    __tablename__ = "pii_originals"
    record_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    field: Mapped[str] = mapped_column(String(256), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(40), default=utcnow)


class AuditEvent(Base):
    """One state change. ``hash`` = SHA-256 of ``prev_hash`` and the event's canonical JSON."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    model_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


APPEND_ONLY_TABLES = ("annotations", "audit_events")

for _table in APPEND_ONLY_TABLES:
    for _op in ("UPDATE", "DELETE"):
        event.listen(
            Base.metadata,
            "after_create",
            DDL(  # type: ignore[no-untyped-call]
                f"CREATE TRIGGER IF NOT EXISTS {_table}_no_{_op.lower()} BEFORE {_op} ON {_table} "
                f"BEGIN SELECT RAISE(ABORT, '{_table} is append-only'); END"
            ).execute_if(dialect="sqlite"),
        )
    event.listen(
        Base.metadata,
        "after_create",
        DDL(  # type: ignore[no-untyped-call]
            f"CREATE OR REPLACE FUNCTION {_table}_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{_table} is append-only'; END; $$ LANGUAGE plpgsql; "
            f"DROP TRIGGER IF EXISTS {_table}_append_only ON {_table}; "
            f"CREATE TRIGGER {_table}_append_only BEFORE UPDATE OR DELETE ON {_table} "
            f"FOR EACH ROW EXECUTE FUNCTION {_table}_append_only()"
        ).execute_if(dialect="postgresql"),
    )
