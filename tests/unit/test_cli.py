"""The CLI as a user runs it: real subprocesses for error paths (no tracebacks), CliRunner for the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from curate.cli.main import app

runner = CliRunner()


def _curate(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "curate.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_ingest_stats_and_verify_write_json(tmp_path, fixtures):
    ws = str(tmp_path / "ws")
    result = runner.invoke(app, ["ingest", str(fixtures / "sft.jsonl"), str(fixtures / "texts.csv"), "-w", ws,
                                 "--json", str(tmp_path / "ingest.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "ingest.json").read_text())
    assert figures["totals"] == {"rows": 7, "valid": 7, "new": 7, "moved": 0, "duplicates": 0, "quarantined": 0}
    assert runner.invoke(app, ["stats", "-w", ws, "--json", str(tmp_path / "stats.json")]).exit_code == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["by_kind"] == {"example": 3, "text": 4}
    assert list(stats["by_label"].items()) == [("billing", 2), ("bug", 1), ("feature_request", 1)]  # most first
    shown = runner.invoke(app, ["stats", "-w", ws])
    assert "billing" in shown.output and "feature_request" in shown.output
    result = runner.invoke(app, ["audit", "verify", "-w", ws, "--json", str(tmp_path / "audit.json")])
    assert result.exit_code == 0 and "intact" in result.output
    assert json.loads((tmp_path / "audit.json").read_text())["events"] == 2


def test_ingest_exits_nonzero_only_when_nothing_valid(tmp_path):
    ws = str(tmp_path / "ws")
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n')
    (tmp_path / "mixed.jsonl").write_text('{"x": 1}\n{"text": "ok"}\n')
    assert runner.invoke(app, ["ingest", str(tmp_path / "mixed.jsonl"), "-w", ws]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(tmp_path / "bad.jsonl"), "-w", ws])
    assert result.exit_code == 1 and "No valid rows" in result.output


def test_user_errors_are_one_clear_message_without_traceback(tmp_path):
    ws = str(tmp_path / "ws")
    cases = [
        (["ingest", str(tmp_path / "missing.jsonl"), "-w", ws], "no such file"),
        (["ingest", str(tmp_path), "-w", ws], "not a saved Hugging Face dataset"),
        (["ingest", str(tmp_path / "x.jsonl"), "--map", "colour=body", "-w", ws], "is not a field curate knows"),
        (["stats", "--db", "nosuchdialect://x", "-w", ws], "cannot use the database URL"),
    ]
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\n')
    for args, message in cases:
        proc = _curate(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in " ".join(proc.stderr.split()), proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout


def test_strict_failure_names_file_and_line(tmp_path):
    (tmp_path / "s.jsonl").write_text('{"text": "ok"}\n{"text": ""}\n')
    proc = _curate("ingest", str(tmp_path / "s.jsonl"), "--strict", "-w", str(tmp_path / "ws"))
    flat = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "s.jsonl, line 2" in flat and "Nothing was stored" in flat


def test_audit_verify_fails_on_a_tampered_log(tmp_path, fixtures):
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["ingest", str(fixtures / "sft.jsonl"), "-w", str(ws)]).exit_code == 0
    import sqlite3

    conn = sqlite3.connect(ws / "curate.db")
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("UPDATE audit_events SET actor = 'mallory'")
    conn.commit()
    conn.close()
    result = runner.invoke(app, ["audit", "verify", "-w", str(ws)])
    assert result.exit_code == 1 and "edited" in result.output


@pytest.mark.parametrize("command", [["select", "--scorer", "margin"], ["stats"],
                                     ["export", "--format", "sft", "--out", "OUT"]])
def test_a_mistyped_workspace_is_an_error_not_a_new_empty_workspace(tmp_path, command):
    missing = tmp_path / "wrokspace"
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    proc = subprocess.run([sys.executable, "-m", "curate.cli.main", *args, "-w", str(missing)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "CURATE_DB": ""})
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr
    assert f"no workspace at {missing}" in message and "curate ingest" in message
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not missing.exists()  # nothing was created



@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_run_help_shows_usage_and_the_recipes_instead_of_unknown_recipe(flag):
    result = runner.invoke(app, ["run", flag])
    assert result.exit_code == 0, result.output
    assert "Usage: curate run" in result.output
    assert "no recipe called" not in result.output
    for recipe in ("sft-select", "preference-rank", "label-teach"):
        assert recipe in result.output


def test_ingest_pii_off_is_no_detection_as_in_the_recipes(tmp_path):
    src = tmp_path / "rows.jsonl"
    src.write_text(json.dumps({"prompt": "Mail ann.lee@example.com", "completion": "Done."}) + "\n")
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["ingest", str(src), "--workspace", str(ws), "--pii", "off"])
    assert result.exit_code == 0, result.output
    import sqlite3

    with sqlite3.connect(ws / "curate.db") as conn:
        (data,) = conn.execute("select data from records").fetchone()
    assert json.loads(data)["prompt"] == "Mail ann.lee@example.com"
    typo = runner.invoke(app, ["ingest", str(src), "--workspace", str(ws), "--pii", "of"])
    assert typo.exit_code != 0
    assert "redact, drop, flag, preview, off; got 'of'. Did you mean 'off'?" in str(typo.exception)


def test_stats_counts_a_label_read_as_number_and_as_text_together(tmp_path):
    ws = tmp_path / "ws"
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": f"json row {i}", "label": i % 2}) + "\n"
                                              for i in range(6)))
    (tmp_path / "b.csv").write_text("text,label\n" + "".join(f"csv row {i},{i % 2}\n" for i in range(4)))
    for name in ("a.jsonl", "b.csv"):
        assert runner.invoke(app, ["ingest", str(tmp_path / name), "--workspace", str(ws)]).exit_code == 0
    result = runner.invoke(app, ["stats", "--workspace", str(ws), "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s.json").read_text())["by_label"] == {"0": 5, "1": 5}
