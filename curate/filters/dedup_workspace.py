"""Workspace-level filters: mark duplicates and test-set leaks in the pool, recording clusters and an audit event.

Duplicates are found per record kind (a text and a preference pair are never duplicates of each other). Text and
example records are duplicates when their texts are; preference and candidates records when they make the same
comparison (:mod:`curate.filters.dedup_comparisons`). A removed duplicate gets status ``duplicate``; a pool record
that near-copies a frozen test or calibration record gets status ``leak``, so neither can be selected for labeling
or exported for training. Every run lists its removals in ``reports/<run>.json`` and can be undone
(:mod:`curate.filters.dedup_runs`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, delete, insert, select, update

from curate.errors import InputError
from curate.filters.dedup_minhash import MinHashParams
from curate.filters.dedup_pairs import check_threshold
from curate.filters.dedup_runs import member, new_run_id, record_changes, write_report
from curate.ingest.records import Record
from curate.runtime.embeddings import Embedder
from curate.store import audit
from curate.store.schema import RecordCluster, RecordRow, ScoreRow
from curate.store.workspace import Workspace

if TYPE_CHECKING:
    from curate.filters.dedup import DedupResult

METHODS = ("exact", "minhash", "semantic")
KEEP_POLICIES = ("first", "longest", "highest-score")
_CHUNK = 1000


@dataclass
class DedupReport:
    """What ``filter dedup`` did (or, with ``dry_run``, would do): per kind, how many records, removed and in
    duplicate clusters; leaks found; the run id and its report file.

    ``clusters`` lists, per duplicate cluster (``status`` duplicate) or per copied test/calibration record
    (``status`` leak), the record that stays (``kept``) and the records removed, as ``{"id", "preview"}``.
    """

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
    run: str = ""
    dry_run: bool = False
    report_path: str | None = None
    clusters: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (without the cluster list, which is in the report file)."""
        return {k: v for k, v in vars(self).items() if k != "clusters"}


def _mark(conn: Connection, status: str, ids: list[str]) -> None:
    for start in range(0, len(ids), _CHUNK):
        conn.execute(update(RecordRow).where(RecordRow.id.in_(ids[start : start + _CHUNK])).values(status=status))


def _replace_clusters(conn: Connection, method: str, pool_ids: list[str], rows: list[dict[str, str]]) -> None:
    """The ``method`` cluster rows of the records this run looked at, replaced by ``rows`` (rows of records
    removed by an earlier run stay)."""
    for start in range(0, len(pool_ids), _CHUNK):
        conn.execute(delete(RecordCluster).where(RecordCluster.method == method,
                                                 RecordCluster.record_id.in_(pool_ids[start : start + _CHUNK])))
    if rows:
        conn.execute(insert(RecordCluster), rows)


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


def _keep_highest(ws: Workspace, key: str, by_kind: dict[str, list[Record]],
                  results: dict[str, DedupResult]) -> dict[str, DedupResult]:
    """Per kind, the duplicates with the highest cached score of each group surviving."""
    members = {kind: np.flatnonzero(result.linked()).tolist() for kind, result in results.items()}
    found = _cluster_scores(ws, key, [by_kind[kind][i].id for kind, idx in members.items() for i in idx])
    lowest = min([v for v in found.values() if not np.isnan(v)], default=0.0) - 1.0  # NaN: "cannot score"
    out = {}
    for kind, idx in members.items():
        values = np.zeros(len(by_kind[kind]))  # singletons: any finite value, they are kept anyway
        values[idx] = [found[by_kind[kind][i].id] for i in idx]
        out[kind] = results[kind].rekept("highest_score", np.nan_to_num(values, nan=lowest))
    return out


def _pair_options(method: str, pair_threshold: float | None) -> dict[str, Any]:
    """The field-matching settings of preference/candidates records: ``{"minhash", "semantic_threshold"}``."""
    from curate.filters.dedup_comparisons import PAIR_COSINE, PAIR_MINHASH

    if pair_threshold is not None:
        check_threshold(pair_threshold, "--pair-threshold")
    if method == "semantic":
        cosine = PAIR_COSINE if pair_threshold is None else pair_threshold
        return {"minhash": PAIR_MINHASH, "semantic_threshold": cosine}
    minhash = PAIR_MINHASH if pair_threshold is None else MinHashParams(threshold=pair_threshold)
    return {"minhash": minhash, "semantic_threshold": PAIR_COSINE}


