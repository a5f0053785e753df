"""Export: final annotations only, TRL columns, held-out splits kept out of train (near-copies too),
byte-identical output, schema versions never mixed, the dataset card."""

from __future__ import annotations

import json

import datasets
import numpy as np
import orjson
import pytest
from sqlalchemy import select

from curate.annotate import answers as A
from curate.annotate.relabel import migrate_schema
from curate.errors import InputError
from curate.export.rows import RowOptions, training_rows
from curate.export.writer import export
from curate.ingest.sources import ingest
from curate.rounds.assignment import add_label_schema, assign_round, ensure_label_schema
from curate.rounds.tasks import create_round
from curate.store.audit import verify
from curate.store.schema import Annotation, AuditEvent
from tests.annotation_setup import seed

TEST_PAIR = {"prompt": "Where is the invoice archive kept for the finance team this year?",
             "chosen": "In the shared finance drive under Archive 2024.", "rejected": "Somewhere."}


def _answered(ws, tmp_path):
    """The seeded workspace with every task answered: one rank dispute adjudicated, one undone and redone."""
    s = seed(ws, tmp_path)
    # held-out records: a test pair, a labelled calibration text; and a pool pair that near-copies the test pair
    (tmp_path / "test.jsonl").write_text(json.dumps(TEST_PAIR) + "\n")
    ingest(ws, tmp_path / "test.jsonl", split="test")
    (tmp_path / "calib.jsonl").write_text(json.dumps({"text": "Refund please, charged twice", "label": "billing"})
                                          + "\n")
    ingest(ws, tmp_path / "calib.jsonl", split="calibration")
    leak = dict(TEST_PAIR, prompt=TEST_PAIR["prompt"].replace("this year", "this year!"))
    (tmp_path / "leak.jsonl").write_text(json.dumps(leak) + "\n")
    ingest(ws, tmp_path / "leak.jsonl")
    (leak_rec,) = [r for r in ws.store.iter_records(kind="preference") if "invoice archive" in r.fields["prompt"]]
    report = create_round(ws.store, [leak_rec], [0], scores=np.ones(1), strategy_key="leaky")
    assign_round(ws.store, ["ann"], round_number=report.number)
    for who in ("ann", "bob"):
        for i, task_id in enumerate(s.rank):
            choice = "B" if (who == "bob" and i == 0) else ("tie" if i == 3 else "A")
            A.submit(ws.store, who, task_id, {"choice": choice})
    A.adjudicate(ws.store, "rita", s.rank[0], {"choice": "B"})
    A.submit(ws.store, "ann", s.rewrite[0], {"completion": "The invoice was paid twice."})
    A.submit(ws.store, "ann", s.rewrite[1], {"accepted_as_is": True})
    for task_id, label in zip(s.label, ["praise", "bug", "praise"], strict=True):
        A.submit(ws.store, "ann", task_id, {"label": label})
    A.undo_last(ws.store, "ann")  # the last label becomes "praise" -> undone -> answered again
    A.submit(ws.store, "ann", s.label[2], {"label": "praise"})
    view = A.get_task(ws.store, "bob", s.candidates[0])
    A.submit(ws.store, "bob", s.candidates[0], {"order": sorted(range(3), key=lambda p: view.responses[p])})
    (leak_task,) = [t for t in [A.get_task(ws.store, "ann")] if t is not None]
    A.submit(ws.store, "ann", leak_task.task_id, {"choice": "A"})
    return s


def _load(out):
    return datasets.load_from_disk(str(out))


def test_every_format_loads_with_trl_columns(workspace, tmp_path):
    s = _answered(workspace, tmp_path)
    expected = {"sft": ["prompt", "completion"], "dpo": ["prompt", "chosen", "rejected"],
                "reward": ["prompt", "chosen", "rejected"], "kto": ["prompt", "completion", "label"],
                "classification": ["text", "label"]}
    for fmt, columns in expected.items():
        out = tmp_path / f"out-{fmt}"
        report = export(workspace, fmt, out)
        data = _load(out)
        assert data["train"].column_names == columns and len(data["train"]) == report.counts["train"] > 0
        manifest = json.loads((out / "export.json").read_text())
        assert manifest["content_hash"] == report.content_hash and manifest["format"] == fmt
        prov = [json.loads(line) for line in (out / "provenance.jsonl").read_text().splitlines()]
        assert len(prov) == len(data["train"]) and all(p["annotator"].startswith("annotator-") for p in prov)
    sft = _load(tmp_path / "out-sft")["train"]
    assert sorted(sft["completion"]) == ["Bonjour", "The invoice was paid twice."]
    classification = _load(tmp_path / "out-classification")
    assert sorted(classification["train"]["label"]) == ["bug", "praise", "praise"]
    assert classification["calibration"]["label"] == ["billing"]
    assert verify(workspace.store).ok
    with workspace.store.read() as conn:
        assert conn.scalar(select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(1)) == "export"
    del s


