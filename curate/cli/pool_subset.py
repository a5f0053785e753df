"""``--limit`` / ``--sample``: the part of the candidate pool a command works on."""

from __future__ import annotations

from typing import Any

import numpy as np

from curate.cli.output import err_console


def _in_ingest_order(ws: Any, pool: list[Any]) -> list[Any]:
    """``pool`` sorted as it was ingested (source, then row): the order ``--limit`` promises."""
    from sqlalchemy import select

    from curate.store.schema import RecordRow

    with ws.store.read() as conn:
        order = {rid: (sid, row) for rid, sid, row in conn.execute(
            select(RecordRow.id, RecordRow.source_id, RecordRow.source_row).where(RecordRow.split == "pool"))}
    return sorted(pool, key=lambda r: order.get(r.id, (0, 0)))


def restrict_pool(pool: list[Any], *, limit: int | None, sample: int | None, seed: int,
                  ws: Any = None) -> list[Any]:
    """The candidates a command works on: all, the first ``limit`` (in the order they were ingested, given the
    workspace ``ws``), or ``sample`` drawn at random with ``seed`` (kept in pool order); says so on stderr when the
    pool was cut."""
    from curate.errors import InputError

    if limit is not None and sample is not None:
        raise InputError("--limit takes the first N records and --sample a random N: pass one of them.")
    n = limit if limit is not None else sample
    if n is None or n >= len(pool):
        return pool
    if limit is not None:
        chosen = (_in_ingest_order(ws, pool) if ws is not None else pool)[:limit]
    else:
        picked = np.sort(np.random.default_rng(seed).choice(len(pool), size=n, replace=False))
        chosen = [pool[int(i)] for i in picked]
    how = f"the first {n:,}" if limit is not None else f"a random sample of {n:,} (seed {seed})"
    err_console.print(f"working on {how} of {len(pool):,} candidate records", highlight=False)
    return chosen
