"""filter dedup on a real workspace: duplicates and test-set leaks leave the candidate pool, with clusters stored."""

from __future__ import annotations

import json

from sqlalchemy import select
from typer.testing import CliRunner

from curate.audit import verify
from curate.cli import app
from curate.filtering import run_dedup
from curate.ingest import ingest
from curate.schema import RecordCluster
from curate.selection import candidates


def _rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_dedup_marks_near_copies_and_leaks_and_keeps_the_first(workspace, tmp_path):
    answer = "Open Settings, then Security, then choose Reset password and follow the emailed link."
    _rows(tmp_path / "pool.jsonl", [
        {"prompt": "How do I reset my password?", "completion": answer},
        {"prompt": "How do I reset my password??", "completion": answer.replace("emailed", "e-mailed")},
        {"prompt": "What file types can I upload to the portal?", "completion": "PDF, PNG and CSV up to 25 MB."},
        {"prompt": "Which plans include single sign-on for the whole team?", "completion": "Business and up."},
    ])
    _rows(tmp_path / "test.jsonl", [
        {"prompt": "what file types can I upload to the portal", "completion": "PDF, PNG and CSV up to 25 MB"},
    ])
    ingest(workspace, tmp_path / "pool.jsonl")
    ingest(workspace, tmp_path / "test.jsonl", split="test")
    report = run_dedup(workspace, method="minhash")
    assert (report.records, report.removed, report.duplicate_clusters, report.leaks) == (4, 1, 1, 1)
    left = sorted(r.fields["prompt"] for r in candidates(workspace))
    assert left == ["How do I reset my password?", "Which plans include single sign-on for the whole team?"]
    assert workspace.store.stats()["by_status"] == {"active": 3, "duplicate": 1, "leak": 1}
    with workspace.store.read() as conn:
        clusters = conn.execute(select(RecordCluster)).all()
    assert len(clusters) == 2 and len({c.cluster_id for c in clusters}) == 1
    kept = next(r for r in workspace.store.iter_records() if r.fields["prompt"] == "How do I reset my password?")
    assert clusters[0].cluster_id == kept.id
    assert verify(workspace.store).ok


def test_filter_dedup_command_exact(tmp_path):
    ws = str(tmp_path / "ws")
    _rows(tmp_path / "t.jsonl", [{"text": "Refund, please!"}, {"text": "refund please"}, {"text": "crash on start"}])
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(tmp_path / "t.jsonl"), "-w", ws]).exit_code == 0
    result = runner.invoke(app, ["filter", "dedup", "--method", "exact", "-w", ws, "--json", str(tmp_path / "d.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "d.json").read_text())
    assert (figures["records"], figures["removed"], figures["leaks"]) == (3, 1, 0)
    bad = runner.invoke(app, ["filter", "dedup", "--method", "fuzzy", "-w", ws])
    assert bad.exit_code != 0
