"""PII in what annotators wrote: under a workspace PII policy an export redacts (or, asked to, keeps and counts) the
PII of rewrites and reviewer decisions; without a policy nothing is checked; stored answers never change."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from curate.annotate import answers as A
from curate.cli.main import app
from curate.export.writer import export
from curate.ingest.sources import ingest
from curate.rounds.assignment import assign_round
from curate.rounds.tasks import create_round
from curate.store.schema import Annotation, Task
from tests.annotation_setup import seed

pytest.importorskip("presidio_analyzer")

EMAIL, PHONE = "maria.kovalenko@example-mail.com", "+1 (415) 555-0137"
REWRITE = f"We refunded you. Questions? Write to {EMAIL} or call {PHONE}."
REDACTED = "We refunded you. Questions? Write to <EMAIL_ADDRESS_1> or call <PHONE_NUMBER_1>."
TICKET = {"prompt": "Maria Kovalenko asks: where is my refund?", "completion": "It is on its way."}


def _rewrite_task(ws, needle: str, people: tuple[str, ...] = ("ann",)) -> int:
    """A rewrite round on the pool example whose prompt holds ``needle``, queued for ``people``; its task id."""
    (rec,) = [r for r in ws.store.iter_records(kind="example") if needle in r.fields["prompt"]]
    report = create_round(ws.store, [rec], [0], scores=np.ones(1), strategy_key="refunds", task_type="rewrite")
    assign_round(ws.store, people, round_number=report.number, overlap=1.0 if len(people) > 1 else 0.0)
    with ws.store.read() as conn:
        return int(conn.scalar(select(Task.id).where(Task.round_id == report.round_id)))


def _ingest(ws, tmp_path, name: str, row: dict, pii: str | None = None) -> None:
    (tmp_path / name).write_text(json.dumps(row) + "\n")
    ingest(ws, tmp_path / name, pii=pii)


def _ticket_task(ws, tmp_path) -> int:
    """A ticket ingested with ``--pii redact`` (its name becomes ``<PERSON_1>``), in a rewrite round for ann."""
    _ingest(ws, tmp_path, "tickets.jsonl", TICKET, pii="redact")
    return _rewrite_task(ws, "where is my refund")


def _policy_workspace(ws, tmp_path) -> int:
    """The seeded workspace plus :func:`_ticket_task`; returns that task's id."""
    seed(ws, tmp_path)
    return _ticket_task(ws, tmp_path)


def _sft_rows(out) -> list[dict]:
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def _no_detection(monkeypatch) -> None:
    """Fail the test if any PII detector is built or run."""
    import curate.filters.pii as pii
    import curate.filters.pii_workspace as pii_workspace

    def refuse(*args, **kwargs):
        raise AssertionError("PII detection ran")

    for module, name in ((pii, "build_analyzer"), (pii, "detect"), (pii_workspace, "PiiGuard")):
        monkeypatch.setattr(module, name, refuse)


def test_a_rewrite_with_pii_is_redacted_in_the_export_and_kept_in_the_database(workspace, tmp_path):
    task_id = _policy_workspace(workspace, tmp_path)
    A.submit(workspace.store, "ann", task_id, {"completion": REWRITE})
    out = tmp_path / "sft"
    report = export(workspace, "sft", out, to="jsonl")
    (row,) = _sft_rows(out)
    assert row == {"prompt": "<PERSON_1> asks: where is my refund?", "completion": REDACTED}
    found = report.rewrite_pii
    assert (found["checked"], found["mode"], found["texts_checked"], found["redacted"]) == (True, "redact", 1, 1)
    assert found["by_type"] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1} and found["task_ids"] == [task_id]
    assert found["policy"]["action"] == "redact" and "EMAIL_ADDRESS" in found["policy"]["types"]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["rewrite_pii"]["by_type"] == found["by_type"] and manifest["rewrite_pii"]["task_ids"] == [task_id]
    card = (out / "README.md").read_text()
    assert (f"- PII in annotator texts: 1 of 1 redacted: EMAIL_ADDRESS 1, PHONE_NUMBER 1 (task {task_id})"
            in card)
    files = [p.read_bytes() for p in out.rglob("*") if p.is_file()]
    assert not [v for v in (EMAIL, PHONE) if any(v.encode() in data for data in files)]
    with workspace.store.read() as conn:  # what ann submitted is kept as written
        stored = conn.scalars(select(Annotation.value).where(Annotation.task_id == task_id)).all()
    assert [orjson.loads(v)["completion"] for v in stored] == [REWRITE]
    # DPO: the redacted rewrite is chosen over the record's own completion
    report = export(workspace, "dpo", tmp_path / "dpo", to="jsonl")
    assert [(r["chosen"], r["rejected"]) for r in _sft_rows(tmp_path / "dpo")] == [(REDACTED, "It is on its way.")]
    assert report.rewrite_pii["task_ids"] == [task_id]