def test_preference_rows_follow_the_final_decisions(workspace, tmp_path):
    s = _answered(workspace, tmp_path)
    out = tmp_path / "dpo"
    export(workspace, "dpo", out, to="jsonl")
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    prov = [json.loads(line) for line in (out / "provenance.jsonl").read_text().splitlines()]
    by_task: dict[int, list] = {}
    for row, p in zip(rows, prov, strict=True):
        by_task.setdefault(p["task_id"], []).append((row, p))
    with workspace.store.read() as conn:
        value = orjson.loads(conn.scalar(select(Annotation.value).where(Annotation.kind == "adjudication")))
        final = A.final_annotations(conn)
    # the adjudicated pair follows the reviewer, with the adjudication as its provenance
    ((row, p),) = by_task[s.rank[0]]
    assert p["kind"] == "adjudication" and p["annotation_id"] == final[s.rank[0]].id
    assert (row["chosen"].startswith("Open Settings")) == (value["preferred"] == "chosen")
    assert s.rank[3] not in by_task  # a tie is dropped by default
    assert len(by_task[s.candidates[0]]) == 3  # all pairs of an ordering of 3
    ((row, _),) = by_task[s.rewrite[0]]  # the rewrite is preferred over the original; "accept as is" gives none
    assert (row["chosen"], row["rejected"]) == ("The invoice was paid twice.", "The invoice got paid 2 times.")
    assert s.rewrite[1] not in by_task
    # the test pair is a split of its own and its near-copy in the pool never reaches train
    assert [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()] == [TEST_PAIR]
    assert not any("invoice archive" in r["prompt"] for r in rows)
    assert json.loads((out / "export.json").read_text())["dropped"]["near_copies_of_heldout"] == 1
    keep = tmp_path / "dpo-keep"
    export(workspace, "dpo", keep, to="jsonl", options=RowOptions(ties="keep", pairs="best-worst"))
    prov_keep = [json.loads(line) for line in (keep / "provenance.jsonl").read_text().splitlines()]
    tasks = [p["task_id"] for p in prov_keep]
    assert s.rank[3] in tasks and tasks.count(s.candidates[0]) == 1


def test_exports_are_byte_identical_and_atomic(workspace, tmp_path):
    _answered(workspace, tmp_path)
    for to in ("hf", "jsonl", "parquet"):
        a, b = tmp_path / f"a-{to}", tmp_path / f"b-{to}"
        ra, rb = export(workspace, "dpo", a, to=to), export(workspace, "dpo", b, to=to)
        assert ra.content_hash == rb.content_hash
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    with pytest.raises(InputError, match="already exists"):
        export(workspace, "dpo", tmp_path / "a-hf")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".a-hf")]  # no half-written folder left


def test_dataset_card_states_provenance(workspace, tmp_path):
    _answered(workspace, tmp_path)
    out = tmp_path / "card"
    report = export(workspace, "dpo", out, license="cc-by-4.0")
    card = (out / "README.md").read_text()
    assert "license: cc-by-4.0" in card and report.content_hash in card
    assert "Annotators: 3" in card  # ann, bob and the reviewer rita
    assert "| rank |" in card and "Krippendorff" in card and "PII policy" in card
    assert "ann" not in card.replace("annotator-", "").replace("annotat", "")


def test_schema_versions_never_mix_and_migration_relabels(workspace, tmp_path):
    s = _answered(workspace, tmp_path)
    add_label_schema(workspace.store, "topic", ["billing", "technical", "feedback"], "v2 guidelines")
    # new tasks on v2 next to the v1 answers: the export refuses the mix
    texts = sorted(workspace.store.iter_records(kind="text"), key=lambda r: r.line)
    report = create_round(workspace.store, texts[:1], [0], scores=np.ones(1), strategy_key="v2")
    assign_round(workspace.store, ["ann"], round_number=report.number, schema="topic")
    task = A.get_task(workspace.store, "ann")
    A.submit(workspace.store, "ann", task.task_id, {"label": "technical"})
    with pytest.raises(InputError, match="topic@1, topic@2.*curate schema migrate"):
        export(workspace, "classification", tmp_path / "mixed")
    one = export(workspace, "classification", tmp_path / "v2-only", schema="topic@2")
    assert one.counts["train"] == 1 and one.label_schema == "topic@2"
    with pytest.raises(InputError, match="must be classes of topic v2"):
        migrate_schema(workspace.store, "topic", {"bug": "bugs"})
    moved = migrate_schema(workspace.store, "topic", {"bug": "technical"})  # "praise" does not map
    assert (moved["migrated"], moved["relabel"]) == (1, 2) and moved["by_mapping"] == {"bug -> technical": 1}
    merged = export(workspace, "classification", tmp_path / "migrated")
    assert merged.label_schema == "topic@2" and merged.counts["train"] == 2
    assert sorted(_load(tmp_path / "migrated")["train"]["label"]) == ["technical", "technical"]
    relabel = A.get_task(workspace.store, "ann")  # the unmapped ones are back in ann's queue, under v2
    assert relabel is not None and relabel.task_id in (s.label[0], s.label[2])
    assert relabel.classes == ["billing", "technical", "feedback"]
    assert verify(workspace.store).ok


