"""Workspace-level filters: mark duplicates and test-set leaks in the pool, recording clusters and an audit event.

Duplicates are found per record kind (a text and a preference pair are never duplicates of each other). A
removed duplicate gets status ``duplicate``; a pool record that near-copies a frozen test or calibration record
gets status ``leak``, so neither can be selected for labeling or exported for training.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, update

from curate import audit
from curate.embeddings import Embedder
from curate.errors import InputError
from curate.records import Record
from curate.schema import RecordCluster, RecordRow
from curate.workspace import Workspace

METHODS = ("exact", "minhash", "semantic")
KEEP_POLICIES = ("first", "longest")


@dataclass
class DedupReport:
    """What ``filter dedup`` did: per kind, how many records, removed and in duplicate clusters; leaks found."""

    method: str
    keep: str
    records: int = 0
    removed: int = 0
    duplicate_clusters: int = 0
    leaks: int = 0
    reference: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0


def _mark(ws: Workspace, status: str, ids: list[str]) -> None:
    if not ids:
        return
    with ws.store.write() as conn:
        for start in range(0, len(ids), 1000):
            conn.execute(update(RecordRow).where(RecordRow.id.in_(ids[start : start + 1000])).values(status=status))


def run_dedup(
    ws: Workspace,
    *,
    method: str = "minhash",
    keep: str = "first",
    threshold: float = 0.9,
    cross_set: bool = True,
    embedder: Embedder | None = None,
    actor: str | None = None,
) -> DedupReport:
    """De-duplicate the active pool with ``method`` and flag near-copies of the test/calibration records.

    Args:
        method: ``exact`` (normalised hash), ``minhash`` (MinHash LSH; also catches exact copies) or
            ``semantic`` (embedding cosine >= ``threshold``).
        keep: which record of a cluster stays active: ``first`` (ingest order) or ``longest``.
        cross_set: also flag pool records that copy a ``test`` or ``calibration`` record (status ``leak``).
    """
    from curate.filters.dedup import cross_set_records, dedup_records

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}; got {method!r}.")
    if keep not in KEEP_POLICIES:
        raise InputError(f"--keep must be one of {', '.join(KEEP_POLICIES)}; got {keep!r}.")
    started = time.perf_counter()
    report = DedupReport(method, keep)
    emb = embedder or (Embedder(cache_dir=ws.cache_dir) if method == "semantic" else None)
    pool = sorted(ws.store.iter_records(), key=lambda r: (r.source, r.row))
    by_kind: dict[str, list[Record]] = {}
    for rec in pool:
        by_kind.setdefault(rec.kind, []).append(rec)
    options: dict[str, Any] = {"method": method, "embedder": emb}
    if method == "semantic":
        options["semantic_threshold"] = threshold
    removed: list[str] = []
    clusters: list[dict[str, str]] = []
    for kind, records in by_kind.items():
        result = dedup_records(records, keep=keep, **options)
        kept_of = {int(c): records[i].id for i, c in enumerate(result.cluster_id) if result.keep[i]}
        sizes = Counter(int(c) for c in result.cluster_id)
        for i, rec in enumerate(records):
            cid = int(result.cluster_id[i])
            if sizes[cid] > 1:
                clusters.append({"method": method, "record_id": rec.id, "cluster_id": kept_of[cid]})
            if not result.keep[i]:
                removed.append(rec.id)
        report.by_kind[kind] = {"records": result.n, "removed": result.n_removed,
                                "duplicate_clusters": result.n_duplicate_clusters}
        report.records += result.n
        report.removed += result.n_removed
        report.duplicate_clusters += result.n_duplicate_clusters
    leaks: list[str] = []
    if cross_set:
        reference = [r for split in ("test", "calibration") for r in ws.store.iter_records(split=split, status=None)]
        report.reference = len(reference)
        survivors = [r for r in pool if r.id not in set(removed)]
        if reference and survivors:
            cross_methods = ["exact", "minhash"] + (["semantic"] if method == "semantic" else [])
            flags = cross_set_records(survivors, reference, method=cross_methods, embedder=emb,
                                      semantic_threshold=threshold)
            leaks = [rec.id for rec, hit in zip(survivors, flags.flagged, strict=True) if hit]
    report.leaks = len(leaks)
    _mark(ws, "duplicate", removed)
    _mark(ws, "leak", leaks)
    with ws.store.write() as conn:
        conn.execute(delete(RecordCluster).where(RecordCluster.method == method))
        if clusters:
            conn.execute(insert(RecordCluster), clusters)
        audit.append(conn, "filter.dedup", {"method": method, "keep": keep, "records": report.records,
                                            "removed": report.removed, "leaks": report.leaks,
                                            "duplicate_clusters": report.duplicate_clusters}, actor=actor)
    report.seconds = time.perf_counter() - started
    return report


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

    from curate.privacy import ACTIONS, PiiGuard, workspace_salt
    from curate.schema import PiiFinding

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