def test_a_reviewers_merged_decision_is_checked_too(workspace, tmp_path):
    seed(workspace, tmp_path)
    _ingest(workspace, tmp_path, "tickets.jsonl", TICKET, pii="redact")
    task_id = _rewrite_task(workspace, "where is my refund", ("ann", "bob"))
    A.submit(workspace.store, "ann", task_id, {"completion": "We refunded you."})
    A.submit(workspace.store, "bob", task_id, {"completion": "The refund is on its way."})
    A.adjudicate(workspace.store, "rita", task_id, {"completion": REWRITE})
    out = tmp_path / "kto"
    report = export(workspace, "kto", out, to="jsonl")
    rows = _sft_rows(out)
    prov = [json.loads(line) for line in (out / "provenance.jsonl").read_text().splitlines()]
    assert [(r["completion"], r["label"]) for r in rows] == [(REDACTED, True), ("It is on its way.", False)]
    assert {p["kind"] for p in prov} == {"adjudication"}
    assert report.rewrite_pii["task_ids"] == [task_id] and report.rewrite_pii["redacted"] == 1


def test_a_new_name_in_a_rewrite_is_numbered_after_the_records_placeholders(workspace, tmp_path):
    """The ticket's name is ``<PERSON_1>``: another person named in the rewrite must not share it."""
    task_id = _policy_workspace(workspace, tmp_path)
    A.submit(workspace.store, "ann", task_id, {"completion": "Dear <PERSON_1>, Tom Baker from billing will call."})
    report = export(workspace, "sft", tmp_path / "sft", to="jsonl")
    assert [r["completion"] for r in _sft_rows(tmp_path / "sft")] == ["Dear <PERSON_1>, <PERSON_2> from billing will "
                                                                      "call."]
    assert report.rewrite_pii["by_type"] == {"PERSON": 1}


def test_keep_exports_the_rewrite_as_written_and_still_counts_it(workspace, db_url, tmp_path):
    task_id = _policy_workspace(workspace, tmp_path)
    A.submit(workspace.store, "ann", task_id, {"completion": REWRITE})
    out = tmp_path / "sft"
    result = CliRunner().invoke(app, ["export", "--format", "sft", "--out", str(out), "--to", "jsonl",
                                      "--pii-rewrites", "keep", "-w", str(workspace.root), "--db", db_url,
                                      "--json", str(tmp_path / "export.json")])
    assert result.exit_code == 0, result.output
    assert [r["completion"] for r in _sft_rows(out)] == [REWRITE]
    found = json.loads((tmp_path / "export.json").read_text())["rewrite_pii"]
    assert (found["mode"], found["texts_with_pii"], found["redacted"]) == ("keep", 1, 0)
    assert found["by_type"] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1} and found["task_ids"] == [task_id]
    said = " ".join(result.output.split())
    assert ("WARNING: PII in annotator texts: 1 of 1 KEPT AS WRITTEN (--pii-rewrites keep): EMAIL_ADDRESS 1, "
            f"PHONE_NUMBER 1 (task {task_id}). --pii-rewrites redact (the default) replaces them" in said)
    assert "KEPT AS WRITTEN" in (out / "README.md").read_text()
    # the default, through the CLI: redacted, one line saying so and naming the option
    result = CliRunner().invoke(app, ["export", "--format", "sft", "--out", str(tmp_path / "sft2"), "--to", "jsonl",
                                      "-w", str(workspace.root), "--db", db_url])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "PII in annotator texts: 1 of 1 redacted: EMAIL_ADDRESS 1, PHONE_NUMBER 1" in said
    assert "--pii-rewrites keep exports it as written" in said
    assert [r["completion"] for r in _sft_rows(tmp_path / "sft2")] == [REDACTED]
    bad = CliRunner().invoke(app, ["export", "--format", "sft", "--out", str(tmp_path / "x"), "--pii-rewrites",
                                   "redcat", "-w", str(workspace.root), "--db", db_url])
    assert bad.exit_code != 0 and "--pii-rewrites must be one of redact, keep" in str(bad.exception)


