"""Workspace-level filters: mark duplicates and test-set leaks in the pool, recording clusters and an audit event.

Duplicates are found per record kind (a text and a preference pair are never duplicates of each other). A
removed duplicate gets status ``duplicate``; a pool record that near-copies a frozen test or calibration record
gets status ``leak``, so neither can be selected for labeling or exported for training.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, insert, select, update

from curate.errors import InputError
from curate.ingest.records import Record
from curate.runtime.embeddings import Embedder
from curate.store import audit
from curate.store.schema import RecordCluster, RecordRow, ScoreRow
from curate.store.workspace import Workspace

if TYPE_CHECKING:
    from curate.filters.dedup import DedupResult

METHODS = ("exact", "minhash", "semantic")
KEEP_POLICIES = ("first", "longest", "highest-score")


@dataclass
class DedupReport:
    """What ``filter dedup`` did: per kind, how many records, removed and in duplicate clusters; leaks found."""

    method: str
    keep: str
    score_key: str | None = None
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


def score_keys(ws: Workspace) -> list[str]:
    """The scorer keys with cached scores in the workspace, sorted."""
    with ws.store.read() as conn:
        return sorted(conn.execute(select(ScoreRow.scorer_key).distinct()).scalars())


def resolve_score_key(ws: Workspace, score_key: str | None) -> str:
    """The cached scorer key to keep by: ``score_key`` itself, the one key whose scorer name it is, or (when
    ``None``) the only key in the score cache; else :class:`InputError` listing the keys."""
    keys = score_keys(ws)
    if not keys:
        raise InputError("--keep highest-score needs cached scores, and the workspace has none. Run "
                         "`curate score --scorer NAME` first.")
    if score_key is None:
        if len(keys) == 1:
            return keys[0]
        raise InputError(f"--keep highest-score: the score cache holds {len(keys)} scorer keys; choose one with "
                         f"--score-key: {', '.join(keys)}")
    if score_key in keys:
        return score_key
    named = [k for k in keys if k.split("(", 1)[0] == score_key]
    if len(named) == 1:
        return named[0]
    raise InputError(f"--score-key {score_key!r} " + (f"matches {len(named)} keys" if named else "has no cached "
                     "scores") + f"; the score cache holds: {', '.join(named or keys)}. Pass one of them, or run "
                     "`curate score` first.")


def _cluster_scores(ws: Workspace, key: str, members: list[str]) -> dict[str, float]:
    """Cached scores of the duplicate-cluster members under ``key``; all must be there, else InputError."""
    from curate.scorers.cache import load_cached

    found = load_cached(ws.store, key, members)
    missing = len(members) - len(found)
    if missing:
        raise InputError(f"--keep highest-score: {missing:,} of {len(members):,} records in duplicate clusters have "
                         f"no cached score under {key!r}. Run `curate score` with that scorer first (it scores "
                         "the candidate pool), or choose another --score-key.")
    return found


def _keep_highest(ws: Workspace, key: str, by_kind: dict[str, list[Record]], results: dict[str, DedupResult],
                  sizes: dict[str, Counter[int]]) -> dict[str, npt.NDArray[np.bool_]]:
    """Per kind, the keep mask choosing the highest cached score of each duplicate cluster."""
    from curate.filters.dedup import keep_mask

    members = {kind: [i for i, c in enumerate(result.cluster_id) if sizes[kind][int(c)] > 1]
               for kind, result in results.items()}
    found = _cluster_scores(ws, key, [by_kind[kind][i].id for kind, idx in members.items() for i in idx])
    lowest = min([v for v in found.values() if not np.isnan(v)], default=0.0) - 1.0  # NaN: "cannot score"
    keeps = {}
    for kind, idx in members.items():
        values = np.zeros(len(by_kind[kind]))  # singletons: any finite value, they are kept anyway
        values[idx] = [found[by_kind[kind][i].id] for i in idx]
        keeps[kind] = keep_mask(results[kind].cluster_id, "highest_score", scores=np.nan_to_num(values, nan=lowest))
    return keeps


def run_dedup(
    ws: Workspace,
    *,
    method: str = "minhash",
    keep: str = "first",
    score_key: str | None = None,
    threshold: float = 0.9,
    cross_set: bool = True,
    embedder: Embedder | None = None,
    actor: str | None = None,
) -> DedupReport:
    """De-duplicate the active pool with ``method`` and flag near-copies of the test/calibration records.

    Args:
        method: ``exact`` (normalised hash), ``minhash`` (MinHash LSH; also catches exact copies) or
            ``semantic`` (embedding cosine >= ``threshold``).
        keep: which record of a cluster stays active: ``first`` (ingest order), ``longest`` or ``highest-score``
            (the largest cached score under ``score_key``; a stored "cannot score" (NaN) counts as lowest; ties ->
            ingest order). Every member of a duplicate cluster needs a cached score, else :class:`InputError`.
        score_key: the scorer key of ``keep="highest-score"`` (or a scorer name matching one key); ``None``
            uses the only key in the score cache.
        cross_set: also flag pool records that copy a ``test`` or ``calibration`` record (status ``leak``).
    """
    from curate.filters.dedup import cross_set_records, dedup_records

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}; got {method!r}.")
    keep = keep.replace("_", "-")
    if keep not in KEEP_POLICIES:
        raise InputError(f"--keep must be one of {', '.join(KEEP_POLICIES)}; got {keep!r}.")
    if score_key is not None and keep != "highest-score":
        raise InputError(f"--score-key goes with --keep highest-score; got --keep {keep}.")
    started = time.perf_counter()
    key = resolve_score_key(ws, score_key) if keep == "highest-score" else None
    report = DedupReport(method, keep, key)
    emb = embedder or (Embedder(cache_dir=ws.cache_dir) if method == "semantic" else None)
    pool = sorted(ws.store.iter_records(), key=lambda r: (r.source, r.row))
    by_kind: dict[str, list[Record]] = {}
    for rec in pool:
        by_kind.setdefault(rec.kind, []).append(rec)
    options: dict[str, Any] = {"method": method, "embedder": emb}
    if method == "semantic":
        options["semantic_threshold"] = threshold
    results = {kind: dedup_records(records, keep="first" if key else keep, **options)
               for kind, records in by_kind.items()}
    sizes = {kind: Counter(int(c) for c in result.cluster_id) for kind, result in results.items()}
    keeps = {kind: result.keep for kind, result in results.items()}
    if key is not None:
        keeps = _keep_highest(ws, key, by_kind, results, sizes)
    removed: list[str] = []
    clusters: list[dict[str, str]] = []
    for kind, records in by_kind.items():
        result, kept = results[kind], keeps[kind]
        kept_of = {int(c): records[i].id for i, c in enumerate(result.cluster_id) if kept[i]}
        for i, rec in enumerate(records):
            cid = int(result.cluster_id[i])
            if sizes[kind][cid] > 1:
                clusters.append({"method": method, "record_id": rec.id, "cluster_id": kept_of[cid]})
            if not kept[i]:
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
        audit.append(conn, "filter.dedup", {"method": method, "keep": keep, **({"score_key": key} if key else {}),
                                            "records": report.records, "removed": report.removed, "leaks": report.leaks,
                                            "duplicate_clusters": report.duplicate_clusters}, actor=actor)
    report.seconds = time.perf_counter() - started
    return report
