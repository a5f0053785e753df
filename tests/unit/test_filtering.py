"""filter dedup on a real workspace: duplicates and test-set leaks leave the candidate pool, with clusters stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from curate.cli.main import app
from curate.errors import InputError
from curate.filters.dedup_workspace import run_dedup
from curate.ingest.sources import ingest
from curate.rounds.selection import candidates
from curate.store.audit import verify
from curate.store.schema import RecordCluster, RecordRow, ScoreRow


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


CLUSTERED = ["Refund, please!", "refund please", "REFUND PLEASE",  # one exact cluster (after normalisation)
             "The app crashes on start.", "the app crashes on start",  # another
             "How do I export my data?"]  # a singleton


def _ingest_clustered(ws, tmp_path) -> dict[str, str]:
    _rows(tmp_path / "c.jsonl", [{"text": t} for t in CLUSTERED])
    ingest(ws, tmp_path / "c.jsonl")
    return {r.fields["text"]: r.id for r in ws.store.iter_records()}


def _scores(ws, key, values: dict[str, float | None]) -> None:
    with ws.store.write() as conn:
        conn.execute(insert(ScoreRow), [{"scorer_key": key, "record_id": rid, "value": v}
                                        for rid, v in values.items()])


def _status(ws) -> dict[str, str]:
    """Status of every record by its text, in ingest order."""
    with ws.store.read() as conn:
        rows = conn.execute(select(RecordRow.data, RecordRow.status).order_by(RecordRow.source_row)).all()
    return {json.loads(data)["text"]: status for data, status in rows}


def test_dedup_keeps_the_highest_cached_score(workspace, tmp_path):
    ids = _ingest_clustered(workspace, tmp_path)
    _scores(workspace, "ifd()@smollm2", {ids["Refund, please!"]: 0.1, ids["refund please"]: 0.2,
                                         ids["REFUND PLEASE"]: 0.9, ids["The app crashes on start."]: 3.0,
                                         ids["the app crashes on start"]: None})  # NaN: cannot score -> lowest
    report = run_dedup(workspace, method="exact", keep="highest-score")  # the only key: chosen without --score-key
    assert (report.keep, report.score_key, report.removed, report.duplicate_clusters) == \
        ("highest-score", "ifd()@smollm2", 3, 2)
    assert _status(workspace) == {"Refund, please!": "duplicate", "refund please": "duplicate",
                                  "REFUND PLEASE": "active", "The app crashes on start.": "active",
                                  "the app crashes on start": "duplicate", "How do I export my data?": "active"}
    with workspace.store.read() as conn:
        clusters = {c.record_id: c.cluster_id for c in conn.execute(select(RecordCluster))}
    assert clusters[ids["Refund, please!"]] == clusters[ids["refund please"]] == ids["REFUND PLEASE"]
    assert verify(workspace.store).ok


def test_highest_score_picks_among_several_keys_by_key_or_scorer_name(workspace, tmp_path):
    ids = _ingest_clustered(workspace, tmp_path)
    members = [ids[t] for t in CLUSTERED[:5]]
    _scores(workspace, "novelty()", dict(zip(members, [5.0, 1.0, 1.0, 1.0, 5.0], strict=True)))
    _scores(workspace, "ifd()@smollm2", dict(zip(members, [1.0, 5.0, 1.0, 5.0, 1.0], strict=True)))
    with pytest.raises(InputError, match=r"holds 2 scorer keys; choose one with --score-key: ifd\(\)@smollm2, nov"):
        run_dedup(workspace, method="exact", keep="highest-score")
    assert set(_status(workspace).values()) == {"active"}
    report = run_dedup(workspace, method="exact", keep="highest-score", score_key="ifd")  # scorer name -> its key
    assert report.score_key == "ifd()@smollm2"
    assert [t for t, s in _status(workspace).items() if s == "active"] == \
        ["refund please", "The app crashes on start.", "How do I export my data?"]


def test_highest_score_errors(workspace, tmp_path):
    ids = _ingest_clustered(workspace, tmp_path)
    with pytest.raises(InputError, match="has none. Run `curate score --scorer NAME` first"):
        run_dedup(workspace, method="exact", keep="highest-score")
    _scores(workspace, "novelty()", {ids["Refund, please!"]: 1.0, ids["refund please"]: 2.0,
                                     ids["How do I export my data?"]: 1.0})
    with pytest.raises(InputError, match=r"3 of 5 records in duplicate clusters have no cached score under "
                                         r"'novelty\(\)'. Run `curate score`"):
        run_dedup(workspace, method="exact", keep="highest-score")
    with pytest.raises(InputError, match="--score-key 'density' has no cached scores; the score cache holds: novelty"):
        run_dedup(workspace, method="exact", keep="highest-score", score_key="density")
    with pytest.raises(InputError, match="--score-key goes with --keep highest-score"):
        run_dedup(workspace, method="exact", keep="first", score_key="novelty()")
    with pytest.raises(InputError, match="first, longest, highest-score"):
        run_dedup(workspace, method="exact", keep="best")
    assert set(_status(workspace).values()) == {"active"}  # nothing was marked


def test_filter_dedup_command_keep_highest_score(tmp_path):
    ws = str(tmp_path / "ws")
    _rows(tmp_path / "t.jsonl", [{"text": "Refund, please!"}, {"text": "refund please"}, {"text": "crash on start"}])
    assert runner_invoke(["ingest", str(tmp_path / "t.jsonl"), "-w", ws]).exit_code == 0
    from curate.store.workspace import Workspace

    workspace = Workspace.open(ws)
    ids = {r.fields["text"]: r.id for r in workspace.store.iter_records()}
    _scores(workspace, "novelty()", {ids["Refund, please!"]: 0.5, ids["refund please"]: 0.7})
    workspace.store.dispose()
    result = runner_invoke(["filter", "dedup", "--method", "exact", "--keep", "highest-score", "--score-key",
                            "novelty()", "-w", ws, "--json", str(tmp_path / "d.json")])
    assert result.exit_code == 0, result.output
    assert "kept the highest score under novelty()" in result.output
    figures = json.loads((tmp_path / "d.json").read_text())
    assert (figures["keep"], figures["score_key"], figures["removed"]) == ("highest-score", "novelty()", 1)
    workspace = Workspace.open(ws)
    assert {r.fields["text"] for r in workspace.store.iter_records()} == {"refund please", "crash on start"}
    workspace.store.dispose()


def runner_invoke(args):
    return CliRunner().invoke(app, args)
