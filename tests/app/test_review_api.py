"""Review through the app's API: differing rewrites reach the reviewer, the decision is final, guidelines by type."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
from gradio_client import Client
from sqlalchemy import select

from curate.annotate.answers import final_annotations, pending_disputes
from curate.rounds.assignment import assign_round
from curate.rounds.tasks import create_round
from curate.store import audit
from curate.store.schema import Task
from curate.store.workspace import Workspace
from tests.app.conftest import RunningApp


def call(client: Client, endpoint: str, *args: Any) -> Any:
    return client.predict(*args, api_name=f"/{endpoint}")


def _new_round(ws: Workspace, kinds: tuple[str, ...], people: list[str], *, schema: list[str] | None = None,
               task_type: str | None = None) -> dict[str, list[int]]:
    """A round of the first record of each kind (all of them for a single kind), given to ``people`` (each
    task to all of them); ``{task type: [task ids]}``."""
    records = [r for r in sorted(ws.store.iter_records(), key=lambda r: (r.kind, r.line)) if r.kind in kinds]
    if len(kinds) > 1:
        records = [next(r for r in records if r.kind == k) for k in kinds]
    report = create_round(ws.store, records, list(range(len(records))), scores=np.ones(len(records)),
                          strategy_key="review-api", task_type=task_type)
    assign_round(ws.store, people, round_number=report.number, overlap=1.0 if len(people) > 1 else 0.0,
                 copies=len(people) if len(people) > 1 else 2, schema=schema)
    out: dict[str, list[int]] = {}
    with ws.store.read() as conn:
        for task_id, kind in conn.execute(select(Task.id, Task.type).where(Task.round_id == report.round_id)
                                          .order_by(Task.id)):
            out.setdefault(kind, []).append(int(task_id))
    return out


def test_differing_rewrites_reach_the_reviewer_and_the_merged_decision_is_final(running_app: RunningApp) -> None:
    ws = running_app.ws
    ann, bob, rita = (running_app.login(n) for n in ("ann", "bob", "rita"))
    first, second = _new_round(ws, ("example",), ["ann", "bob"], task_type="rewrite")["rewrite"]
    assert call(rita, "disputes") == []
    ann_text, bob_text = "The invoice was paid twice.", "The invoice was charged twice."
    call(ann, "submit", first, json.dumps({"completion": ann_text, "accepted_as_is": False}), None)
    done = call(bob, "submit", first, json.dumps({"completion": bob_text, "accepted_as_is": False}), None)
    assert done["task_status"] == "disputed"
    # whitespace-only differences agree
    call(ann, "submit", second, json.dumps({"accepted_as_is": True}), None)
    agreed = call(bob, "submit", second, json.dumps({"completion": "  Bonjour\n", "accepted_as_is": False}), None)
    assert agreed["task_status"] == "done"

    (item,) = call(rita, "disputes")
    assert item["task_id"] == first and item["view"]["type"] == "rewrite"
    assert item["view"]["completion"] == "The invoice got paid 2 times."  # the original, for the diff
    assert [(a["annotator"], a["value"]["completion"]) for a in item["answers"]] == [("ann", ann_text),
                                                                                   ("bob", bob_text)]
    assert pending_disputes(ws.store, "rita") == 1

    merged = "The invoice was charged and paid twice."
    decided = call(rita, "adjudicate", first, json.dumps({"completion": merged, "accepted_as_is": False}), 25.0)
    assert decided["task_status"] == "adjudicated" and len(decided["originals"]) == 2
    assert call(rita, "disputes") == [] and pending_disputes(ws.store, "rita") == 0
    with ws.store.read() as conn:
        final = final_annotations(conn)[first]
    assert (final.kind, final.annotator) == ("adjudication", "rita")
    assert orjson.loads(final.value) == {"completion": merged, "accepted_as_is": False}
    report = call(rita, "dashboard")
    assert "rewrite" not in report["agreement"]
    assert report["rewrite_agreement"] == {"items": 2, "identical": 1, "share": 0.5}
    assert audit.verify(ws.store).ok


def test_guidelines_follow_the_task_type_on_a_mixed_round(running_app: RunningApp) -> None:
    ws, ann = running_app.ws, running_app.login("ann")
    ids = _new_round(ws, ("text", "preference", "example"), ["ann"], schema=["topic"])
    shown = {t: call(ann, "get_task", task_id) for t, (task_id,) in ids.items()}
    assert shown["label"]["guidelines"] == "Pick the main topic of the message."
    assert shown["label"]["classes"] == ["billing", "bug", "praise"]
    for task_type in ("rank", "rewrite"):
        assert (shown[task_type]["guidelines"], shown[task_type]["classes"], shown[task_type]["schema"]) == (
            "", [], None)
