"""Ingesting into test/calibration rows that are already pool records: moved, counted, audited; never selectable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from curate.cli.main import app
from curate.errors import InputError
from curate.ingest.sources import ingest
from curate.rounds.selection import candidates
from curate.rounds.tasks import create_round
from curate.store.audit import verify
from curate.store.schema import AuditEvent


def _rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _mixed(n: int) -> list[dict]:
    """``n`` rows of three kinds."""
    out: list[dict] = []
    for i in range(n):
        if i % 3 == 0:
            out.append({"text": f"ticket {i}: the export button does nothing"})
        elif i % 3 == 1:
            out.append({"prompt": f"question {i}?", "completion": f"answer {i}."})
        else:
            out.append({"prompt": f"which is better, {i}?", "chosen": f"this one {i}", "rejected": f"that one {i}"})
    return out


def _events(ws, action: str) -> list[dict]:
    with ws.store.read() as conn:
        return [json.loads(p) for p in conn.scalars(select(AuditEvent.payload).where(AuditEvent.action == action))]


def test_reingesting_pool_rows_as_test_leaves_none_selectable(workspace, tmp_path):
    rows = _mixed(100)
    _rows(tmp_path / "pool.jsonl", rows)
    ingest(workspace, tmp_path / "pool.jsonl")
    assert len(candidates(workspace, include_labeled=True)) == 100
    report = ingest(workspace, tmp_path / "pool.jsonl", split="test")
    assert (report.new, report.moved, report.duplicates, report.moved_with_tasks) == (0, 100, 0, 0)
    assert candidates(workspace, include_labeled=True) == []
    assert workspace.store.stats()["by_split"] == {"test": 100}
    [moved] = _events(workspace, "ingest.move_split")
    assert (moved["from"], moved["to"], moved["records"], len(moved["ids"])) == ("pool", "test", 100, 100)
    assert _events(workspace, "ingest")[-1]["moved"] == 100
    assert verify(workspace.store).ok


def test_partial_overlap_moves_only_the_pool_copies_to_calibration(workspace, tmp_path):
    rows = _mixed(10)
    ingest(workspace, _rows(tmp_path / "pool.jsonl", rows))
    held = rows[:4] + [rows[0]] + [{"text": "a brand new calibration row"}]  # a repeated row counts once
    report = ingest(workspace, _rows(tmp_path / "cal.jsonl", held), split="calibration")
    assert (report.valid, report.new, report.moved, report.duplicates) == (6, 1, 4, 1)
    assert len(candidates(workspace, include_labeled=True)) == 6
    assert workspace.store.stats()["by_split"] == {"calibration": 5, "pool": 6}


def test_rows_already_held_out_stay_where_they_are_and_are_counted(workspace, tmp_path):
    rows = _mixed(6)
    ingest(workspace, _rows(tmp_path / "cal.jsonl", rows[:3]), split="calibration")
    report = ingest(workspace, _rows(tmp_path / "test.jsonl", rows), split="test")
    assert (report.new, report.moved, report.already_in) == (3, 0, {"calibration": 3})
    again = ingest(workspace, tmp_path / "test.jsonl")  # into the pool: nothing held out becomes selectable
    assert again.already_in == {"calibration": 3, "test": 3} and candidates(workspace, include_labeled=True) == []


def _select_first(ws) -> str:
    """Put the first pool record in a round (it gets a task); returns its id."""
    pool = sorted(ws.store.iter_records(), key=lambda r: r.row)
    create_round(ws.store, pool, [0], scores=np.zeros(len(pool)), strategy_key="test")
    return pool[0].id


def test_a_selected_pool_record_stops_the_ingest_unless_moving_is_asked_for(workspace, tmp_path):
    rows = _mixed(5)
    ingest(workspace, _rows(tmp_path / "pool.jsonl", rows))
    selected = _select_first(workspace)
    with pytest.raises(InputError, match=r"1 row\(s\) are pool records already selected.*line\(s\) 1\b.*"
                                         r"--move-selected"):
        ingest(workspace, tmp_path / "pool.jsonl", split="test")
    assert workspace.store.stats()["by_split"] == {"pool": 5}  # nothing was stored or moved
    report = ingest(workspace, tmp_path / "pool.jsonl", split="test", move_selected=True)
    assert (report.moved, report.moved_with_tasks) == (5, 1)
    assert _events(workspace, "ingest.move_split")[-1]["with_tasks"] == 1
    assert selected not in {r.id for r in workspace.store.iter_records()}


def test_ingest_command_reports_the_move(tmp_path):
    ws = str(tmp_path / "ws")
    _rows(tmp_path / "rows.jsonl", _mixed(9))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(tmp_path / "rows.jsonl"), "-w", ws]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(tmp_path / "rows.jsonl"), "-w", ws, "--split", "test",
                                 "--json", str(tmp_path / "i.json")])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "moved from pool to test │ 9" in flat and "can no longer be selected" in flat
    figures = json.loads((tmp_path / "i.json").read_text())
    assert figures["totals"]["moved"] == 9 and figures["sources"][0]["moved"] == 9


@pytest.mark.parametrize("redacted", ["pool", "test"])
def test_a_pii_redacted_copy_is_matched_and_moved_too(workspace, tmp_path, redacted):
    """Redaction changes a record's id: a raw test row still finds its redacted pool copy (and a redacted test row
    its raw pool copy) through meta.pii_source_id, so none stays selectable and nothing is stored twice."""
    pytest.importorskip("presidio_analyzer")
    rows = [{"prompt": f"Please call Siobhan O'Connor at siobhan.oconnor{i}@example.com about order {i}.",
             "completion": f"Done: order {i} is on its way."} for i in range(6)]
    rows += [{"prompt": f"What is {i} + {i}?", "completion": f"{2 * i}."} for i in range(6)]
    _rows(tmp_path / "pool.jsonl", rows)
    ingest(workspace, tmp_path / "pool.jsonl", pii="redact" if redacted == "pool" else None)
    assert len(candidates(workspace, include_labeled=True)) == 12
    report = ingest(workspace, tmp_path / "pool.jsonl", split="test", pii="redact" if redacted == "test" else None)
    assert candidates(workspace, include_labeled=True) == []
    assert report.moved == 12 and report.new == 0
    assert workspace.store.stats()["by_split"] == {"test": 12}


def test_a_held_out_label_that_differs_from_the_pool_copy_is_reported(workspace, tmp_path):
    pool = [{"text": f"ticket {i}: the export button does nothing", "label": "bug"} for i in range(4)]
    _rows(tmp_path / "pool.jsonl", pool)
    ingest(workspace, tmp_path / "pool.jsonl")
    held = [dict(r, label="feature_request" if i < 2 else "bug") for i, r in enumerate(pool)]
    _rows(tmp_path / "held.jsonl", held)
    report = ingest(workspace, tmp_path / "held.jsonl", split="test")
    assert report.moved == 4 and report.label_conflicts == 2
    assert sorted(report.label_conflict_examples) == [(1, "bug", "feature_request"), (2, "bug", "feature_request")]
    assert _events(workspace, "ingest.move_split")[-1]["label_conflicts"] == 2
    other = str(tmp_path / "ws2")
    assert CliRunner().invoke(app, ["ingest", str(tmp_path / "pool.jsonl"), "-w", other]).exit_code == 0
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "held.jsonl"), "--split", "test", "-w", other])
    assert result.exit_code == 0, result.output
    assert "2 moved record(s) have another label in this file than the one stored" in " ".join(result.output.split())