def test_rows_from_conversational_records_stay_conversational():
    fields = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    (sft,) = training_rows("sft", "rewrite", fields, {"completion": "Hello there", "accepted_as_is": False})
    assert sft == {"prompt": [{"role": "user", "content": "Hi"}],
                   "completion": [{"role": "assistant", "content": "Hello there"}]}
    (dpo,) = training_rows("dpo", "rewrite", fields, {"completion": "Hello there", "accepted_as_is": False})
    assert dpo["rejected"] == [{"role": "assistant", "content": "Hello"}]
    both_bad = training_rows("kto", "rank", {"prompt": "p", "chosen": "a", "rejected": "b"},
                             {"choice": "both_bad", "preferred": "both_bad"})
    assert [r["label"] for r in both_bad] == [False, False]
    assert training_rows("classification", "rewrite", fields, {"completion": "x"}) == []


def test_a_pair_of_generated_candidates_exports_like_a_preference_pair():
    fields = {"prompt": "p", "completions": ["first", "second"]}
    (row,) = training_rows("dpo", "rank", fields, {"choice": "A", "preferred": "completion 1"})
    assert (row["chosen"], row["rejected"]) == ("second", "first")
    assert training_rows("dpo", "rank", fields, {"choice": "tie", "preferred": "tie"}) == []
    kto = training_rows("kto", "rank", fields, {"choice": "both_bad", "preferred": "both_bad"})
    assert [(r["completion"], r["label"]) for r in kto] == [("first", False), ("second", False)]


def test_a_training_pair_leaks_only_when_it_makes_a_held_out_comparison():
    from curate.export.writer import drop_leaks
    from curate.ingest.records import Record

    test_pair = Record("t" * 32, "preference", dict(TEST_PAIR))
    test_text = Record("c" * 32, "text", {"text": "Refund please, charged twice"})
    other_model = dict(TEST_PAIR, rejected="The finance team keeps it on the intranet, under Invoices.")
    swapped = dict(TEST_PAIR, chosen=TEST_PAIR["rejected"], rejected=TEST_PAIR["chosen"])
    near = dict(TEST_PAIR, prompt=TEST_PAIR["prompt"].replace("this year", "this year!"))
    copies_text = {"prompt": "Refund please, charged twice", "completion": "On it."}
    unrelated = {"prompt": "How do I reset my password?", "completion": "Open Settings, then Security."}
    rows = [other_model, swapped, near, copies_text, unrelated]
    prov = [{"n": i} for i in range(len(rows))]
    kept, kept_prov, dropped = drop_leaks(rows, prov, [test_pair, test_text])
    assert dropped == 3 and kept == [other_model, unrelated] and kept_prov == [{"n": 0}, {"n": 4}]
    # the old whole-text rule would have dropped the pair that shares the prompt and one response
    assert drop_leaks([other_model], [{}], [test_pair])[2] == 0


def test_ensure_label_schema_keeps_the_version_while_nothing_changed(workspace):
    first = ensure_label_schema(workspace.store, "topic", ["billing", " bug"], "Pick one.")
    assert first[1:] == (1, True)
    assert ensure_label_schema(workspace.store, "topic", ["billing", "bug"], "Pick one.") == (first[0], 1, False)
    assert ensure_label_schema(workspace.store, "topic", ["billing", "bug"], "Pick the main one.")[1:] == (2, True)
    assert ensure_label_schema(workspace.store, "topic", ["bug", "billing"], "Pick the main one.")[1:] == (3, True)
    with pytest.raises(InputError, match="distinct"):
        ensure_label_schema(workspace.store, "topic", ["a", "a"])