def _dedup_kind(kind: str, records: list[Record], *, keep: str, method: str, embedder: Embedder | None,
                threshold: float, pair_options: dict[str, Any]) -> DedupResult:
    """Duplicates among one kind's records: whole comparisons for the pair kinds, the record text otherwise."""
    from curate.filters.dedup import dedup_records
    from curate.filters.dedup_comparisons import dedup_comparisons, is_pair_kind

    policy: Any = keep.replace("-", "_")
    if is_pair_kind(kind):
        return dedup_comparisons(records, method=method, keep=policy, embedder=embedder,  # type: ignore[arg-type]
                                 **pair_options)
    options: dict[str, Any] = {"method": method, "embedder": embedder}
    if method == "semantic":
        options["semantic_threshold"] = threshold
    return dedup_records(records, keep=policy, **options)


def _leaks(survivors: list[Record], reference: list[Record], *, method: str, embedder: Embedder | None,
           threshold: float, pair_options: dict[str, Any]) -> list[tuple[Record, Record]]:
    """``(pool record, reference record it copies)`` for every survivor that copies a test/calibration record.

    A preference/candidates survivor copies a pair-kind reference record when it makes the same comparison
    (:func:`comparison_cross`); every other combination compares the records' whole texts, as before.
    """
    from curate.filters.dedup import cross_set_records
    from curate.filters.dedup_comparisons import comparison_cross, is_pair_kind

    methods: list[Any] = ["exact", "minhash"] + (["semantic"] if method == "semantic" else [])
    pair_refs = [r for r in reference if is_pair_kind(r.kind)]
    other_refs = [r for r in reference if not is_pair_kind(r.kind)]
    found: dict[str, tuple[Record, Record]] = {}
    checks = [([r for r in survivors if not is_pair_kind(r.kind)], reference),
              ([r for r in survivors if is_pair_kind(r.kind)], other_refs)]
    for pool, refs in checks:
        if pool and refs:
            match = cross_set_records(pool, refs, method=methods, embedder=embedder,
                                      semantic_threshold=threshold).match
            found.update((pool[i].id, (pool[i], refs[j])) for i, j in enumerate(match) if j >= 0)
    pairs = [r for r in survivors if is_pair_kind(r.kind)]
    if pairs and pair_refs:
        match = comparison_cross(pairs, pair_refs, method=methods[1:], embedder=embedder, **pair_options)
        for i, j in enumerate(match):
            if j >= 0:
                found.setdefault(pairs[i].id, (pairs[i], pair_refs[j]))
    return [found[r.id] for r in survivors if r.id in found]


