"""One round of active learning from the pool: candidates, cached scores, a tagged selection, a round of tasks.

``Strategy`` composes a scorer and a selector with the random-mix fraction and quotas (modAL's
``make_query_strategy``, as data). ``run_round`` applies it to the workspace pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from curate.errors import InputError
from curate.ingest.records import Record
from curate.rounds.labeled import labeled_records as labeled_records  # re-exported: where callers look for it
from curate.rounds.tasks import RoundReport, create_round, selected_record_ids
from curate.runtime.embeddings import Embedder
from curate.scorers.base import Scorer
from curate.scorers.cache import ScoreReport, score_records
from curate.selectors.base import Selector, needs_embeddings
from curate.selectors.mix import NoNearDuplicates, Quota, RandomMix, select_tagged
from curate.store.schema import Task
from curate.store.workspace import Workspace


@dataclass(frozen=True)
class Strategy:
    """A scorer and a selector, plus the random-mix fraction and optional quotas per group.

    Attributes:
        random_mix: fraction of every batch drawn uniformly at random (tagged ``random`` on its tasks).
        quota_field: ``label``, ``kind`` or ``meta.<column>``: the group of each record for quotas.
        min_per_group: the least number of records each group gets in a batch (when it has that many).
        dedup_threshold: cosine similarity above which two records of one batch count as near-duplicates.
    """

    scorer: Scorer
    selector: Selector
    random_mix: float = 0.1
    quota_field: str | None = None
    min_per_group: int = 0
    dedup_threshold: float | None = 0.95

    def composed_selector(self) -> Selector:
        """The selector wrapped, inside out, in batch de-duplication, quotas and the random mix."""
        selector: Selector = self.selector
        if self.dedup_threshold is not None:
            selector = NoNearDuplicates(base=selector, threshold=self.dedup_threshold)
        if self.quota_field:
            selector = Quota(base=selector, minimum=self.min_per_group)
        if self.random_mix > 0:
            selector = RandomMix(base=selector, fraction=self.random_mix)
        return selector

    def key(self) -> str:
        """``scorer key + composed selector key`` (plus the quota field), as stored on rounds and tasks."""
        key = f"{self.scorer.key()} + {self.composed_selector().key()}"
        return f"{key} [quota by {self.quota_field}]" if self.quota_field else key


def make_strategy(scorer: Scorer, selector: Selector, **options: Any) -> Strategy:
    """Compose a scorer and a selector (options as in :class:`Strategy`)."""
    return Strategy(scorer, selector, **options)


def group_of(record: Record, field_name: str) -> str:
    """The quota group of a record: its label, kind, or a ``meta.<column>`` value (``"(none)"`` if absent)."""
    if field_name == "label":
        value: Any = record.label
    elif field_name == "kind":
        value = record.kind
    elif field_name.startswith("meta."):
        value = record.meta.get(field_name[5:])
    else:
        raise InputError(f"quota field must be label, kind or meta.<column>; got {field_name!r}")
    return "(none)" if value is None else str(value)


def candidates(ws: Workspace, *, kind: str | None = None, include_labeled: bool = False) -> list[Record]:
    """Pool records that can still be chosen: active, in the pool split, no task yet, not already labeled.

    With ``include_labeled`` text records labeled at ingest are candidates too (their label is hidden from the
    model, e.g. a gold column an oracle answers from in a simulated loop).
    """
    taken = selected_record_ids(ws.store)
    return [r for r in ws.store.iter_records(kind=kind)
            if r.id not in taken and (include_labeled or not (r.kind == "text" and r.label))]


@dataclass
class SelectionReport:
    """The outcome of :func:`run_round`."""

    round: RoundReport
    scoring: ScoreReport
    candidates: int
    seconds: float
    origins: dict[str, int] = field(default_factory=dict)
    two_stage: dict[str, Any] | None = None  # the two-stage run whose exactly scored records were the candidates
    offered: int = 0  # candidates before that restriction


def run_round(
    ws: Workspace,
    strategy: Strategy,
    k: int,
    *,
    pool: Sequence[Record],
    rng: np.random.Generator,
    embedder: Embedder | None = None,
    task_type: str | None = None,
    model_version: str | None = None,
    actor: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    params: dict[str, Any] | None = None,
    on_embed_progress: Callable[[int, int], None] | None = None,
    score_all: bool = False,
) -> SelectionReport:
    """Score ``pool`` (cached), select ``k`` with the strategy, and create a round of tasks.

    When the strategy's scores come from a two-stage run (``curate score --two-stage``), the candidates are the
    records that run scored exactly (:func:`curate.scorers.two_stage.exactly_scored`), unless ``score_all``.

    Embeddings are computed (and cached) when the selector needs them or the batch is de-duplicated;
    ``on_embed_progress(done, total)`` follows the texts not cached yet.
    ``params`` are extra round parameters stored with the round (e.g. the loop that asked for it).
    """
    started = time.perf_counter()
    if not pool:
        raise InputError("no candidate records: every pool record of this kind already has a task or a label. "
                         "Ingest more records, or choose another --kind.")
    offered, two_stage = len(pool), None
    if not score_all:
        from curate.scorers.two_stage import exactly_scored

        pool, two_stage = exactly_scored(ws.store, strategy.scorer, pool)
        if not pool:
            raise InputError(f"none of the {offered:,} candidates left was scored exactly by the two-stage run of this "
                             "scorer (those it scored all have tasks or labels): run `curate score --two-stage` again "
                             "(another --seed or a wider --shortlist), or select with --score-all to score the rest.")
    scores, score_report = score_records(ws.store, strategy.scorer, pool, actor=actor, on_progress=on_progress)
    if not np.isfinite(scores).any():
        kinds = ", ".join(sorted({r.kind for r in pool}))
        raise InputError(f"the {getattr(strategy.scorer, 'name', 'chosen')} scorer could score none of the "
                         f"{len(pool):,} candidates ({kinds} records): it does not judge that kind. Choose a scorer "
                         "for it (curate select --help lists them) or filter the pool with --kind. No round was made.")
    embeddings = None
    if needs_embeddings(strategy.selector) or strategy.dedup_threshold is not None:
        embeddings = (embedder or Embedder(cache_dir=ws.cache_dir)).embed_records(pool, on_progress=on_embed_progress)
    groups = np.array([group_of(r, strategy.quota_field) for r in pool]) if strategy.quota_field else None
    if groups is not None and (groups == "(none)").all():
        no_group_values(str(strategy.quota_field), pool)
    tagged = select_tagged(strategy.composed_selector(), scores, k, embeddings=embeddings, rng=rng, groups=groups)
    origins = [str(o) for o in tagged.origin]
    round_report = create_round(
        ws.store, pool, tagged.indices, scores=scores, origins=origins, strategy_key=strategy.key(),
        model_version=model_version, task_type=task_type, actor=actor,
        params={"k": k, "random_mix": strategy.random_mix, "quota_field": strategy.quota_field, **(params or {})},
    )
    return SelectionReport(round_report, score_report, len(pool), time.perf_counter() - started,
                           dict(round_report.by_origin), two_stage, offered)


def no_group_values(field_name: str, pool: Sequence[Record]) -> None:
    """Refuse a quota that would do nothing: no candidate has a value for ``field_name``."""
    columns = sorted({k for r in pool[:1000] for k in r.meta})
    why = (" (a text with a label is labelled already, so it is not a candidate)" if field_name == "label" else "")
    raise InputError(f"{field_name!r} (--quota-field, or seed's --by): none of the {len(pool):,} candidates has a "
                     f"value{why}, so the groups would do nothing. Group by kind, or by a column kept with the "
                     "records: "
                     + (", ".join(f"meta.{c}" for c in columns[:12]) or "(the records keep no other column)") + ".")


def open_tasks(ws: Workspace, round_id: int | None = None) -> list[Any]:
    """Open tasks (of one round, or all), oldest first."""
    stmt = select(Task).where(Task.status == "open")
    if round_id is not None:
        stmt = stmt.where(Task.round_id == round_id)
    with ws.store.read() as conn:
        return list(conn.execute(stmt.order_by(Task.id)).all())
