"""The labelled set the learning scorers train on: source labels, final label answers, and preference pairs from
final rank answers (oriented to the expert's choice; candidates give best over worst)."""

from __future__ import annotations

import pytest

from curate.annotate import answers as A
from curate.annotate.task_views import display_order
from curate.errors import AccessError
from curate.rounds.selection import labeled_records
from tests.annotation_setup import seed


def _answer(ws, task_id: int, value: dict) -> None:
    for user in ("ann", "bob"):
        try:
            A.submit(ws.store, user, task_id, value)
        except AccessError:
            continue


@pytest.fixture
def seeded(workspace, tmp_path):
    return workspace, seed(workspace, tmp_path, overlap_rank=False)


def test_final_answers_become_labels_and_oriented_pairs(seeded):
    ws, s = seeded
    assert labeled_records(ws) == []  # nothing answered, no source labels
    A.submit(ws.store, "ann", s.label[0], {"label": "bug"})
    # the pair's display order is shuffled per task: pick the data's "rejected" response on the first task,
    # "chosen" on the second, a tie on the third
    first, second, third = s.rank[:3]
    _answer(ws, first, {"choice": "AB"[display_order(first, 2).index(1)]})
    _answer(ws, second, {"choice": "AB"[display_order(second, 2).index(0)]})
    _answer(ws, third, {"choice": "tie"})
    view = A.get_task(ws.store, "bob", s.candidates[0])
    _answer(ws, s.candidates[0], {"order": sorted(range(3), key=lambda p: ["7", "9 is prime", "4"]
                                                  .index(view.responses[p]))})
    found = {r.id: r for r in labeled_records(ws)}
    texts = [r for r in found.values() if r.kind == "text"]
    assert [t.label for t in texts] == ["bug"]
    pairs = [r for r in found.values() if r.kind == "preference"]
    assert len(pairs) == 3  # the tie teaches nothing
    by_prompt = {r.fields["prompt"]: r for r in pairs}
    swapped = next(r for r in pairs if r.fields["chosen"].startswith("No idea"))  # the expert preferred "rejected"
    assert swapped.fields["rejected"].startswith("Open Settings")
    kept = [r for r in pairs if r.fields["chosen"].startswith("Open Settings")]
    assert len(kept) == 1
    best = by_prompt["Name a prime number."]
    assert (best.fields["chosen"], best.fields["rejected"]) == ("7", "4") and "completions" not in best.fields
    assert labeled_records(ws, kind="text") == texts  # a kind keeps its own records only
