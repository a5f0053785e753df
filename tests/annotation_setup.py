"""A workspace ready for annotation: records of every task type, a round per type, accounts and queues.

Used by the service tests, the in-process app tests and the browser tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curate.ingest.sources import ingest
from curate.rounds.assignment import add_label_schema, assign_round, set_suggestions
from curate.rounds.tasks import create_round
from curate.store.accounts import add_user
from curate.store.workspace import Workspace

PASSWORD = "correct-horse-42"
USERS = {"ann": "annotator", "bob": "annotator", "rita": "reviewer", "ada": "admin"}
CLASSES = ["billing", "bug", "praise"]


@dataclass
class Seeded:
    """Ids of what :func:`seed` created: task ids per round type, in queue order."""

    rank: list[int] = field(default_factory=list)
    rewrite: list[int] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def seed(ws: Workspace, tmp_path: Path, *, overlap_rank: bool = True) -> Seeded:
    """Ingest 4 preference pairs, 1 candidate set, 2 examples, 3 texts; one round per type; users and queues.

    Rank round: 4 pairs assigned to ann and bob, all overlapping when ``overlap_rank`` (so disagreements can
    happen). Rewrite round: 2 tasks, ann only. Label round: 3 texts with schema ``topic``, ann only (with a
    model suggestion on the first). Candidates round: 1 task (3 responses), bob only.
    """
    prefs = [{"prompt": f"Question {i}: how do I reset my password on device {i}?",
              "chosen": f"Open Settings > Account > Reset on device {i}.", "rejected": f"No idea about device {i}."}
             for i in range(4)]
    examples = [{"prompt": "Summarise: the invoice was paid twice.", "completion": "The invoice got paid 2 times."},
                {"prompt": "Translate to French: good morning", "completion": "Bonjour"}]
    texts = [{"text": "I was charged twice this month"}, {"text": "The app crashes on start"},
             {"text": "Love the new dashboard!"}]
    cands = [{"prompt": "Name a prime number.", "completions": ["4", "7", "9 is prime"]}]
    for name, rows in (("prefs", prefs), ("examples", examples), ("texts", texts), ("cands", cands)):
        ingest(ws, _write(tmp_path / f"{name}.jsonl", rows))
    for name, role in USERS.items():
        add_user(ws.store, name, role, PASSWORD)
    add_label_schema(ws.store, "topic", CLASSES, "Pick the main topic of the message.")
    add_label_schema(ws.store, "pairs", [], "Prefer the response that is correct and actionable.")
    seeded = Seeded()
    by_kind: dict[str, list] = {}
    for rec in ws.store.iter_records():
        by_kind.setdefault(rec.kind, []).append(rec)
    plan = (("preference", "rank", ["ann", "bob"], 1.0 if overlap_rank else 0.0, "pairs", "rank"),
            ("example", "rewrite", ["ann"], 0.0, None, "rewrite"),
            ("text", "label", ["ann"], 0.0, "topic", "label"),
            ("candidates", "rank", ["bob"], 0.0, None, "candidates"))
    for kind, task_type, people, overlap, schema, slot in plan:
        records = sorted(by_kind[kind], key=lambda r: r.line)
        report = create_round(ws.store, records, list(range(len(records))), scores=np.linspace(1, 0, len(records)),
                              strategy_key=f"demo-{slot}", model_version="tiny", task_type=task_type)
        assign_round(ws.store, people, round_number=report.number, overlap=overlap,
                     copies=2 if overlap else 2, schema=schema)
        from sqlalchemy import select

        from curate.store.schema import Task

        with ws.store.read() as conn:
            ids = [int(t) for t in conn.scalars(select(Task.id).where(Task.round_id == report.round_id)
                                                .order_by(Task.id))]
        setattr(seeded, slot, ids)
    set_suggestions(ws.store, [(seeded.label[0], "billing", 0.83), (seeded.rank[0], "chosen", 0.7)])
    return seeded
