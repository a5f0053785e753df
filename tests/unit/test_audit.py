"""The audit chain: intact logs verify; direct database tampering of each kind is detected and named; `curate audit
log` shows and exports whole events; every command records who ran it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from curate.cli.main import app
from curate.errors import AuditError, InputError
from curate.store import audit
from tests.conftest import drop_append_only_guards


@pytest.fixture
def logged(workspace):
    """A workspace with six events, and the append-only triggers dropped as an attacker with DB access would."""
    for i in range(6):
        audit.record(workspace.store, f"step{i}", {"n": i, "ids_digest": f"{i:032x}"}, actor="tester")
    drop_append_only_guards(workspace.store)
    return workspace


def _execute(ws, *statements: str) -> None:
    with ws.store.write() as conn:
        for sql in statements:
            conn.exec_driver_sql(sql)


def test_untouched_log_verifies(logged):
    report = audit.verify(logged.store)
    assert report.ok and report.n_events == 6 and report.finding is None
    assert audit.verify(logged.store, expect_head=report.head_hash).ok


def test_edited_event_is_named(logged):
    _execute(logged, """UPDATE audit_events SET payload = '{"ids_digest":"x","n":99}' WHERE seq = 3""")
    report = audit.verify(logged.store)
    assert not report.ok
    assert (report.finding.problem, report.finding.seq) == ("edited", 3)
    assert report.edited_events == [3]


def test_deleted_event_is_named(logged):
    _execute(logged, "DELETE FROM audit_events WHERE seq = 4")
    report = audit.verify(logged.store)
    assert (report.finding.problem, report.finding.seq) == ("deleted", 5)
    assert "#4" in report.finding.message


def test_inserted_event_is_named_even_when_its_own_hash_is_right(logged):
    # Make room after event 2 and insert a well-formed event that links to event 2.
    with logged.store.read() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_events WHERE seq = 2")).scalar_one()
    # Renumbering in two steps keeps the primary key unique on every database.
    forged = audit.event_hash(prev, "2026-01-01T00:00:00+00:00", "mallory", "export", None, "{}")
    _execute(
        logged,
        "UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_events SET seq = seq - 99 WHERE seq >= 103",
        f"INSERT INTO audit_events (seq, ts, actor, action, model_version, payload, prev_hash, hash) VALUES "
        f"(3, '2026-01-01T00:00:00+00:00', 'mallory', 'export', NULL, '{{}}', '{prev}', '{forged}')",
    )
    report = audit.verify(logged.store)
    assert (report.finding.problem, report.finding.seq) == ("inserted", 3)
    assert "mallory" in report.finding.message


def test_inserted_event_with_a_bogus_link_is_named(logged):
    _execute(
        logged,
        "UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_events SET seq = seq - 99 WHERE seq >= 103",
        "INSERT INTO audit_events (seq, ts, actor, action, model_version, payload, prev_hash, hash) VALUES "
        f"(3, '2026-01-01T00:00:00+00:00', 'mallory', 'export', NULL, '{{}}', '{'1' * 64}', '{'2' * 64}')",
    )
    report = audit.verify(logged.store)
    assert (report.finding.problem, report.finding.seq) == ("inserted", 3)


def test_reordered_events_are_named(logged):
    _execute(
        logged,
        "UPDATE audit_events SET seq = 100 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = 100",
    )
    report = audit.verify(logged.store)
    assert report.finding.problem == "reordered" and report.finding.seq == 3


def test_deleting_the_last_event_is_caught_by_the_expected_head(logged):
    head = audit.verify(logged.store).head_hash
    _execute(logged, "DELETE FROM audit_events WHERE seq = 6")
    assert audit.verify(logged.store).ok  # invisible without an anchor ...
    report = audit.verify(logged.store, expect_head=head)
    assert not report.ok and report.finding.problem == "head-mismatch"


def test_append_only_triggers_refuse_edits(workspace):
    audit.record(workspace.store, "step", {"n": 1})
    with pytest.raises(Exception, match="append-only"):
        _execute(workspace, "UPDATE audit_events SET actor = 'x'")
    with pytest.raises(Exception, match="append-only"):
        _execute(workspace, "DELETE FROM audit_events")


def test_payload_with_long_text_is_refused(workspace):
    with pytest.raises(AuditError, match="never record text"):
        audit.record(workspace.store, "oops", {"text": "x" * 2000})


# --- curate audit log ------------------------------------------------------------------------------------------

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _log(ws, *args: str):
    return runner.invoke(app, ["audit", "log", "-w", str(ws.root), "--db", ws.db_url, *args])


@pytest.fixture
def varied(workspace):
    """Five events by three actors; one payload far longer than a table cell, ending in a marker."""
    ids = [f"rec-{i:04d}" for i in range(60)] + ["LAST-ID"]
    audit.record(workspace.store, "ingest", {"source": "a.jsonl", "new": 3}, actor="alice")
    audit.record(workspace.store, "filter.dedup", {"removed": 1, "ids": ids}, actor="bob")
    audit.record(workspace.store, "filter.pii", {"changed": 0}, actor="bob", model_version="v1")
    audit.record(workspace.store, "filtering", {"n": 1}, actor="carol")
    audit.record(workspace.store, "export", {"format": "sft", "counts": {"train": 2}}, actor="alice")
    return workspace


def test_audit_log_json_has_every_field_and_the_parsed_payload(varied, tmp_path):
    out = tmp_path / "log.json"
    result = _log(varied, "--json", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    events = report["events"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert [(e["actor"], e["action"]) for e in events] == [
        ("alice", "ingest"), ("bob", "filter.dedup"), ("bob", "filter.pii"), ("carol", "filtering"),
        ("alice", "export")]
    assert set(events[0]) == {"seq", "ts", "actor", "action", "model_version", "payload", "hash", "prev_hash"}
    assert events[1]["payload"]["ids"][-1] == "LAST-ID" and len(events[1]["payload"]["ids"]) == 61
    assert events[2]["model_version"] == "v1" and events[0]["model_version"] is None
    assert events[4]["payload"] == {"format": "sft", "counts": {"train": 2}}
    assert events[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:], strict=False))
    assert events[-1]["hash"] == audit.verify(varied.store).head_hash and len(events[-1]["hash"]) == 64
    assert report["filters"] == {"action": [], "actor": [], "limit": 20}


def test_audit_log_filters_by_action_actor_and_limit(varied, tmp_path):
    def seqs(*args: str) -> list[int]:
        out = tmp_path / "log.json"
        result = _log(varied, *args, "--json", str(out))
        assert result.exit_code == 0, result.output
        return [e["seq"] for e in json.loads(out.read_text())["events"]]

    assert seqs("--action", "filter") == [2, 3]  # filter.* but not "filtering"
    assert seqs("--action", "filter.pii", "--action", "export") == [3, 5]
    assert seqs("--actor", "bob") == [2, 3]
    assert seqs("--actor", "alice", "--action", "export") == [5]
    assert seqs("--limit", "2") == [4, 5]
    assert seqs("--limit", "0") == [1, 2, 3, 4, 5]
    assert seqs("--actor", "nobody") == []
    assert "match the filters" in _log(varied, "--actor", "nobody").output
    assert _log(varied, "--limit", "-1").exit_code == 2
    with pytest.raises(InputError, match="positive number"):
        audit.recent_events(varied.store, -3)


def test_audit_log_shows_whole_payloads_and_short_cuts_them(varied, monkeypatch):
    from curate.cli import output

    monkeypatch.setattr(output.console, "width", 80)  # an 80-column terminal (the tests' default is 1,000)
    full = _log(varied, "--action", "filter.dedup")
    assert full.exit_code == 0, full.output
    flat = "".join(full.output.split())
    assert "LAST-ID" in flat and "rec-0000" in flat and "bob" in flat and "filter.dedup" in flat
    assert all(len(line) <= 80 for line in full.output.splitlines())  # wrapped, not cut or overflowing
    short = _log(varied, "--short", "--action", "filter.dedup")
    assert short.exit_code == 0 and "LAST-ID" not in short.output and "…" in short.output


def test_audit_log_json_to_stdout_is_only_json(varied):
    result = _log(varied, "--json", "-", "--actor", "carol")
    assert result.exit_code == 0, result.output
    assert [e["action"] for e in json.loads(result.stdout)["events"]] == ["filtering"]


# --- who is recorded: the real CLI in a subprocess --------------------------------------------------------------

WORDS = {"account": "password login reset email user", "billing": "invoice refund charge paid card",
         "bug": "crash error freeze broken start", "praise": "love great thanks nice dashboard"}


def _texts(path: Path, n: int, tag: str, *, labels: bool = True) -> Path:
    rows = []
    for i in range(n):
        label = sorted(WORDS)[i % 4]
        w = WORDS[label].split()
        row = {"text": f"{w[i % 5]} {w[(i + 2) % 5]} {w[(i + 3) % 5]} ticket {tag} {i}"}
        rows.append({**row, "label": label} if labels else row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _run_as(ws: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "curate", *args, "-w", str(ws)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "CURATE_PASSWORD": "correct-horse-42",
                                                       **(env or {})})
    assert proc.returncode == 0, (args, proc.stderr[-2000:])
    return proc


def _actors(ws: Path) -> list[tuple[str, str]]:
    from curate.store.workspace import Workspace

    store = Workspace.open(ws).store
    try:
        return [(e.action, e.actor) for e in audit.recent_events(store, 0)]
    finally:
        store.dispose()


def test_every_command_records_the_actor_given_with_dash_dash_actor(tmp_path):
    ws = tmp_path / "ws"
    bob = ("--actor", "bob")
    _run_as(ws, *bob, "ingest", str(_texts(tmp_path / "pool.jsonl", 24, "pool")))
    _run_as(ws, *bob, "ingest", str(_texts(tmp_path / "test.jsonl", 8, "test")), "--split", "test")
    _run_as(ws, *bob, "ingest", str(_texts(tmp_path / "cal.jsonl", 8, "cal")), "--split", "calibration")
    _run_as(ws, *bob, "filter", "dedup")
    _run_as(ws, *bob, "users", "add", "ann")
    _run_as(ws, *bob, "loop", "--name", "who", "--rounds", "1", "--batch", "4", "--budget", "4", "--oracle", "label",
            "--min-gain-per-label", "0", "--embedder", "tests.unit.test_loop:bow_encode")
    _run_as(ws, *bob, "export", "--format", "classification", "--out", str(tmp_path / "export"))
    _run_as(ws, "users", "add", "cy", env={"CURATE_ACTOR": "carol"})  # the environment variable works too
    events = _actors(ws)
    actions = {a for a, _ in events}
    assert {"ingest", "filter.dedup", "user.add", "round", "loop.round", "loop.eval", "annotate", "export"} <= actions
    # Answers are the oracle account's (the simulated annotator); everything else is the person who ran it.
    assert {who for a, who in events if a == "annotate"} == {"oracle"}
    assert {who for a, who in events[:-1] if a != "annotate"} == {"bob"}
    assert events[-1] == ("user.add", "carol")


@pytest.mark.models
def test_model_backed_commands_record_the_actor(tmp_path):
    ws = tmp_path / "ws"
    bob = ("--actor", "bob")
    _run_as(ws, *bob, "ingest", str(_texts(tmp_path / "pool.jsonl", 12, "pool", labels=False)))
    _run_as(ws, *bob, "filter", "pii")
    _run_as(ws, *bob, "seed", "--method", "centroids", "-k", "2")
    _run_as(ws, *bob, "score", "--scorer", "novelty")
    _run_as(ws, *bob, "select", "--scorer", "novelty", "-k", "2")
    events = _actors(ws)
    assert [a for a, _ in events] == ["ingest", "filter.pii", "round", "score", "score", "round"]
    assert {who for _, who in events} == {"bob"}


def test_without_actor_the_os_user_is_recorded(tmp_path):
    import pwd

    env = {k: v for k, v in os.environ.items() if k not in ("CURATE_ACTOR", "USER", "LOGNAME", "USERNAME")}
    ws = tmp_path / "ws"
    proc = subprocess.run([sys.executable, "-m", "curate", "ingest", str(_texts(tmp_path / "p.jsonl", 2, "p")),
                           "-w", str(ws)], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert _actors(ws) == [("ingest", pwd.getpwuid(os.getuid()).pw_name)]  # no $USER: the password database
