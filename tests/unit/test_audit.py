"""The audit chain: intact logs verify; direct database tampering of each kind is detected and named."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from curate.errors import AuditError
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