def test_without_a_pii_policy_nothing_is_checked(workspace, tmp_path, monkeypatch):
    s = seed(workspace, tmp_path)
    A.submit(workspace.store, "ann", s.rewrite[0], {"completion": REWRITE})
    _no_detection(monkeypatch)
    out = tmp_path / "sft"
    report = export(workspace, "sft", out, to="jsonl")
    assert [r["completion"] for r in _sft_rows(out)] == [REWRITE]
    found = report.rewrite_pii
    assert (found["checked"], found["texts_checked"], found["task_ids"]) == (False, 0, [])
    assert found["summary"].startswith("not checked: no PII policy was applied to this workspace")
    assert "- PII in annotator texts: not checked: no PII policy" in (out / "README.md").read_text()


def test_an_accepted_as_is_rewrite_is_not_checked(workspace, tmp_path, monkeypatch):
    """Accepted as is exports the record's own completion: never checked nor changed, even when it holds PII (this
    record was ingested before the policy, without --pii); only the edited rewrite is checked."""
    from curate.filters.pii_batch import Detector

    seed(workspace, tmp_path)
    _ingest(workspace, tmp_path, "old.jsonl", {"prompt": "Who handles refunds?", "completion": f"Write to {EMAIL}."})
    accepted = _rewrite_task(workspace, "Who handles refunds")
    edited = _ticket_task(workspace, tmp_path)
    A.submit(workspace.store, "ann", accepted, {"accepted_as_is": True})
    A.submit(workspace.store, "ann", edited, {"completion": REWRITE})
    seen: list[str] = []
    warm = Detector.warm

    def spy(self, texts, *args, **kwargs):
        texts = list(texts)
        seen.extend(texts)
        return warm(self, texts, *args, **kwargs)

    monkeypatch.setattr(Detector, "warm", spy)
    out = tmp_path / "sft"
    report = export(workspace, "sft", out, to="jsonl")
    assert seen == [REWRITE]
    completions = sorted(r["completion"] for r in _sft_rows(out))
    assert completions == sorted([REDACTED, f"Write to {EMAIL}."])
    assert (report.rewrite_pii["texts_checked"], report.rewrite_pii["task_ids"]) == (1, [edited])
    # a workspace whose only annotator text is accepted as is loads no detector at all
    import curate.export.writer as writer

    monkeypatch.setattr(writer, "final_annotations", lambda conn: {
        k: v for k, v in A.final_annotations(conn).items() if k == accepted})
    _no_detection(monkeypatch)
    report = export(workspace, "sft", tmp_path / "sft-accepted", to="jsonl")
    assert report.rewrite_pii["checked"] and report.rewrite_pii["texts_checked"] == 0



def test_the_policys_allow_list_given_again_applies_to_rewrites(workspace, db_url, tmp_path):
    """An allow-list is stored as a digest only: export says so when it matters, and takes it again."""
    seed(workspace, tmp_path)
    (tmp_path / "tickets.jsonl").write_text(json.dumps(TICKET) + "\n")
    ingest(workspace, tmp_path / "tickets.jsonl", pii="redact", pii_allow=("Tom Baker",))
    task_id = _rewrite_task(workspace, "where is my refund")
    A.submit(workspace.store, "ann", task_id, {"completion": "Tom Baker from billing will call you."})
    where = ["--format", "sft", "--to", "jsonl", "-w", str(workspace.root), "--db", db_url]
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path / "a"), *where])
    assert result.exit_code == 0, result.output
    assert [r["completion"] for r in _sft_rows(tmp_path / "a")] == ["<PERSON_2> from billing will call you."]
    said = " ".join(result.output.split())
    assert "The PII policy allowed 1 string(s), which the workspace does not keep: give the same --pii-allow" in said
    (tmp_path / "allowed.txt").write_text("# public names\nTom Baker\n")
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path / "b"), "--pii-allow-file",
                                      str(tmp_path / "allowed.txt"), *where])
    assert result.exit_code == 0, result.output
    assert [r["completion"] for r in _sft_rows(tmp_path / "b")] == ["Tom Baker from billing will call you."]
    assert "The PII policy allowed" not in result.output
