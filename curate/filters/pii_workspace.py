"""PII in the workspace: applied at ingest (so clear values are never stored) or afterwards (``filter pii``).

Findings are stored as types, fields, offsets and keyed hashes of the values (salt in ``<workspace>/.pii-salt``,
created once, readable by its owner only); never the values. Quarantined rows are redacted too.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import insert, update

from curate.errors import InputError
from curate.ingest.records import Record
from curate.store import audit
from curate.store.workspace import Workspace

SALT_FILE = ".pii-salt"
ACTIONS = ("redact", "drop", "flag")


def workspace_salt(ws: Workspace) -> bytes:
    """The workspace's secret salt for value hashes (32 random bytes, created on first use)."""
    path = ws.root / SALT_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
    return path.read_bytes()


@dataclass
class PiiGuard:
    """Applies a PII policy to records as they are ingested or re-filtered, and counts what it did.

    Attributes:
        action: the action for every detected type: ``redact``, ``drop`` or ``flag``.
        allow_list: strings never reported (public names, your own product names).
        salt: key of the value hashes.
    """

    action: str
    salt: bytes
    allow_list: tuple[str, ...] = ()
    counts: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    findings: list[dict[str, Any]] = field(default_factory=list)
    _policy: Any = None

    def __post_init__(self) -> None:
        from curate.filters.policy import PiiPolicy

        self._policy = PiiPolicy(default=self.action, allow_list=self.allow_list)

    def _redact_string(self, text: str) -> str:
        from curate.filters.pii import detect, redact

        return redact(text, detect(text, entities=self._policy.entities, allow_list=self.allow_list))

    def redact_text(self, value: Any) -> Any:
        """``value`` with every detected entity replaced by a typed placeholder (strings inside lists/dicts too)."""
        if isinstance(value, str):
            return self._redact_string(value)
        if isinstance(value, list):
            return [self.redact_text(v) for v in value]
        if isinstance(value, dict):
            return {k: self.redact_text(v) for k, v in value.items()}
        return value

    def process(self, record: Record, *, keep_id: bool = False) -> Record | None:
        """The record after the policy (``None`` when dropped); findings are kept for :meth:`finding_rows`."""
        from curate.filters.policy import apply_policy

        out, report = apply_policy(record, self._policy, salt=self.salt)
        self.counts[report.action] += 1
        for f in report.findings:
            self.by_type[f.entity_type] += 1
        if out is None:
            return None
        if self.action == "redact" and out.meta:
            out = replace(out, meta={k: (v if k == "pii_source_id" else self.redact_text(v))
                                     for k, v in out.meta.items()})
        if keep_id:
            out = replace(out, id=record.id)
        self.findings.extend({"record_id": out.id, "field": f.field, "entity_type": f.entity_type, "start": f.start,
                              "end": f.end, "action": f.action, "value_hash": f.value_hash}
                             for f in report.findings)
        return out

    def summary(self) -> dict[str, Any]:
        """Counts by outcome (kept, redacted, flagged, dropped) and by entity type."""
        return {"action": self.action, "records": dict(self.counts), "by_type": dict(self.by_type)}


@dataclass
class PiiFilterReport:
    """What ``filter pii`` did to the active pool."""

    action: str
    records: int
    summary: dict[str, Any]
    seconds: float


def run_pii(ws: Workspace, *, action: str = "redact", allow_list: tuple[str, ...] = (),
            actor: str | None = None) -> PiiFilterReport:
    """Apply a PII action to every active pool record already stored (ids are kept, so tasks still point at them).

    Redacted text replaces the stored text; dropped records get status ``pii`` (their stored text is redacted
    too); flagged ones keep their text and
    list the types in ``meta.pii_flags``. On SQLite the database is then checkpointed and vacuumed so the old
    pages holding clear values are not left in the file.
    """
    import orjson

    from curate.store.schema import PiiFinding, RecordRow

    if action not in ACTIONS:
        raise InputError(f"--action must be one of {', '.join(ACTIONS)}; got {action!r}.")
    started = time.perf_counter()
    guard = PiiGuard(action, workspace_salt(ws), allow_list)
    records = list(ws.store.iter_records())
    dropped: list[str] = []
    with ws.store.write() as conn:
        for rec in records:
            out = guard.process(rec, keep_id=True)
            if out is None:
                dropped.append(rec.id)
            elif out.fields != rec.fields or out.meta != rec.meta:
                conn.execute(update(RecordRow).where(RecordRow.id == rec.id).values(
                    data=orjson.dumps(out.fields).decode(), meta=orjson.dumps(out.meta).decode() if out.meta else None))
        if guard.findings:
            conn.execute(insert(PiiFinding), guard.findings)
        dropped_ids = set(dropped)
        for rec in records:
            if rec.id in dropped_ids:  # out of the pool; its text is redacted all the same, so no value stays in clear
                conn.execute(update(RecordRow).where(RecordRow.id == rec.id).values(
                    status="pii", data=orjson.dumps(guard.redact_text(rec.fields)).decode(),
                    meta=orjson.dumps(guard.redact_text(rec.meta)).decode() if rec.meta else None))
        audit.append(conn, "filter.pii", {"records": len(records), **guard.summary()}, actor=actor)
    if ws.store.dialect == "sqlite":
        raw = ws.store.engine.raw_connection()  # outside any transaction: VACUUM cannot run inside one
        try:
            cursor = raw.cursor()
            for sql in ("PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"):
                cursor.execute(sql)
            cursor.close()
        finally:
            raw.close()
    return PiiFilterReport(action, len(records), guard.summary(), time.perf_counter() - started)
