"""A workspace shaped like a real expert's day: long Markdown responses with code, long rewrites, a 12-class schema.

Used by the layout tests (viewport 1366x768) and by ``benchmarks/bench_browser.py``. Responses are about 2,000
characters of Markdown (headings, bold, lists, a table, a fenced code block); one response of the first pair plants
``<img onerror>`` and ``<script>`` markup that must stay inert when rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from curate.ingest.sources import ingest
from curate.rounds.assignment import add_label_schema, assign_round
from curate.rounds.tasks import create_round
from curate.store.accounts import add_user
from curate.store.schema import Task
from curate.store.workspace import Workspace
from tests.annotation_setup import PASSWORD, _write

USERS = {"eve": "annotator", "max": "annotator", "rex": "reviewer"}
CLASSES_12 = ["billing and invoices", "bug report", "praise", "feature request", "account access and login",
              "data export", "privacy question", "performance problem", "integration with third-party tools",
              "pricing and plans", "cancellation", "other"]
PLANTED = ('<img src="x" onerror="window.__curate_xss = 1"> <script>window.__curate_xss = 2</script> '
           '<a href="javascript:window.__curate_xss = 3">click</a>')


def markdown_answer(topic: str, i: int, *, planted: bool = False, chars: int = 2000) -> str:
    """About ``chars`` characters of Markdown about ``topic``: heading, bold, list, table and a Python code block."""
    parts = [f"### How to {topic} (variant {i})\n",
             f"To **{topic}**, follow these steps. Each one matters, and skipping any of them is the most common "
             "reason the result looks wrong later.\n",
             "1. Open the project settings and check the *current* configuration.\n"
             "2. Back up the data you are about to change.\n"
             "3. Apply the change and verify it with the command below.\n",
             "| step | time | risk |\n|---|---|---|\n| backup | 2 min | low |\n| change | 5 min | medium |\n",
             "```python\n"
             "def verify(path: str) -> bool:\n"
             "    \"\"\"True when every line of the file parses.\"\"\"\n"
             "    import json\n"
             "    with open(path) as handle:\n"
             "        return all(json.loads(line) is not None for line in handle)\n"
             "```\n"]
    if planted:
        parts.append(f"Markup in the data must stay text: {PLANTED}\n")
    filler = (f"- Note {{n}}: when you {topic}, record what you did and why, so a colleague can repeat it "
              "without guessing.\n")
    n = 1
    while sum(len(p) for p in parts) < chars:
        parts.append(filler.format(n=n))
        n += 1
    return "\n".join(parts)


def long_completion(i: int, chars: int = 2000) -> str:
    """A plain-prose completion of about ``chars`` characters (a rewrite task's draft)."""
    sentence = (f"The customer (case {i}) reported that the invoice was paid twice and asked for a refund of the "
                "second payment. ")
    return (sentence * (chars // len(sentence) + 1))[:chars].rstrip() + "."


@dataclass
class LongSeeded:
    """Task ids per round, in queue order."""

    rank: list[int] = field(default_factory=list)
    rewrite: list[int] = field(default_factory=list)
    label: list[int] = field(default_factory=list)


def _round(ws: Workspace, records: list, task_type: str, people: list[str], schema: str | None,
           overlap: float = 0.0) -> list[int]:
    report = create_round(ws.store, records, list(range(len(records))), scores=np.linspace(1, 0, len(records)),
                          strategy_key=f"long-{task_type}", model_version="tiny", task_type=task_type)
    assign_round(ws.store, people, round_number=report.number, overlap=overlap, copies=2, schema=schema)
    with ws.store.read() as conn:
        return [int(t) for t in conn.scalars(select(Task.id).where(Task.round_id == report.round_id)
                                             .order_by(Task.id))]


def seed_long(ws: Workspace, tmp_path: Path, *, n_rank: int = 4, n_rewrite: int = 2, n_label: int = 3,
              rank_people: tuple[str, ...] = ("eve",), rewrite_people: tuple[str, ...] = ("eve",)) -> LongSeeded:
    """Ingest and assign rank (pairs of long Markdown responses), rewrite (long completions) and label (12 classes)
    rounds; accounts :data:`USERS` with :data:`PASSWORD`. Queue order for ``eve``: rank, rewrite, label."""
    topics = ["rotate an API key", "restore a backup", "migrate the database", "rename a project",
              "export a report", "invite a colleague", "reset two-factor login", "close an account"]
    prefs = [{"prompt": f"How do I {topics[i % len(topics)]}? Please give code.",
              "chosen": markdown_answer(topics[i % len(topics)], i, planted=i == 0),
              "rejected": markdown_answer(topics[i % len(topics)], i + 100)} for i in range(n_rank)]
    examples = [{"prompt": f"Summarise support case {i} for the billing team.", "completion": long_completion(i)}
                for i in range(n_rewrite)]
    texts = [{"text": f"Message {i}: I was charged twice this month and the export button does nothing."}
             for i in range(n_label)]
    for name, rows in (("long_prefs", prefs), ("long_examples", examples), ("long_texts", texts)):
        ingest(ws, _write(tmp_path / f"{name}.jsonl", rows))
    for name, role in USERS.items():
        add_user(ws.store, name, role, PASSWORD)
    add_label_schema(ws.store, "support-topic", CLASSES_12, "Pick the **main** topic of the message.")
    add_label_schema(ws.store, "pairs", [], "Prefer the response that is *correct* and actionable.")
    by_kind: dict[str, list] = {}
    for rec in ws.store.iter_records():
        by_kind.setdefault(rec.kind, []).append(rec)
    seeded = LongSeeded()
    overlap = 1.0 if len(rank_people) > 1 else 0.0
    seeded.rank = _round(ws, sorted(by_kind["preference"], key=lambda r: r.line), "rank", list(rank_people),
                         "pairs", overlap)
    seeded.rewrite = _round(ws, sorted(by_kind["example"], key=lambda r: r.line), "rewrite", list(rewrite_people),
                            None, 1.0 if len(rewrite_people) > 1 else 0.0)
    seeded.label = _round(ws, sorted(by_kind["text"], key=lambda r: r.line), "label", ["eve"], "support-topic")
    return seeded
