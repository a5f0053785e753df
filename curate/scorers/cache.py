"""Scoring with a cache: a record's score under a scorer key is computed once, then read back.

Scores are stored per (scorer key, record id); the key names the scorer, its non-default parameters and its
model version, so a new adapter or a changed parameter scores afresh while re-scoring an unchanged pool
computes nothing. Each batch is committed as soon as it is scored, so an interrupted run keeps its finished
batches.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from curate.ingest.records import Record
from curate.runtime.faults import maybe_crash
from curate.scorers.base import Scorer, Scores, as_scores
from curate.store import audit
from curate.store.database import Store

DEFAULT_BATCH = 512
_CHUNK = 5000


@dataclass
class ScoreReport:
    """What one scoring run did: how many scores came from the cache and how many were computed."""

    scorer_key: str
    records: int
    cached: int
    computed: int
    seconds: float
    nan: int
    summary: dict[str, float]


def cache_key(scorer: Scorer, records: Sequence[Record]) -> str:
    """The key scores are cached under; for set-dependent scorers it includes a digest of the scored ids."""
    key = scorer.key()
    if getattr(scorer, "set_dependent", False):
        h = hashlib.blake2b(digest_size=8)
        for rid in sorted(r.id for r in records):
            h.update(rid.encode())
        key = f"{key}#set:{h.hexdigest()}"
    return key


def _marker(store: Store) -> str:
    return "?" if store.dialect == "sqlite" else "%s"


def load_cached(store: Store, key: str, ids: Sequence[str]) -> dict[str, float]:
    """Cached scores of ``ids`` under ``key`` (NaN for a stored "cannot score")."""
    found: dict[str, float] = {}
    mark = _marker(store)
    with store.read() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = tuple(ids[start : start + _CHUNK])
            sql = (f"SELECT record_id, value FROM scores WHERE scorer_key = {mark} "
                   f"AND record_id IN ({', '.join([mark] * len(chunk))})")
            for rid, value in conn.exec_driver_sql(sql, (key, *chunk)):
                found[rid] = math.nan if value is None else float(value)
    return found


def _save(store: Store, key: str, ids: Sequence[str], values: Scores) -> None:
    mark = _marker(store)
    sql = (f"INSERT INTO scores (scorer_key, record_id, value) VALUES ({mark}, {mark}, {mark}) "
           "ON CONFLICT (scorer_key, record_id) DO NOTHING")
    rows = [(key, rid, None if math.isnan(v) else float(v)) for rid, v in zip(ids, values.tolist(), strict=True)]
    with store.write() as conn:
        conn.exec_driver_sql(sql, rows)


def score_records(
    store: Store,
    scorer: Scorer,
    records: Sequence[Record],
    *,
    batch_size: int = DEFAULT_BATCH,
    actor: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[Scores, ScoreReport]:
    """Scores of ``records`` under ``scorer``, from the cache where possible.

    Returns:
        ``(scores, report)``: scores of shape ``(n,)`` float64 aligned with ``records`` (higher = more worth
        labeling; NaN = cannot score), and a :class:`ScoreReport`. One ``score`` audit event is appended.
    """
    started = time.perf_counter()
    key = cache_key(scorer, records)
    ids = [r.id for r in records]
    cached = load_cached(store, key, ids)
    out = np.array([cached.get(rid, math.nan) for rid in ids], dtype=np.float64)
    missing = [i for i, rid in enumerate(ids) if rid not in cached]
    step = len(missing) if getattr(scorer, "set_dependent", False) else max(1, batch_size)
    done = 0
    for start in range(0, len(missing), max(step, 1)):
        part = missing[start : start + step]
        batch = [records[i] for i in part]
        values = as_scores(scorer.score(batch), len(batch), who=scorer.key())
        out[part] = values
        _save(store, key, [ids[i] for i in part], values)
        maybe_crash("score.batch")  # tests only: SIGKILL after a committed batch (curate.runtime.faults)
        done += len(part)
        if on_progress:
            on_progress(done, len(missing))
    finite = out[np.isfinite(out)]
    summary: dict[str, float] = {}
    if finite.size:
        summary = {"min": float(finite.min()), "mean": float(finite.mean()), "max": float(finite.max())}
    report = ScoreReport(key, len(records), len(records) - len(missing), len(missing),
                         time.perf_counter() - started, int(np.isnan(out).sum()), summary)
    digest = hashlib.blake2b("".join(ids).encode(), digest_size=16).hexdigest()
    audit.record(store, "score", {"scorer_key": key[:400], "records": len(records), "computed": len(missing),
                                  "cached": report.cached, "ids_digest": digest}, actor=actor)
    return out, report
