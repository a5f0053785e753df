"""Review: differing rewrites go to the reviewers' queue, the decision is final, and guidelines follow the task type."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from curate.annotate import answers as A
from curate.annotate import values as V
from curate.annotate.agreement import agreement_report
from curate.cli.main import app
from curate.errors import AccessError, InputError
from curate.export.writer import collect
from curate.rounds.assignment import add_label_schema, assign_round
from curate.rounds.tasks import create_round
from curate.store.audit import verify
from curate.store.schema import LabelSchema, Task
from curate.store.workspace import Workspace
from tests.annotation_setup import seed

ORIGINAL = "The invoice got paid 2 times."  # the first example's completion (tests/annotation_setup.py)
PAIRS_GUIDE = "Prefer the response that is correct and actionable."
TOPIC_GUIDE = "Pick the main topic of the message."


@pytest.fixture
def seeded(workspace, tmp_path):
    return workspace, seed(workspace, tmp_path)


def _round_ids(ws: Workspace, number: int) -> dict[str, list[int]]:
    """``{task type: [task ids]}`` of round ``number``."""
    from curate.store.schema import Round

    out: dict[str, list[int]] = {}
    with ws.store.read() as conn:
        rid = conn.scalar(select(Round.id).where(Round.number == number))
        for task_id, task_type in conn.execute(select(Task.id, Task.type).where(Task.round_id == rid)
                                               .order_by(Task.id)):
            out.setdefault(task_type, []).append(int(task_id))
    return out


def _rewrites_for_two(ws: Workspace) -> list[int]:
    """A round rewriting both examples, each task given to ann and bob; the task ids (the first is ORIGINAL's)."""
    records = sorted(ws.store.iter_records(kind="example"), key=lambda r: r.line)
    report = create_round(ws.store, records, list(range(len(records))), scores=np.ones(len(records)),
                          strategy_key="review", task_type="rewrite")
    assign_round(ws.store, ["ann", "bob"], round_number=report.number, overlap=1.0, copies=2)
    return _round_ids(ws, report.number)["rewrite"]


def _status(ws: Workspace, task_id: int) -> str:
    with ws.store.read() as conn:
        return str(conn.scalar(select(Task.status).where(Task.id == task_id)))


def test_differing_rewrites_are_disputed_and_reach_the_reviewer(seeded):
    ws, _ = seeded
    first, _ = _rewrites_for_two(ws)
    assert A.pending_disputes(ws.store, "rita") == 0
    a = A.submit(ws.store, "ann", first, {"completion": "The invoice was paid twice.", "accepted_as_is": False})
    assert a.task_status == "open"  # bob has not answered yet
    b = A.submit(ws.store, "bob", first, {"completion": "The invoice was charged twice."})
    assert b.task_status == "disputed"
    assert A.pending_disputes(ws.store, "rita") == A.pending_disputes(ws.store, "ada") == 1
    assert A.pending_disputes(ws.store, "ann") == 0  # annotators have no adjudication queue
    with pytest.raises(AccessError, match="not logged in"):
        A.pending_disputes(ws.store, None)
    (item,) = A.disputes(ws.store, "rita")
    assert item["task_id"] == first and item["view"].type == "rewrite"
    assert item["view"].completion == ORIGINAL and item["view"].prompt.startswith("Summarise")
    assert [(x["annotator"], x["value"]) for x in item["answers"]] == [
        ("ann", {"completion": "The invoice was paid twice.", "accepted_as_is": False}),
        ("bob", {"completion": "The invoice was charged twice.", "accepted_as_is": False})]
    assert [x["annotation_id"] for x in item["answers"]] == [a.annotation_id, b.annotation_id]


def test_accepting_as_is_and_editing_differ(seeded):
    ws, _ = seeded
    first, _ = _rewrites_for_two(ws)
    A.submit(ws.store, "ann", first, {"accepted_as_is": True})
    assert A.submit(ws.store, "bob", first, {"completion": "The invoice was paid twice."}).task_status == "disputed"
    (item,) = A.disputes(ws.store, "rita")
    assert [x["value"]["accepted_as_is"] for x in item["answers"]] == [True, False]
    # bob takes his answer back: the task leaves the reviewers' queue until he answers again
    assert A.undo_last(ws.store, "bob") == first
    assert _status(ws, first) == "open" and A.disputes(ws.store, "rita") == []
    assert A.pending_disputes(ws.store, "rita") == 0


def test_rewrites_that_differ_only_in_whitespace_agree(seeded):
    ws, _ = seeded
    first, second = _rewrites_for_two(ws)
    A.submit(ws.store, "ann", first, {"completion": "The invoice was paid twice."})
    done = A.submit(ws.store, "bob", first, {"completion": "  The invoice was\n\tpaid   twice. \n"})
    assert done.task_status == "done"
    # "accepted as is" stores the original: an edit of whitespace only agrees with it
    A.submit(ws.store, "ann", second, {"accepted_as_is": True})
    assert A.submit(ws.store, "bob", second, {"completion": " Bonjour\n"}).task_status == "done"
    assert A.disputes(ws.store, "rita") == [] and A.pending_disputes(ws.store, "rita") == 0
    with ws.store.read() as conn:
        finals = A.final_annotations(conn)
    assert orjson.loads(finals[first].value)["completion"].split() == "The invoice was paid twice.".split()


def test_normalise_and_dispute_keys():
    assert V.normalise_rewrite(" a \n b\t\tc ") == "a b c"
    assert V.dispute_key("rewrite", {"completion": "a  b"}) == V.dispute_key("rewrite", {"completion": "a b\n"})
    assert V.dispute_key("rewrite", {"completion": "a b"}) != V.dispute_key("rewrite", {"completion": "ab"})
    assert V.agreement_key("rewrite", {"completion": "a b"}) is None  # never a category for kappa / alpha
    assert V.dispute_key("label", {"label": "bug"}) == V.agreement_key("label", {"label": "bug"}) == "bug"


def test_a_merged_rewrite_decision_is_the_final_answer_and_exported(seeded):
    ws, _ = seeded
    first, _ = _rewrites_for_two(ws)
    a = A.submit(ws.store, "ann", first, {"completion": "The invoice was paid twice."})
    b = A.submit(ws.store, "bob", first, {"accepted_as_is": True})
    merged = "The invoice was paid twice by mistake."
    with pytest.raises(InputError, match="non-empty completion"):
        A.adjudicate(ws.store, "rita", first, {"completion": " "})
    decision = A.adjudicate(ws.store, "rita", first, {"completion": merged, "accepted_as_is": False}, seconds=40)
    assert decision.task_status == "adjudicated" == _status(ws, first)
    assert decision.extra["originals"] == sorted([a.annotation_id, b.annotation_id])
    with ws.store.read() as conn:
        final = A.final_annotations(conn)[first]
    assert (final.id, final.kind, final.annotator) == (decision.annotation_id, "adjudication", "rita")
    assert orjson.loads(final.value) == {"completion": merged, "accepted_as_is": False}
    assert A.disputes(ws.store, "rita") == [] and A.pending_disputes(ws.store, "rita") == 0

    rows, prov, _ = collect(ws, "sft")
    mine = [(r, p) for r, p in zip(rows, prov, strict=True) if p["task_id"] == first]
    assert [(r["completion"], p["kind"]) for r, p in mine] == [(merged, "adjudication")]
    dpo, dpo_prov, _ = collect(ws, "dpo")
    assert [(r["chosen"], r["rejected"]) for r, p in zip(dpo, dpo_prov, strict=True) if p["task_id"] == first] == [
        (merged, ORIGINAL)]
    assert verify(ws.store).ok


def test_agreement_figures_leave_rewrites_out_of_kappa_and_alpha(seeded):
    ws, s = seeded
    first, second = _rewrites_for_two(ws)
    A.submit(ws.store, "ann", first, {"completion": "The invoice was paid twice."})
    A.submit(ws.store, "bob", first, {"completion": "It was paid twice."})
    A.submit(ws.store, "ann", second, {"accepted_as_is": True})
    A.submit(ws.store, "bob", second, {"completion": "Bonjour "})
    for task_id, choice in zip(s.rank[:2], ("A", "B"), strict=True):
        A.submit(ws.store, "ann", task_id, {"choice": choice})
        A.submit(ws.store, "bob", task_id, {"choice": "A"})
    report = agreement_report(ws.store)
    assert set(report["agreement"]) == {"rank"} and set(report["label_distribution"]) == {"rank"}
    assert report["rewrite_agreement"] == {"items": 2, "identical": 1, "share": 0.5}
    assert report["tasks_by_status"]["disputed"] == 2  # one rewrite, one ranking
    assert A.pending_disputes(ws.store, "rita") == 2
    out = CliRunner().invoke(app, ["agreement", "-w", str(ws.root), "--db", ws.db_url], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "rewrites: 1 of 2 task(s) rewritten by several people were rewritten alike (50%" in out.output


def _mixed_round(ws: Workspace) -> tuple[int, dict[str, list[int]]]:
    """A round of one text (label), one pair (rank) and one example (rewrite), not yet assigned."""
    by_kind = {}
    for rec in ws.store.iter_records():
        by_kind.setdefault(rec.kind, rec)
    records = [by_kind["text"], by_kind["preference"], by_kind["example"]]
    report = create_round(ws.store, records, [0, 1, 2], scores=np.ones(3), strategy_key="mixed")
    ids = _round_ids(ws, report.number)
    assert sorted(ids) == ["label", "rank", "rewrite"]
    return report.number, ids


def _shown(ws: Workspace, ids: dict[str, list[int]]) -> dict[str, tuple[str, list[str], str | None]]:
    return {t: (v.guidelines, v.classes, v.schema)
            for t, (task_id,) in ids.items() for v in [A.get_task(ws.store, "ann", task_id)]}


def test_a_label_schema_shows_only_on_label_tasks_of_a_mixed_round(seeded):
    ws, _ = seeded
    number, ids = _mixed_round(ws)
    report = assign_round(ws.store, ["ann"], round_number=number, schema="topic")
    assert report["schemas"] == {"label": "topic"} and report["unused_schemas"] == []
    assert _shown(ws, ids) == {"label": (TOPIC_GUIDE, ["billing", "bug", "praise"], "topic v1"),
                               "rank": ("", [], None), "rewrite": ("", [], None)}
    # a schema without classes holds guidelines for rank and rewrite tasks; the label tasks keep theirs
    report = assign_round(ws.store, ["ann"], round_number=number, schema=["topic", "pairs"])
    assert report["schemas"] == {"label": "topic", "rank": "pairs", "rewrite": "pairs"}
    shown = _shown(ws, ids)
    assert shown["label"][0] == TOPIC_GUIDE and shown["rank"] == shown["rewrite"] == (PAIRS_GUIDE, [], "pairs v1")


def test_each_task_type_can_have_its_own_guidelines(seeded):
    ws, _ = seeded
    add_label_schema(ws.store, "edits", [], "Fix errors; keep the author's voice.")
    number, ids = _mixed_round(ws)
    report = assign_round(ws.store, ["ann"], round_number=number, schema=["topic", "pairs", "rewrite=edits"])
    assert report["schemas"] == {"label": "topic", "rank": "pairs", "rewrite": "edits"}
    shown = _shown(ws, ids)
    assert (shown["label"][0], shown["rank"][0], shown["rewrite"][0]) == (
        TOPIC_GUIDE, PAIRS_GUIDE, "Fix errors; keep the author's voice.")
    A.submit(ws.store, "ann", ids["label"][0], {"label": "bug"})  # the label task is answerable as before


def test_schemas_that_do_not_fit_are_refused_or_reported(seeded):
    ws, s = seeded
    number, _ = _mixed_round(ws)
    for spec, message in (("rank=topic", "topic has classes, so it is a label schema"),
                          ("label=pairs", "pairs has no classes"),
                          ("review=pairs", "TYPE one of rank, rewrite, label"),
                          ("rank=", "expected NAME or TYPE=NAME"),
                          ("nope", "no label schema called 'nope'")):
        with pytest.raises(InputError, match=message):
            assign_round(ws.store, ["ann"], round_number=number, schema=spec)
    add_label_schema(ws.store, "other", [], "Other guidelines.")
    with pytest.raises(InputError, match="two schemas for rank tasks"):
        assign_round(ws.store, ["ann"], round_number=number, schema=["pairs", "other"])
    # TYPE=NAME overrides a plain NAME for that type
    report = assign_round(ws.store, ["ann"], round_number=number, schema=["pairs", "rank=other"])
    assert report["schemas"] == {"rank": "other", "rewrite": "pairs"}
    # a schema that fits no task of the round is reported, not applied
    label_round = A.get_task(ws.store, "ann", s.label[0]).round_number
    report = assign_round(ws.store, ["ann"], round_number=label_round, schema="pairs")
    assert report["schemas"] == {} and report["unused_schemas"] == ["pairs"]
    assert A.get_task(ws.store, "ann", s.label[0]).guidelines == TOPIC_GUIDE


def test_label_guidelines_stored_on_rank_tasks_before_are_not_shown(seeded):
    """A workspace assigned before guidelines followed the task type: its rank tasks carry the label schema."""
    ws, s = seeded
    with ws.store.write() as conn:
        topic = conn.scalar(select(LabelSchema.id).where(LabelSchema.name == "topic"))
        conn.execute(update(Task).where(Task.id.in_([*s.rank, *s.rewrite])).values(label_schema_id=topic))
    for task_id in (s.rank[0], s.rewrite[0]):
        view = A.get_task(ws.store, "ann", task_id)
        assert (view.guidelines, view.classes, view.schema) == ("", [], None)


def test_assign_command_takes_a_schema_per_task_type(seeded, db_url):
    ws, _ = seeded
    number, ids = _mixed_round(ws)
    runner = CliRunner()
    where = ["--workspace", str(ws.root), "--db", db_url]
    out = runner.invoke(app, ["assign", "--annotators", "ann", "--round", str(number), "--schema", "topic",
                              "--schema", "rank=pairs", *where])
    assert out.exit_code == 0, out.output
    assert "schemas: label tasks topic, rank tasks pairs" in " ".join(out.output.split())
    shown = _shown(ws, ids)
    assert (shown["label"][0], shown["rank"][0], shown["rewrite"][0]) == (TOPIC_GUIDE, PAIRS_GUIDE, "")
    out = runner.invoke(app, ["assign", "--annotators", "ann", "--round", str(number), "--schema", "rank=topic",
                              *where])
    assert out.exit_code != 0 and "is a label schema" in str(out.exception)