def test_a_mix_of_chats_and_plain_rows_is_written_as_chats_in_every_split():
    """A chat pool with plain-text test records: train and test get one format (Arrow and TRL need it), the chats
    keep their system prompt instead of being flattened into one string."""
    from curate.export.writer import uniform_splits

    system = {"role": "system", "content": "You are a support agent."}
    chat = {"prompt": [system, {"role": "user", "content": "Reset my password?"}],
            "completion": [{"role": "assistant", "content": "Use the link."}]}
    plain = {"prompt": "Where is my invoice?", "completion": "In Billing."}
    splits, converted = uniform_splits({"train": [chat, dict(plain)], "test": [dict(plain)]})
    assert converted == 2
    assert splits["train"][0] == chat  # the chat as it was
    assert splits["test"][0] == {"prompt": [{"role": "user", "content": "Where is my invoice?"}],
                                 "completion": [{"role": "assistant", "content": "In Billing."}]}
    for rows in splits.values():
        datasets.Dataset.from_list(rows)  # one Arrow type per column
    same, none = uniform_splits({"train": [dict(plain)], "test": [dict(plain)]})
    assert none == 0 and same["test"][0] == plain


def test_disputed_tasks_are_counted_as_awaiting_review(workspace, tmp_path):
    s = seed(workspace, tmp_path)
    for who in ("ann", "bob"):
        for i, task_id in enumerate(s.rank):
            A.submit(workspace.store, who, task_id, {"choice": "B" if (who == "bob" and i == 0) else "A"})
    out = tmp_path / "dpo"
    report = export(workspace, "dpo", out, to="jsonl")
    assert report.dropped["disputed_awaiting_review"] == 1  # the first pair, until a reviewer decides
    assert "disputed_awaiting_review: 1" in (out / "README.md").read_text()


def test_loops_with_the_same_classes_under_other_schema_names_export_together(workspace, tmp_path):
    """Two loops (each makes its schema loop-NAME) labelling the same classes: one classification export; a schema
    with other classes still needs --schema."""
    from curate.store.accounts import add_user

    add_user(workspace.store, "ann", "annotator", "correct-horse-42")
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps({"text": f"ticket {i}"}) + "\n" for i in range(3)))
    ingest(workspace, tmp_path / "texts.jsonl")
    texts = sorted(workspace.store.iter_records(kind="text"), key=lambda r: r.line)

    def label(i: int, name: str, classes: list[str]) -> None:
        add_label_schema(workspace.store, name, classes)
        report = create_round(workspace.store, texts[i:i + 1], [0], scores=np.ones(1), strategy_key=name)
        assign_round(workspace.store, ["ann"], round_number=report.number, schema=name)
        A.submit(workspace.store, "ann", A.get_task(workspace.store, "ann").task_id, {"label": "bug"})

    label(0, "loop-a", ["bug", "billing"])
    label(1, "loop-b", ["bug", "billing"])
    both = export(workspace, "classification", tmp_path / "loops")
    assert both.counts["train"] == 2 and both.label_schema == "loop-a@1+loop-b@1"
    assert json.loads((tmp_path / "loops" / "export.json").read_text())["label_names"] == ["bug", "billing"]
    label(2, "other", ["bug", "praise"])
    with pytest.raises(InputError, match="different classes .* loops that label the same classes can share"):
        export(workspace, "classification", tmp_path / "all")
    assert export(workspace, "classification", tmp_path / "other", schema="other").counts["train"] == 1


def test_assigning_a_new_schema_version_leaves_answered_tasks_on_theirs(workspace, tmp_path):
    """assign --schema after a new version: unanswered tasks move to it; answered ones keep the version they were
    answered under (their answers, disputes and reviews stay valid; schema migrate moves answers)."""
    from curate.store.accounts import add_user
    from curate.store.schema import Task

    add_user(workspace.store, "ann", "annotator", "correct-horse-42")
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps({"text": f"ticket {i}"}) + "\n" for i in range(2)))
    ingest(workspace, tmp_path / "texts.jsonl")
    texts = sorted(workspace.store.iter_records(kind="text"), key=lambda r: r.line)
    add_label_schema(workspace.store, "topic", ["bug", "praise"])
    report = create_round(workspace.store, texts, [0, 1], scores=np.ones(2), strategy_key="r")
    assign_round(workspace.store, ["ann"], round_number=report.number, schema="topic")
    answered = A.get_task(workspace.store, "ann").task_id
    A.submit(workspace.store, "ann", answered, {"label": "praise"})
    add_label_schema(workspace.store, "topic", ["bug", "billing"])
    again = assign_round(workspace.store, ["ann"], round_number=report.number, schema="topic")
    assert (again["schema_changed"], again["schema_kept_answered"]) == (1, 1)
    with workspace.store.read() as conn:
        versions = {int(t.id): int(t.label_schema_id) for t in conn.execute(select(Task.id, Task.label_schema_id))}
    assert versions[answered] != max(versions.values())  # still v1: 'praise' stays a valid answer there
    other = next(t for t in versions if t != answered)
    assert A.get_task(workspace.store, "ann", other).classes == ["bug", "billing"]
