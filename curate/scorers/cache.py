"""Scoring with a cache: a record's score under a scorer key is computed once, then read back.

Scores are stored per (scorer key, record id); the key names the scorer, its non-default parameters and its
model version, so a new adapter or a changed parameter scores afresh while re-scoring an unchanged pool
computes nothing. Each batch is committed as soon as it is scored (a few rows: cheap next to any model), so an
interrupted run (an error, Ctrl-C or SIGTERM, even SIGKILL) keeps its finished batches and the rerun computes only
the rest. A slow scorer (a causal LM) scores a few records per call
(:attr:`~curate.scorers.base.BaseScorer.records_per_call`), so a batch, and the time between two commits, is a
few seconds; the embeddings behind the other scorers are committed by time in their own cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from curate.ingest.records import Record
from curate.runtime.checkpoint import Checkpoint
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


def save_metadata(store: Store, key: str, name: str, payload: dict[str, Any]) -> None:
    """Keep ``payload`` (JSON-able) as the ``name`` metadata of the scores under ``key`` (replacing an older one)."""
    from sqlalchemy import delete, insert

    from curate.store.schema import ScoreMetadata

    with store.write() as conn:
        conn.execute(delete(ScoreMetadata).where(ScoreMetadata.scorer_key == key, ScoreMetadata.name == name))
        conn.execute(insert(ScoreMetadata).values(scorer_key=key, name=name, payload=orjson.dumps(payload).decode()))


def load_metadata(store: Store, key: str) -> dict[str, dict[str, Any]]:
    """``{name: payload}`` of every metadata entry kept for the scores under ``key`` (empty when none)."""
    from sqlalchemy import select

    from curate.store.schema import ScoreMetadata

    with store.read() as conn:
        rows = conn.execute(select(ScoreMetadata.name, ScoreMetadata.payload)
                            .where(ScoreMetadata.scorer_key == key)).all()
    return {name: orjson.loads(payload) for name, payload in rows}


def _save(store: Store, key: str, ids: Sequence[str], values: Scores) -> None:
    mark = _marker(store)
    sql = (f"INSERT INTO scores (scorer_key, record_id, value) VALUES ({mark}, {mark}, {mark}) "
           "ON CONFLICT (scorer_key, record_id) DO NOTHING")
    rows = [(key, rid, None if math.isnan(v) else float(v)) for rid, v in zip(ids, values.tolist(), strict=True)]
    with store.write() as conn:
        conn.exec_driver_sql(sql, rows)


def batch_plan(scorer: Scorer, n_missing: int, batch_size: int | None = None) -> list[range]:
    """Positions (into the uncached records, in order) of each ``scorer.score`` call: ``batch_size`` at a time
    (default: the scorer's ``records_per_call``, else :data:`DEFAULT_BATCH`); all at once for a set-dependent
    scorer. Every engine computes these same batches, so scores are identical wherever they run.

    >>> [list(r) for r in batch_plan(object(), 5, 2)]
    [[0, 1], [2, 3], [4]]
    """
    if getattr(scorer, "set_dependent", False):
        step = n_missing
    else:
        step = batch_size or getattr(scorer, "records_per_call", None) or DEFAULT_BATCH
    step = max(int(step), 1)
    return [range(s, min(s + step, n_missing)) for s in range(0, n_missing, step)]


def score_records(
    store: Store,
    scorer: Scorer,
    records: Sequence[Record],
    *,
    batch_size: int | None = None,
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
    done = 0
    combined = None  # a combination (rewrite_need): its parts scored through the cache, then combined
    if missing and getattr(scorer, "parts", None) and callable(getattr(scorer, "combine", None)):
        combined = _combine_parts(store, scorer, records, batch_size, actor, on_progress)

    def save(items: list[tuple[str, float]]) -> None:
        _save(store, key, [rid for rid, _ in items], np.array([v for _, v in items], dtype=np.float64))
        maybe_crash("score.batch")  # tests only: SIGKILL after a committed batch (curate.runtime.faults)

    try:
        with Checkpoint(save, f"scores ({getattr(scorer, 'name', 'scorer')})", every=0) as checkpoint:
            for span in batch_plan(scorer, len(missing), batch_size):
                part = missing[span.start : span.stop]
                values = combined[part] if combined is not None else as_scores(
                    scorer.score([records[i] for i in part]), len(part), who=scorer.key())
                out[part] = values
                checkpoint.add([(ids[i], v) for i, v in zip(part, values.tolist(), strict=True)])
                done += len(part)
                if on_progress and combined is None:  # a combination's progress counts its parts' records
                    on_progress(done, len(missing))
    except BaseException:  # Ctrl-C or an error: the finished batches are committed; say so in the audit log
        with contextlib.suppress(Exception):
            audit.record(store, "score", {"scorer_key": key[:400], "records": len(records), "computed": done,
                                          "cached": len(records) - len(missing), "interrupted": True}, actor=actor)
        raise
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



def _combine_parts(store: Store, scorer: Any, records: Sequence[Record], batch_size: int | None, actor: str | None,
                   on_progress: Callable[[int, int], None] | None) -> Scores:
    """``(len(records),)``: a combination scorer's ``combine`` of its ``parts``' scores, each part scored through the
    cache on its own (a rerun or another combination reuses them; an interrupted run keeps their finished batches),
    with progress counted over every part's records."""
    n, parts = len(records), list(scorer.parts)
    scores = []
    for i, part in enumerate(parts):
        def progress(done: int, total: int, offset: int = i * n) -> None:
            if on_progress:
                on_progress(offset + (n - total) + done, n * len(parts))
        values, _ = score_records(store, part, records, batch_size=batch_size, actor=actor, on_progress=progress)
        scores.append(values)
    return np.asarray(scorer.combine(scores), dtype=np.float64)
