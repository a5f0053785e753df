"""Tamper evidence: rows edited, deleted, inserted or reordered directly in the database (the append-only triggers
dropped first, as an attacker with database access would) make ``curate audit verify`` fail and name the problem.

The workspace first sees real activity through the library the app calls: answers from two annotators, a
disagreement, an undo and a new answer, and a reviewer's adjudication (the last event). The hash chain catches
edits to the audit log itself; the annotation cross-check (:mod:`curate.store.audit_links`) catches edits to the
annotations table, which the chain alone cannot see, and a deleted last event, whose annotation is left without
one.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from curate.annotate import answers as A
from curate.annotate.relabel import migrate_schema
from curate.cli.main import app
from curate.rounds.assignment import add_label_schema
from curate.store import audit
from curate.store.schema import Annotation, AuditEvent
from curate.store.workspace import Workspace
from tests.annotation_setup import Seeded, seed
from tests.conftest import PG_URL, admin_execute, drop_append_only_guards


@dataclass
class Activity:
    """Ids of what :func:`_activity` stored."""

    seeded: Seeded
    label_answer: int  # ann's current answer to label[0] (after an undo and a new answer)
    candidates_answer: int  # bob's answer to the candidates task
    rank_answers: tuple[int, int]  # ann's and bob's disagreeing answers to rank[0]
    adjudication: int  # rita's decision on rank[0]: the last audit event


def _activity(ws: Workspace, tmp_path: Path) -> Activity:
    s = seed(ws, tmp_path)
    store = ws.store
    A.submit(store, "ann", s.label[0], {"label": "billing"})
    A.undo_last(store, "ann")
    label = A.submit(store, "ann", s.label[0], {"label": "bug"}).annotation_id
    A.submit(store, "ann", s.rewrite[0], {"completion": "The invoice was paid twice.", "accepted_as_is": False})
    cands = A.submit(store, "bob", s.candidates[0], {"order": [2, 0, 1]}).annotation_id
    first = A.submit(store, "ann", s.rank[0], {"choice": "A"}).annotation_id
    second = A.submit(store, "bob", s.rank[0], {"choice": "B", "note": "A is vague"})
    assert second.task_status == "disputed"
    decided = A.adjudicate(store, "rita", s.rank[0], {"choice": "A", "note": "A is right"}).annotation_id
    return Activity(s, label, cands, (first, second.annotation_id), decided)


@dataclass
class Base:
    """The workspace after :func:`_activity`, kept untouched; each test tampers with a copy of its database."""

    kind: str
    url: str
    act: Activity
    head: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Base]:
    """Real activity, once per database kind (verified intact through the CLI), as a template to copy."""
    folder = tmp_path_factory.mktemp(f"tamper-{request.param}")
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'base.db'}"
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL variant: set CURATE_TEST_PG_URL (.ci/run starts a local server and sets it)")
        admin_url = make_url(PG_URL).set(drivername="postgresql+psycopg")
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        name = f"curate_tamper_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
    ws = Workspace.open(folder / "ws", url)
    act = _activity(ws, folder)
    report = audit.verify(ws.store)
    assert report.ok and report.annotation_problems == [], report.as_dict()
    ws.store.dispose()  # a template must have no open connections
    yield Base(request.param, url, act, report.head_hash)
    if admin is not None:
        admin_execute(admin, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def copied(base: Base, tmp_path: Path) -> Iterator[Workspace]:
    """A fresh copy of the base workspace's database (a file copy, or ``CREATE DATABASE ... TEMPLATE``)."""
    if base.kind == "sqlite":
        source = Path(make_url(base.url).database or "")
        for part in source.parent.glob(source.name + "*"):
            shutil.copy(part, tmp_path / part.name.replace(source.stem, "copy", 1))
        url = f"sqlite:///{tmp_path / 'copy.db'}"
        admin = None
    else:
        admin = create_engine(make_url(base.url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        name, template = f"curate_tamper_{uuid.uuid4().hex[:12]}", make_url(base.url).database
        # a template must have no other sessions: end ours (a superuser's autovacuum worker is waited out)
        admin_execute(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db "
                             "AND usename = current_user AND pid <> pg_backend_pid()", {"db": template})
        admin_execute(admin, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        url = make_url(base.url).set(database=name).render_as_string(hide_password=False)
    ws = Workspace.open(tmp_path / "ws", url)
    yield ws
    ws.store.dispose()
    if admin is not None:
        admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _verify(ws: Workspace, tmp_path: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    """``curate audit verify`` through the CLI: exit code, printed text (one line), JSON report."""
    out = tmp_path / "verify.json"
    result = CliRunner().invoke(app, ["audit", "verify", "-w", str(ws.root), "--db", ws.store.url, "--json", str(out),
                                      *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split()), json.loads(out.read_text())


def _sql(ws: Workspace, *statements: str, **params: Any) -> None:
    with ws.store.write() as conn:
        for sql in statements:
            conn.execute(text(sql), params)


def _event_of(ws: Workspace, annotation_id: int) -> Any:
    with ws.store.read() as conn:
        for ev in conn.execute(select(AuditEvent).where(AuditEvent.action.in_(("annotate", "adjudicate")))):
            if json.loads(ev.payload).get("annotation_id") == annotation_id:
                return ev
    raise AssertionError(f"no event for annotation {annotation_id}")


def _edit_value(ws: Workspace, act: Activity) -> None:
    _sql(ws, "UPDATE annotations SET value = :v WHERE id = :i", v='{"label":"praise"}', i=act.label_answer)


def _delete_annotation(ws: Workspace, act: Activity) -> None:
    _sql(ws, "DELETE FROM annotations WHERE id = :i", i=act.candidates_answer)


def _insert_forged(ws: Workspace, act: Activity) -> None:
    _sql(ws, "INSERT INTO annotations (task_id, annotator, value, kind, created_at) "
             "VALUES (:t, 'ann', :v, 'answer', '2026-01-01T00:00:00+00:00')",
         t=act.seeded.rewrite[1], v='{"completion":"forged","accepted_as_is":false}')


def _edit_payload(ws: Workspace, act: Activity) -> None:
    ev = _event_of(ws, act.label_answer)
    payload = {**json.loads(ev.payload), "value_sha256": "0" * 64}
    _sql(ws, "UPDATE audit_events SET payload = :p WHERE seq = :s", p=json.dumps(payload, sort_keys=True), s=ev.seq)


def _delete_last_event(ws: Workspace, act: Activity) -> None:
    _sql(ws, "DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)")


def _swap_payloads(ws: Workspace, act: Activity) -> None:
    first, second = (_event_of(ws, i) for i in act.rank_answers)
    _sql(ws, "UPDATE audit_events SET payload = :p WHERE seq = :s", p=second.payload, s=first.seq)
    _sql(ws, "UPDATE audit_events SET payload = :p WHERE seq = :s", p=first.payload, s=second.seq)


def _problems(report: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(p["problem"], p["annotation_id"]) for p in report["annotation_problems"]]


def _seq_of(ws: Workspace, annotation_id: int) -> int:
    return int(_event_of(ws, annotation_id).seq)


Tamper = Callable[[Workspace, Activity], None]


@pytest.mark.parametrize("tamper", [_edit_value, _delete_annotation, _insert_forged, _edit_payload,
                                    _delete_last_event, _swap_payloads], ids=lambda f: f.__name__.strip("_"))
def test_direct_database_tampering_is_named(base: Base, copied: Workspace, tmp_path: Path, tamper: Tamper) -> None:
    workspace, act, head = copied, base.act, base.head
    code, said, _ = _verify(workspace, tmp_path)
    assert code == 0 and "audit log intact" in said and "every annotation matches its event" in said, said
    seqs = {i: _seq_of(workspace, i) for i in act.rank_answers + (act.label_answer,)}
    drop_append_only_guards(workspace.store)
    tamper(workspace, act)
    code, said, report = _verify(workspace, tmp_path)
    assert code == 1 and not report["ok"], said
    name = tamper.__name__
    if name == "_edit_value":  # invisible to the chain; the cross-check names the row and its event
        assert report.get("problem") is None
        assert _problems(report) == [("value-mismatch", act.label_answer)]
        assert (f"annotation #{act.label_answer} (answer by ann on task {act.seeded.label[0]}) was edited: its value "
                "no longer matches") in said
    elif name == "_delete_annotation":
        assert report.get("problem") is None
        assert _problems(report) == [("missing-annotation", act.candidates_answer)]
        assert f"annotation #{act.candidates_answer} (answer by bob on task {act.seeded.candidates[0]}) was deleted" \
            in said
    elif name == "_insert_forged":
        assert report.get("problem") is None
        [(problem, forged)] = _problems(report)
        assert problem == "unaudited" and forged is not None and forged > act.adjudication
        assert f"annotation #{forged} (answer by ann on task {act.seeded.rewrite[1]}) has no audit event" in said
    elif name == "_edit_payload":  # the chain names the edited event; the cross-check the row it now disagrees with
        assert (report["problem"], report["seq"]) == ("edited", seqs[act.label_answer])
        assert f"event #{seqs[act.label_answer]} (annotate by ann" in said and "was edited" in said
        assert _problems(report) == [("value-mismatch", act.label_answer)]
    elif name == "_delete_last_event":  # the chain alone still verifies: the decision left without its event tells
        assert report.get("problem") is None and report["events"] == report["head_seq"]
        assert _problems(report) == [("unaudited", act.adjudication)]
        assert f"annotation #{act.adjudication} (adjudication by rita on task {act.seeded.rank[0]}) has no audit " \
               "event" in said
        code, said, report = _verify(workspace, tmp_path, "--expect-head", head)
        assert code == 1 and report["problem"] == "head-mismatch"
    else:  # swapped payloads: both events fail their hashes; each row is now named by the other person's event
        assert report["problem"] == "edited" and report["seq"] == min(seqs[i] for i in act.rank_answers)
        assert report["edited_events"] == sorted(seqs[i] for i in act.rank_answers)
        assert _problems(report) == [("record-mismatch", i) for i in act.rank_answers]
        assert (f"annotation #{act.rank_answers[0]} (answer by ann on task {act.seeded.rank[0]}) does not match its "
                f"audit event: its annotator is 'ann' but event #{seqs[act.rank_answers[1]]} recorded 'bob'") in said


def test_schema_migration_copies_verify_and_their_tampering_is_named(workspace: Workspace, tmp_path: Path) -> None:
    """Copies made by ``curate schema migrate`` have no event of their own: they verify when they add up to the
    migration's recorded totals, and a deleted or forged copy breaks the count."""
    s = seed(workspace, tmp_path)
    for task_id, label in zip(s.label, ("billing", "bug", "praise"), strict=True):
        A.submit(workspace.store, "ann", task_id, {"label": label})
    add_label_schema(workspace.store, "topic", ["billing", "technical", "feedback"], "v2")
    moved = migrate_schema(workspace.store, "topic", {"bug": "technical"})
    assert (moved["migrated"], moved["relabel"]) == (2, 1)
    code, said, _ = _verify(workspace, tmp_path)
    assert code == 0, said
    with workspace.store.read() as conn:
        copies = conn.execute(select(Annotation.id, Annotation.value).where(Annotation.supersedes_id.is_not(None),
                                                                             Annotation.kind == "answer")).all()
    billing = next(int(c.id) for c in copies if "billing" in c.value)
    technical = next(int(c.id) for c in copies if "technical" in c.value)
    drop_append_only_guards(workspace.store)
    _sql(workspace, "DELETE FROM annotations WHERE id = :i", i=billing)
    code, said, report = _verify(workspace, tmp_path)
    assert code == 1 and _problems(report) == [("migration-mismatch", None)]
    assert "schema topic: 0 annotation(s) copied as billing -> billing by migration" in said and "record 1" in said
    # every copy gone (no row without an event is left): the recorded totals still do not add up
    drop_append_only_guards(workspace.store)  # opening the workspace (the CLI did) puts the triggers back
    with workspace.store.write() as conn:
        conn.execute(text("DELETE FROM annotations WHERE supersedes_id IS NOT NULL AND id <> :i"), {"i": technical})
        conn.execute(text("DELETE FROM annotations WHERE id = :i"), {"i": technical})
    code, said, report = _verify(workspace, tmp_path)
    assert code == 1 and {p for p, _ in _problems(report)} == {"migration-mismatch"}


def test_cross_check_reads_each_table_once(workspace: Workspace, tmp_path: Path) -> None:
    """One pass over the annotations and one over the annotation events, whatever their number."""
    from sqlalchemy import event

    from curate.store.audit_links import verify_annotations

    _activity(workspace, tmp_path)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(workspace.store.engine, "before_cursor_execute", count)
    try:
        assert verify_annotations(workspace.store) == []
    finally:
        event.remove(workspace.store.engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len([s for s in selects if "FROM annotations" in s]) == 1
    assert len([s for s in selects if "FROM audit_events" in s]) == 1


def test_a_replayed_event_is_named(base: Base, copied: Workspace, tmp_path: Path) -> None:
    """A well-formed event appended to the chain for an answer that already has one: the chain verifies, the
    cross-check does not."""
    original = json.loads(_event_of(copied, base.act.label_answer).payload)
    audit.record(copied.store, "annotate", original, actor="ann")
    code, said, report = _verify(copied, tmp_path)
    assert code == 1 and report.get("problem") is None
    assert _problems(report) == [("duplicate-event", base.act.label_answer)]
    assert f"annotation #{base.act.label_answer} (answer by ann on task {base.act.seeded.label[0]}) is named by 2 " \
           "audit events" in said
