"""No planted PII value is written in clear anywhere in the workspace when redaction is on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from curate.cli.main import app
from curate.store.audit import verify
from curate.store.schema import PiiFinding
from curate.store.workspace import Workspace

PLANTED = {
    "EMAIL": "maria.kovalenko@example-mail.com",
    "PHONE": "+1 (415) 555-0137",
    "CARD": "4111 1111 1111 1111",
    "AWS": "AKIAIOSFODNN7EXAMPLE",
    "PERSON": "Maria Kovalenko",
}


def _planted_file(path: Path) -> Path:
    rows = [
        {"prompt": f"My name is {PLANTED['PERSON']} and my email is {PLANTED['EMAIL']}. Why was I charged?",
         "completion": f"Hello {PLANTED['PERSON']}, we will call you at {PLANTED['PHONE']}.",
         "customer_email": PLANTED["EMAIL"]},
        {"prompt": f"Card {PLANTED['CARD']} was declined", "completion": "Please check the expiry date."},
        {"prompt": "Deploy failed", "completion": f"Rotate the key {PLANTED['AWS']} and redeploy."},
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    text += '{"prompt": "broken row from ' + PLANTED["EMAIL"] + '", \n'  # quarantined, must be redacted too
    path.write_text(text)
    return path


def _files_containing(root: Path, values: dict[str, str]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for file in root.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            found = [name for name, value in values.items() if value.encode() in data]
            if found:
                hits[str(file.relative_to(root))] = found
    return hits


def test_ingest_with_redaction_writes_no_clear_value_anywhere(tmp_path):
    ws = tmp_path / "ws"
    source = _planted_file(tmp_path / "tickets.jsonl")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(source), "--pii", "redact", "-w", str(ws),
                                 "--json", str(ws / "ingest.json")])
    assert result.exit_code == 0, result.output
    picked = runner.invoke(app, ["select", "--scorer", "density", "-k", "2", "-w", str(ws)])
    assert picked.exit_code == 0, picked.output
    # the first tasks are shown with their scores and texts: redacted, never a planted value
    assert "first tasks of the round, in selection order" in picked.output
    assert not [name for name, value in PLANTED.items() if value in picked.output]
    assert runner.invoke(app, ["stats", "-w", str(ws), "--json", str(ws / "stats.json")]).exit_code == 0
    hits = _files_containing(ws, PLANTED)
    assert hits == {}, f"clear PII found in workspace files: {hits}"
    workspace = Workspace.open(ws)
    texts = " ".join(json.dumps(r.fields) for r in workspace.store.iter_records())
    assert "<PERSON_1>" in texts and "<EMAIL_ADDRESS_1>" in texts
    first = next(r for r in workspace.store.iter_records() if "charged" in json.dumps(r.fields))
    assert first.fields["prompt"].count("<PERSON_1>") == 1 and "<PERSON_1>" in first.fields["completion"]
    with workspace.store.read() as conn:
        types = {f.entity_type for f in conn.execute(select(PiiFinding)).all()}
    assert {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "AWS_ACCESS_KEY"} <= types
    report = json.loads((ws / "ingest.json").read_text())["sources"][0]
    assert report["quarantined"] == 1 and report["pii"]["records"]["redacted"] == 3
    assert verify(workspace.store).ok


@pytest.mark.parametrize("action", ["redact", "drop"])
def test_filter_pii_after_ingest_purges_clear_values_from_the_database(tmp_path, action):
    ws = tmp_path / "ws"
    source = _planted_file(tmp_path / "tickets.jsonl")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(source), "-w", str(ws)]).exit_code == 0
    for quarantined in (ws / "quarantine").iterdir():  # ingested without --pii: its quarantine holds the raw row
        quarantined.unlink()
    result = runner.invoke(app, ["filter", "pii", "--action", action, "-w", str(ws),
                                 "--json", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    assert _files_containing(ws, PLANTED) == {}
    figures = json.loads((tmp_path / "p.json").read_text())
    assert figures["records"] == 3 and figures["summary"]["by_type"]["PERSON"] >= 2
    if action == "drop":
        assert Workspace.open(ws).store.stats()["by_status"] == {"pii": 3}


def _annotate_and_export(ws: Path, runner: CliRunner) -> dict:
    """Assign the selected rewrite tasks, answer them through the service, and export SFT and DPO into ws."""
    from curate.annotate import answers as A
    from curate.rounds.assignment import assign_round
    from curate.store.accounts import add_user

    workspace = Workspace.open(ws)
    add_user(workspace.store, "ann", "annotator", "correct-horse-42")
    assign_round(workspace.store, ["ann"])
    views = []
    while (view := A.get_task(workspace.store, "ann")) is not None:
        views.append(view)
        A.submit(workspace.store, "ann", view.task_id, {"completion": view.completion + " Thanks.",
                                                       "accepted_as_is": False})
    for fmt in ("sft", "dpo"):
        out = ws / "exports" / fmt
        result = runner.invoke(app, ["export", "--format", fmt, "--out", str(out), "--to", "jsonl", "-w", str(ws)])
        assert result.exit_code == 0, result.output
        assert (out / "train.jsonl").stat().st_size > 0
    return {"views": views, "workspace": workspace}


def test_annotation_views_and_exports_hold_no_clear_value(tmp_path):
    ws = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(_planted_file(tmp_path / "t.jsonl")), "--pii", "redact",
                               "-w", str(ws)]).exit_code == 0
    assert runner.invoke(app, ["select", "--scorer", "density", "-k", "3", "-w", str(ws)]).exit_code == 0
    done = _annotate_and_export(ws, runner)
    shown = json.dumps([v.as_dict() for v in done["views"]])
    assert len(done["views"]) == 3 and "<PERSON_1>" in shown
    assert not [name for name, value in PLANTED.items() if value in shown]
    assert _files_containing(ws, PLANTED) == {}
    assert verify(done["workspace"].store).ok


def _flagged_round(ws: Path) -> Workspace:
    """The planted rows ingested, flagged (stored in clear), selected and queued for ann."""
    from curate.rounds.assignment import assign_round
    from curate.store.accounts import add_user

    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(_planted_file(ws.parent / "t.jsonl")), "-w", str(ws)]).exit_code == 0
    assert runner.invoke(app, ["filter", "pii", "--action", "flag", "-w", str(ws)]).exit_code == 0
    assert runner.invoke(app, ["select", "--scorer", "density", "-k", "3", "-w", str(ws)]).exit_code == 0
    workspace = Workspace.open(ws)
    add_user(workspace.store, "ann", "annotator", "correct-horse-42")
    assign_round(workspace.store, ["ann"])
    return workspace


def test_flagged_records_are_redacted_on_the_way_to_the_screen(tmp_path):
    from curate.annotate import answers as A

    workspace = _flagged_round(tmp_path / "ws")
    shown = []
    while (view := A.get_task(workspace.store, "ann")) is not None:
        shown.append(json.dumps(view.as_dict()))
        A.skip(workspace.store, "ann", view.task_id)
        if len(shown) == 3:
            break
    text = " ".join(shown)
    assert "<EMAIL_ADDRESS_1>" in text and not [n for n, v in PLANTED.items() if v in text]


def test_a_flagged_completion_accepted_as_is_exports_the_records_own_text(tmp_path):
    """The annotator saw the completion redacted; "accept as is" means the record's answer, not the placeholders.
    An answer that both accepts as is and edits is refused."""
    from curate.annotate import answers as A
    from curate.errors import InputError

    ws = tmp_path / "ws"
    runner = CliRunner()
    workspace = _flagged_round(ws)
    while (view := A.get_task(workspace.store, "ann")) is not None:
        if "<PHONE_NUMBER_1>" in view.completion:
            with pytest.raises(InputError, match="both accepts the completion as is and edits it"):
                A.submit(workspace.store, "ann", view.task_id, {"completion": "Edited.", "accepted_as_is": True})
        A.submit(workspace.store, "ann", view.task_id, {"accepted_as_is": True})
    assert runner.invoke(app, ["export", "--format", "sft", "--out", str(tmp_path / "sft"), "--to", "jsonl",
                               "-w", str(ws)]).exit_code == 0
    completions = [json.loads(line)["completion"] for line in (tmp_path / "sft" / "train.jsonl").read_text()
                   .splitlines()]
    assert f"Hello {PLANTED['PERSON']}, we will call you at {PLANTED['PHONE']}." in completions
    assert not any("<PHONE_NUMBER_1>" in c or "<PERSON_1>" in c for c in completions)
