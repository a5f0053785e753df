"""Agreement and progress figures: Cohen's kappa per annotator pair, Krippendorff's alpha, throughput.

Agreement is measured on each person's *current* answer (undone answers left out) to tasks answered by two or
more people, on the value two answers must share to agree (the class of a label task, the preferred response of
a rank task). Kappa comes from scikit-learn, alpha from the ``krippendorff`` package (nominal level). Both are in
[-1, 1]; 1 is perfect agreement, 0 is chance. Rewrites are free text, not categories: they get no kappa or alpha
but the share of tasks whose rewrites are the same up to whitespace (:func:`rewrite_agreement`), the rule that
sends differing rewrites to review.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

import orjson
from sqlalchemy import Connection, case, func, select

from curate.annotate.values import agreement_key, dispute_key
from curate.store.database import Store
from curate.store.schema import Annotation, Assignment, Round, Task


def kappa_and_alpha(items: dict[Any, dict[str, str]]) -> dict[str, Any]:
    """Agreement of ``{item: {annotator: category}}``.

    Returns:
        ``{"pairs": [{"a", "b", "items", "kappa"}], "alpha": float | None, "items": n, "annotators": [...]}``;
        kappa is None for a pair with fewer than 2 shared items or one constant category on both sides
        (undefined), alpha None when fewer than 2 items have 2+ answers.
    """
    from sklearn.metrics import cohen_kappa_score

    annotators = sorted({a for answers in items.values() for a in answers})
    pairs = []
    for a, b in combinations(annotators, 2):
        shared = [(v[a], v[b]) for v in items.values() if a in v and b in v]
        kappa: float | None = None
        if len(shared) >= 2 and len({x for pair in shared for x in pair}) > 1:
            value = float(cohen_kappa_score([x for x, _ in shared], [y for _, y in shared]))
            kappa = None if math.isnan(value) else round(value, 6)
        if shared:
            pairs.append({"a": a, "b": b, "items": len(shared), "kappa": kappa})
    multi = [v for v in items.values() if len(v) >= 2]
    alpha: float | None = None
    if len(multi) >= 2:
        import krippendorff
        import numpy as np

        categories = sorted({c for v in multi for c in v.values()})
        code = {c: float(i) for i, c in enumerate(categories)}
        matrix = np.full((len(annotators), len(multi)), np.nan)
        for j, answers in enumerate(multi):
            for name, category in answers.items():
                matrix[annotators.index(name), j] = code[category]
        if len(categories) > 1:
            alpha = round(float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")), 6)
        else:
            alpha = 1.0
    return {"pairs": pairs, "alpha": alpha, "items": len(multi), "annotators": annotators}


def rewrite_agreement(items: dict[Any, list[str]]) -> dict[str, Any]:
    """How often people rewrote a task alike, from ``{item: [each person's rewrite, whitespace-normalised]}``.

    Returns:
        ``{"items": n, "identical": k, "share": k / n}``: of the n items with 2+ rewrites, k whose rewrites are all
        the same (the others go to review); share is None when n is 0.

    >>> rewrite_agreement({1: ["a b", "a b"], 2: ["a", "b"], 3: ["only one"]})
    {'items': 2, 'identical': 1, 'share': 0.5}
    """
    multi = [v for v in items.values() if len(v) >= 2]
    same = sum(1 for v in multi if len(set(v)) == 1)
    return {"items": len(multi), "identical": same, "share": round(same / len(multi), 6) if multi else None}


def _current(conn: Connection) -> list[Any]:
    """Each person's current answer per task: their latest answer/retract row, retracts dropped."""
    latest: dict[tuple[int, str], Any] = {}
    for row in conn.execute(select(Annotation.id, Annotation.task_id, Annotation.annotator, Annotation.kind,
                                   Annotation.value, Annotation.seconds_spent, Annotation.created_at,
                                   Annotation.round_id, Task.type)
                            .join(Task, Task.id == Annotation.task_id)
                            .where(Annotation.kind.in_(("answer", "retract"))).order_by(Annotation.id)):
        latest[(int(row.task_id), row.annotator)] = row
    return [r for r in latest.values() if r.kind == "answer"]


def agreement_report(store: Store) -> dict[str, Any]:
    """Agreement per task type, progress per round and annotator, throughput and label distribution.

    Returns a JSON-ready dict (what ``curate agreement --json`` prints and the dashboard shows): ``agreement``
    (kappa and alpha per categorical task type: rank, label), ``rewrite_agreement`` (:func:`rewrite_agreement`),
    ``progress``, ``tasks_by_status``, ``throughput`` and ``label_distribution``.
    """
    with store.read() as conn:
        answers = _current(conn)
        by_type: dict[str, dict[Any, dict[str, str]]] = defaultdict(dict)
        distribution: dict[str, Counter[str]] = defaultdict(Counter)
        rewrites: dict[int, list[str]] = defaultdict(list)
        for r in answers:
            value = orjson.loads(r.value)
            key = agreement_key(r.type, value)
            if key is not None:
                by_type[r.type].setdefault(int(r.task_id), {})[r.annotator] = key
                distribution[r.type][key] += 1
            elif r.type == "rewrite":
                rewrites[int(r.task_id)].append(dispute_key(r.type, value) or "")
        progress = [{"round": int(row.number), "annotator": row.annotator, "assigned": int(row.assigned),
                     "done": int(row.done or 0)}
                    for row in conn.execute(
                        select(Round.number, Assignment.annotator, func.count().label("assigned"),
                               func.sum(case((Assignment.status == "done", 1), else_=0)).label("done"))
                        .join(Task, Task.id == Assignment.task_id).join(Round, Round.id == Task.round_id)
                        .group_by(Round.number, Assignment.annotator).order_by(Round.number, Assignment.annotator))]
        status_counts = dict(conn.execute(select(Task.status, func.count()).group_by(Task.status)).all())
    throughput = []
    per_person: dict[str, list[Any]] = defaultdict(list)
    for r in answers:
        per_person[r.annotator].append(r)
    for name, rows in sorted(per_person.items()):
        secs = sorted(float(r.seconds_spent) for r in rows if r.seconds_spent is not None)
        total = sum(secs)
        throughput.append({"annotator": name, "answers": len(rows),
                           "median_seconds": round(secs[len(secs) // 2], 2) if secs else None,
                           "per_hour": round(3600 * len(secs) / total, 1) if total > 0 else None})
    return {"agreement": {t: kappa_and_alpha(items) for t, items in sorted(by_type.items())},
            "rewrite_agreement": rewrite_agreement(rewrites), "progress": progress,
            "tasks_by_status": {str(k): int(v) for k, v in status_counts.items()}, "throughput": throughput,
            "label_distribution": {t: dict(sorted(c.items())) for t, c in sorted(distribution.items())}}

