"""Dedup runs: the report file that lists every removal, the stored status changes, and undo.

Every ``curate filter dedup`` run gets an id (``dedup-<UTC time>-<6 hex>``). A real run stores one
``status_changes`` row per record it removed (status before and after, and the record it duplicates or leaks
from), names the run in its audit event, and writes ``<workspace>/reports/<run>.json``; a dry run writes
``<run>-dry-run.json`` and nothing else. The report's ``clusters`` list is, per duplicate cluster (or per
test/calibration record copied), the record that stays and the records removed, each with a short preview.

:func:`undo_dedup` restores the latest run that changed something and is not undone yet (or the run named), record
by record: a record goes back to its status before the run only if it still has the status the run gave it
(a record changed since, e.g. dropped for PII, is left alone and counted as skipped). Undoing twice steps back
through the runs, newest first.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from curate.errors import InputError
from curate.ingest.records import Record, as_text
from curate.store import audit
from curate.store.schema import RecordCluster, RecordRow, StatusChange, utcnow
from curate.store.workspace import Workspace

ACTION = "filter.dedup"
_CHUNK = 1000


def new_run_id() -> str:
    """A fresh run id: ``dedup-YYYYMMDDTHHMMSSZ-xxxxxx`` (sorts by time)."""
    return f"dedup-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def preview(record: Record, width: int = 160) -> str:
    """One line that shows a record: its fields' heads joined by `` | `` (prompt, then each response)."""
    f = record.fields
    if record.kind == "text":
        parts = [f.get("text")]
    else:
        parts = [f.get("prompt") if "prompt" in f else f.get("messages"), f.get("completion"), f.get("chosen"),
                 f.get("rejected"), *(f.get("completions") or [])]
    texts = [as_text(p) for p in parts if p is not None]
    each = max(20, width // max(1, len(texts)))
    return _short(" | ".join(_short(t, each) for t in texts), width)


def member(record: Record, **extra: Any) -> dict[str, Any]:
    """A cluster member as the report lists it: ``{"id", "preview", **extra}``."""
    return {"id": record.id, "preview": preview(record), **extra}


def write_report(ws: Workspace, name: str, body: dict[str, Any]) -> Path:
    """Write ``body`` as ``<workspace>/reports/<name>.json``; returns the path."""
    path = ws.reports_dir / f"{name}.json"
    path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return path


def record_changes(conn: Connection, run: str, method: str, changes: list[dict[str, str]]) -> None:
    """Store the run's status changes (``{"record_id", "before", "after", "cluster_id"}`` each) for undo."""
    if changes:
        now = utcnow()
        conn.execute(insert(StatusChange), [{"run": run, "action": ACTION, "method": method, "created_at": now, **c}
                                            for c in changes])


def ids_digest(ids: list[str]) -> str:
    """BLAKE2b-128 (hex) of the sorted ids: names a set of records in an audit event without listing them."""
    h = hashlib.blake2b(digest_size=16)
    for rid in sorted(ids):
        h.update(rid.encode())
    return h.hexdigest()


@dataclass
class UndoReport:
    """What :func:`undo_dedup` did: the run, how many records went back to their status, and how many could not."""

    run: str
    method: str
    restored: int = 0
    skipped: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    skipped_ids: list[str] = field(default_factory=list)
    report_path: str = ""


@dataclass(frozen=True)
class RunSummary:
    """One dedup run that changed statuses: its id, method, time, number of changes, and whether it is undone."""

    run: str
    method: str
    created_at: str
    changes: int
    undone: bool


def dedup_runs(ws: Workspace) -> list[RunSummary]:
    """The dedup runs that changed something, newest first."""
    stmt = (select(StatusChange.run, StatusChange.method, func.min(StatusChange.created_at), func.count(),
                   func.count(StatusChange.undone_at), func.max(StatusChange.id))
            .where(StatusChange.action == ACTION)
            .group_by(StatusChange.run, StatusChange.method))
    with ws.store.read() as conn:
        rows = sorted(conn.execute(stmt).all(), key=lambda r: -int(r[5]))
    return [RunSummary(r[0], r[1], r[2], int(r[3]), int(r[4]) == int(r[3])) for r in rows]


def _target(ws: Workspace, run: str | None) -> RunSummary:
    runs = dedup_runs(ws)
    if run is None:
        open_runs = [r for r in runs if not r.undone]
        if not open_runs:
            raise InputError("nothing to undo: no `curate filter dedup` run has removed records" +
                             (" that are not undone already." if runs else "."))
        return open_runs[0]
    named = [r for r in runs if r.run == run]
    if not named:
        known = ", ".join(r.run for r in runs[:5]) or "none"
        raise InputError(f"--run {run!r}: no dedup run of that id removed records in this workspace. "
                         f"Recent runs: {known} (the id is printed by each run and names its report file).")
    if named[0].undone:
        raise InputError(f"dedup run {run} is undone already.")
    return named[0]


def undo_dedup(ws: Workspace, run: str | None = None, *, actor: str | None = None) -> UndoReport:
    """Give the records removed by a dedup run their previous status back, with an audit event.

    Args:
        run: the run id; ``None`` = the latest run that removed records and is not undone yet.

    Returns:
        An :class:`UndoReport`; the restored and skipped ids are also written to ``reports/<run>-undo.json``.

    Raises:
        InputError: no run to undo, an unknown run id, or a run undone already.
    """
    target = _target(ws, run)
    with ws.store.write() as conn:
        changes = conn.execute(select(StatusChange).where(StatusChange.run == target.run,
                                                          StatusChange.undone_at.is_(None))).all()
        ids = [c.record_id for c in changes]
        now: dict[str, str] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            now.update((rid, status) for rid, status in
                       conn.execute(select(RecordRow.id, RecordRow.status).where(RecordRow.id.in_(chunk))))
        back = [c for c in changes if now.get(c.record_id) == c.after]
        groups: dict[tuple[str, str, str], list[str]] = {}
        for c in back:
            groups.setdefault((c.before, c.after, c.method), []).append(c.record_id)
        for (before, after, method), group in groups.items():
            for start in range(0, len(group), _CHUNK):
                chunk = group[start:start + _CHUNK]
                conn.execute(update(RecordRow).where(RecordRow.id.in_(chunk), RecordRow.status == after)
                             .values(status=before))
                conn.execute(delete(RecordCluster).where(and_(RecordCluster.method == method,
                                                              RecordCluster.record_id.in_(chunk))))
        restored_by = Counter(c.before for c in back)
        conn.execute(update(StatusChange).where(StatusChange.run == target.run, StatusChange.undone_at.is_(None))
                     .values(undone_at=utcnow()))
        restored_ids = [c.record_id for c in back]
        skipped = [c.record_id for c in changes if now.get(c.record_id) != c.after]
        report = UndoReport(target.run, target.method, len(back), len(skipped), dict(restored_by), skipped)
        path = write_report(ws, f"{target.run}-undo", {
            "run": target.run, "method": target.method, "undone_at": utcnow(), "restored": restored_ids,
            "skipped": [{"id": c.record_id, "status_now": now.get(c.record_id), "status_by_run": c.after}
                        for c in changes if now.get(c.record_id) != c.after]})
        report.report_path = str(path)
        audit.append(conn, f"{ACTION}.undo", {
            "run": target.run, "method": target.method, "restored": report.restored, "skipped": report.skipped,
            "restored_by_status": report.by_status, "restored_ids_digest": ids_digest(restored_ids),
            "report": path.name}, actor=actor)
    return report