def run_dedup(
    ws: Workspace,
    *,
    method: str = "minhash",
    keep: str = "first",
    score_key: str | None = None,
    threshold: float = 0.9,
    pair_threshold: float | None = None,
    cross_set: bool = True,
    embedder: Embedder | None = None,
    actor: str | None = None,
    dry_run: bool = False,
) -> DedupReport:
    """De-duplicate the active pool with ``method`` and flag near-copies of the test/calibration records.

    Text and example records are duplicates when their whole texts are; preference and candidates records when
    they make the same comparison (same prompt, same responses as a set; near-copies allowed field by field:
    :mod:`curate.filters.dedup_comparisons`). Every removal is listed in ``reports/<run>.json`` and stored for
    :func:`curate.filters.dedup_runs.undo_dedup`.

    Args:
        method: ``exact`` (normalised hash), ``minhash`` (MinHash LSH; also catches exact copies) or
            ``semantic`` (embedding cosine >= ``threshold``).
        pair_threshold: the similarity at and above which two prompts or two responses of preference/candidates
            records are near-copies: MinHash Jaccard (default 0.8; text records use 0.5) or, with ``semantic``,
            embedding cosine (default 0.97; text records use ``threshold``). Answers of different models to one
            prompt are often that alike, and each of them is another comparison (see
            :mod:`curate.filters.dedup_comparisons`).
        keep: which record of a cluster stays active: ``first`` (ingest order), ``longest`` or ``highest-score``
            (the largest cached score under ``score_key``; a stored "cannot score" (NaN) counts as lowest; ties ->
            ingest order). Every member of a duplicate cluster needs a cached score, else :class:`InputError`.
        score_key: the scorer key of ``keep="highest-score"`` (or a scorer name matching one key); ``None``
            uses the only key in the score cache.
        cross_set: also flag pool records that copy a ``test`` or ``calibration`` record (status ``leak``).
        dry_run: change nothing; the report (and ``reports/<run>-dry-run.json``) lists what would be removed.
    """
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}; got {method!r}.")
    keep = keep.replace("_", "-")
    if keep not in KEEP_POLICIES:
        raise InputError(f"--keep must be one of {', '.join(KEEP_POLICIES)}; got {keep!r}.")
    if score_key is not None and keep != "highest-score":
        raise InputError(f"--score-key goes with --keep highest-score; got --keep {keep}.")
    pair_options = _pair_options(method, pair_threshold)
    started = time.perf_counter()
    key = resolve_score_key(ws, score_key) if keep == "highest-score" else None
    report = DedupReport(method, keep, key, run=new_run_id(), dry_run=dry_run)
    emb = embedder or (Embedder(cache_dir=ws.cache_dir) if method == "semantic" else None)
    pool = sorted(ws.store.iter_records(), key=lambda r: (r.source, r.row))
    by_kind: dict[str, list[Record]] = {}
    for rec in pool:
        by_kind.setdefault(rec.kind, []).append(rec)
    results = {kind: _dedup_kind(kind, records, keep="first" if key else keep, method=method, embedder=emb,
                                 threshold=threshold, pair_options=pair_options)
               for kind, records in by_kind.items()}
    if key is not None:
        results = _keep_highest(ws, key, by_kind, results)
    sizes = {kind: Counter(int(c) for c in result.cluster_id) for kind, result in results.items()}
    keeps = {kind: result.keep for kind, result in results.items()}
    removed: set[str] = set()
    rows: list[dict[str, str]] = []
    changes: list[dict[str, str]] = []
    for kind, records in by_kind.items():
        result, kept = results[kind], keeps[kind]
        members: dict[int, list[int]] = {}
        for i, c in enumerate(result.cluster_id):
            if sizes[kind][int(c)] > 1:
                members.setdefault(int(c), []).append(i)
        for idx in members.values():
            keeper = records[next(i for i in idx if kept[i])]
            gone = [records[i] for i in idx if not kept[i]]
            rows.extend({"method": method, "record_id": records[i].id, "cluster_id": keeper.id} for i in idx)
            changes.extend({"record_id": r.id, "before": "active", "after": "duplicate", "cluster_id": keeper.id}
                           for r in gone)
            removed.update(r.id for r in gone)
            report.clusters.append({"kind": kind, "status": "duplicate", "kept": member(keeper),
                                    "removed": [member(r) for r in gone]})
        report.by_kind[kind] = {"records": result.n, "removed": int((~kept).sum()),
                                "duplicate_clusters": result.n_duplicate_clusters}
        report.records += result.n
        report.removed += int((~kept).sum())
        report.duplicate_clusters += result.n_duplicate_clusters
    if cross_set:
        reference = [r for split in ("test", "calibration") for r in ws.store.iter_records(split=split, status=None)]
        report.reference = len(reference)
        survivors = [r for r in pool if r.id not in removed]
        leaks = _leaks(survivors, reference, method=method, embedder=emb, threshold=threshold,
                       pair_options=pair_options) if reference else []
        copied: dict[str, list[Record]] = {}
        refs = {ref.id: ref for _, ref in leaks}
        for rec, ref in leaks:
            copied.setdefault(ref.id, []).append(rec)
            changes.append({"record_id": rec.id, "before": "active", "after": "leak", "cluster_id": ref.id})
        report.clusters.extend({"kind": refs[rid].kind, "status": "leak", "kept": member(refs[rid], split="held-out"),
                                "removed": [member(r) for r in recs]} for rid, recs in copied.items())
        report.leaks = len(leaks)
    report.seconds = time.perf_counter() - started  # before _finish writes the report file
    _finish(ws, report, [r.id for r in pool], rows, changes, actor=actor)
    return report


def _finish(ws: Workspace, report: DedupReport, pool_ids: list[str], rows: list[dict[str, str]],
            changes: list[dict[str, str]], *, actor: str | None) -> None:
    """Write the report file; unless a dry run, apply the changes, clusters, undo rows and audit event at once."""
    body = {"run": report.run, "dry_run": report.dry_run, **report.as_dict(), "clusters": report.clusters}
    if report.dry_run:
        report.report_path = str(write_report(ws, f"{report.run}-dry-run", body))
        return
    path = write_report(ws, report.run, body)
    report.report_path = str(path)
    try:
        with ws.store.write() as conn:
            for status in ("duplicate", "leak"):
                _mark(conn, status, [c["record_id"] for c in changes if c["after"] == status])
            _replace_clusters(conn, report.method, pool_ids, rows)
            record_changes(conn, report.run, report.method, changes)
            audit.append(conn, "filter.dedup", {
                "method": report.method, "keep": report.keep, **({"score_key": report.score_key}
                                                                 if report.score_key else {}),
                "records": report.records, "removed": report.removed, "leaks": report.leaks,
                "duplicate_clusters": report.duplicate_clusters, "run": report.run, "report": path.name},
                actor=actor)
    except BaseException:
        path.unlink(missing_ok=True)  # the run did not happen: no report of it
        raise
