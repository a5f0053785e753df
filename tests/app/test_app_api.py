"""The annotation app's named API endpoints, called in-process with gradio_client as each kind of user."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import orjson
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from sqlalchemy import select

from apps.annotate import launch_app
from apps.annotate_views import diff_html, restore
from apps.dashboard import newest_learning_curve
from curate.annotate.answers import final_annotations
from curate.annotate.task_views import display_order
from curate.errors import AccessError
from curate.store import audit
from curate.store.schema import Annotation, LabelSchema, Task
from curate.store.workspace import Workspace
from tests.annotation_setup import PASSWORD, seed
from tests.app.conftest import RunningApp, free_port


def call(client: Client, endpoint: str, *args: Any) -> Any:
    return client.predict(*args, api_name=f"/{endpoint}")


def answer(client: Client, task_id: int, value: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
    return call(client, "submit", task_id, json.dumps(value), seconds)


def annotations(ws: Workspace) -> list[Any]:
    with ws.store.read() as conn:
        return list(conn.execute(select(Annotation).order_by(Annotation.id)).all())


def task_row(ws: Workspace, task_id: int) -> Any:
    with ws.store.read() as conn:
        return conn.execute(select(Task).where(Task.id == task_id)).one()


def preferred(task_id: int, choice: str) -> str:
    """What a displayed letter means in the record (the display order is shuffled per task)."""
    if choice not in ("A", "B"):
        return choice
    return ["chosen", "rejected"][display_order(task_id, 2)["AB".index(choice)]]


def test_refuses_to_launch_without_accounts(workspace: Workspace) -> None:
    with pytest.raises(AccessError, match="curate users add NAME --role admin"):
        launch_app(workspace, port=free_port(), prevent_thread_lock=True, quiet=True)


def test_logins_are_required(running_app: RunningApp) -> None:
    url = running_app.url
    with pytest.raises(Exception, match="credentials were not provided"):
        Client(url, verbose=False, analytics_enabled=False)
    for name, password in (("ann", "wrong-password"), ("nobody", PASSWORD), ("ann", "")):
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=(name, password), verbose=False, analytics_enabled=False)
    # Raw HTTP without the session cookie: every way into a handler is refused.
    for path, body in (("gradio_api/call/next_task", {"data": []}),
                       ("gradio_api/call/submit", {"data": [1, '{"choice": "A"}', None]}),
                       ("gradio_api/queue/join", {"data": [], "fn_index": 0, "session_hash": "x"}),
                       ("gradio_api/run/dashboard", {"data": []})):
        assert httpx.post(url + path, json=body, timeout=10).status_code == 401, path
    assert httpx.get(url + "config", timeout=10).status_code == 401
    assert annotations(running_app.ws) == []


def test_annotator_answers_every_task_type(running_app: RunningApp) -> None:
    ws, seeded, ann = running_app.ws, running_app.seeded, running_app.login("ann")
    view = call(ann, "next_task")
    assert view["task_id"] == seeded.rank[0] and view["type"] == "rank" and len(view["responses"]) == 2
    assert view["queue"] == {"open": 9, "skipped": 0, "done": 0}
    choices = ["A", "B", "tie", "both_bad"]
    for task_id, choice in zip(seeded.rank, choices, strict=True):
        done = answer(ann, task_id, {"choice": choice, "note": f"note {choice}"}, 12.5)
        assert done["task_status"] == "open"  # bob (overlap) has not answered yet
    assert done["next_task_id"] == seeded.rewrite[0]
    rewrite = call(ann, "get_task", seeded.rewrite[0])
    assert rewrite["completion"] == "The invoice got paid 2 times."
    answer(ann, seeded.rewrite[0], {"completion": "The invoice was paid twice.", "accepted_as_is": False})
    answer(ann, seeded.rewrite[1], {"completion": "", "accepted_as_is": True})
    label = call(ann, "next_task")
    assert label["task_id"] == seeded.label[0] and label["classes"] == ["billing", "bug", "praise"]
    assert (label["suggestion"], label["confidence"]) == ("billing", 0.83)
    assert answer(ann, seeded.label[0], {"label": "billing"})["task_status"] == "done"

    rows = annotations(ws)
    assert [r.annotator for r in rows] == ["ann"] * 7 and {r.kind for r in rows} == {"answer"}
    for row, choice in zip(rows[:4], choices, strict=True):
        assert orjson.loads(row.value) == {"choice": choice, "preferred": preferred(row.task_id, choice),
                                           "note": f"note {choice}"}
        assert row.seconds_spent == 12.5
    assert orjson.loads(rows[4].value) == {"completion": "The invoice was paid twice.", "accepted_as_is": False}
    assert orjson.loads(rows[5].value) == {"completion": "Bonjour", "accepted_as_is": True}
    assert orjson.loads(rows[6].value) == {"label": "billing"}
    assert rows[4].seconds_spent is not None and rows[4].seconds_spent >= 0  # measured on the server
    with ws.store.read() as conn:
        topic = conn.scalar(select(LabelSchema.id).where(LabelSchema.name == "topic"))
    for row in rows:
        task = task_row(ws, row.task_id)
        assert (row.round_id, row.strategy_key, row.acquisition_score, row.random_mix, row.label_schema_id) == (
            task.round_id, task.strategy_key, task.acquisition_score, bool(task.random_mix), task.label_schema_id)
    assert rows[0].strategy_key == "demo-rank" and rows[6].label_schema_id == topic
    assert audit.verify(ws.store).ok


def test_draft_is_kept_across_sessions(running_app: RunningApp) -> None:
    seeded, ann = running_app.seeded, running_app.login("ann")
    typed = {"completion": "The invoice was paid tw", "accepted_as_is": False}
    assert call(ann, "save_draft", seeded.rewrite[0], json.dumps(typed)) == {"task_id": seeded.rewrite[0],
                                                                              "saved": True}
    assert call(ann, "get_task", seeded.rewrite[0])["draft"] == typed
    reloaded = Client(running_app.url, auth=("ann", PASSWORD), verbose=False, analytics_enabled=False)
    try:
        assert call(reloaded, "get_task", seeded.rewrite[0])["draft"] == typed
    finally:
        reloaded.close()
    with pytest.raises(AppError, match="not in ann's queue"):
        call(ann, "save_draft", seeded.candidates[0], json.dumps({"order_shown": [0]}))


def test_undo_then_resubmit(running_app: RunningApp) -> None:
    ws, seeded, ann = running_app.ws, running_app.seeded, running_app.login("ann")
    first = answer(ann, seeded.label[0], {"label": "billing"})
    undone = call(ann, "undo")
    assert undone["task_id"] == seeded.label[0]
    assert undone["task"]["status"] == "open" and undone["task"]["draft"] == {"label": "billing"}
    second = answer(ann, seeded.label[0], {"label": "bug"})
    rows = annotations(ws)
    assert [(r.kind, r.supersedes_id) for r in rows] == [("answer", None), ("retract", first["annotation_id"]),
                                                        ("answer", first["annotation_id"])]
    assert rows[2].id == second["annotation_id"]
    with ws.store.read() as conn:
        assert orjson.loads(final_annotations(conn)[seeded.label[0]].value) == {"label": "bug"}
    with pytest.raises(AppError, match="bob has no submission to undo"):
        call(running_app.login("bob"), "undo")
    assert audit.verify(ws.store).ok


def test_refusals(running_app: RunningApp) -> None:
    ws, seeded = running_app.ws, running_app.seeded
    ann, rita = running_app.login("ann"), running_app.login("rita")
    candidates = seeded.candidates[0]  # bob's task
    with pytest.raises(AppError, match="not in ann's queue"):
        call(ann, "get_task", candidates)
    with pytest.raises(AppError, match="not in ann's queue"):
        answer(ann, candidates, {"order": [0, 1, 2]})
    answer(ann, seeded.rank[0], {"choice": "A"})
    with pytest.raises(AppError, match="already answered"):
        answer(ann, seeded.rank[0], {"choice": "B"})
    with pytest.raises(AppError, match="already answered"):
        call(ann, "skip", seeded.rank[0])
    with pytest.raises(AppError, match="needs the reviewer role"):
        call(ann, "adjudicate", seeded.rank[0], json.dumps({"choice": "A"}), None)
    with pytest.raises(AppError, match="needs the reviewer role"):
        call(ann, "disputes")
    with pytest.raises(AppError, match="needs the reviewer role"):
        call(ann, "dashboard")
    with pytest.raises(AppError, match="needs the admin role"):
        call(rita, "hide_suggestions", None, True)
    with pytest.raises(AppError, match="not in rita's queue"):
        answer(rita, seeded.rank[1], {"choice": "A"})
    with pytest.raises(AppError, match="not disputed"):
        call(rita, "adjudicate", seeded.rank[1], json.dumps({"choice": "A"}), None)
    with pytest.raises(AppError, match="JSON object"):
        call(ann, "submit", seeded.rank[1], "{not json", None)
    with pytest.raises(AppError, match="choice must be one of"):
        answer(ann, seeded.rank[1], {"choice": "C"})
    with pytest.raises(AppError, match="label must be one of"):
        answer(ann, seeded.label[0], {"label": "refund"})
    assert len(annotations(ws)) == 1 and audit.verify(ws.store).ok


def test_skip_moves_a_task_to_the_end(running_app: RunningApp) -> None:
    seeded, ann = running_app.seeded, running_app.login("ann")
    assert call(ann, "skip", seeded.rank[0]) == {"task_id": seeded.rank[0], "next_task_id": seeded.rank[1]}
    view = call(ann, "next_task")
    assert view["task_id"] == seeded.rank[1] and view["queue"]["skipped"] == 1
    assert call(ann, "get_task", seeded.rank[0])["status"] == "skipped"


def test_disagreement_is_adjudicated(running_app: RunningApp) -> None:
    ws, seeded = running_app.ws, running_app.seeded
    ann, bob, rita = (running_app.login(n) for n in ("ann", "bob", "rita"))
    first = answer(ann, seeded.rank[0], {"choice": "A"})
    second = answer(bob, seeded.rank[0], {"choice": "B", "note": "A is vague"})
    assert second["task_status"] == "disputed"
    answer(ann, seeded.rank[1], {"choice": "B"})
    assert answer(bob, seeded.rank[1], {"choice": "B"})["task_status"] == "done"
    cands = call(bob, "get_task", seeded.candidates[0])
    assert len(cands["responses"]) == 3
    answer(bob, seeded.candidates[0], {"order": [2, 0, 1]})
    shown = display_order(seeded.candidates[0], 3)
    assert orjson.loads(annotations(ws)[-1].value)["order"] == [shown[2], shown[0], shown[1]]

    found = call(rita, "disputes")
    assert [d["task_id"] for d in found] == [seeded.rank[0]]
    assert [(a["annotator"], a["value"]["choice"]) for a in found[0]["answers"]] == [("ann", "A"), ("bob", "B")]
    assert found[0]["view"]["prompt"].startswith("Question 0")
    report = call(rita, "dashboard")
    assert report["agreement"]["rank"]["pairs"][0]["items"] == 2
    assert report["tasks_by_status"]["disputed"] == 1

    decided = call(rita, "adjudicate", seeded.rank[0], json.dumps({"choice": "A", "note": "A is right"}), 30.0)
    assert decided["task_status"] == "adjudicated"
    assert decided["originals"] == sorted([first["annotation_id"], second["annotation_id"]])
    row = annotations(ws)[-1]
    assert (row.annotator, row.kind, row.seconds_spent) == ("rita", "adjudication", 30.0)
    assert orjson.loads(row.adjudicates) == decided["originals"]
    assert orjson.loads(row.value)["preferred"] == preferred(seeded.rank[0], "A")
    assert call(rita, "disputes") == []
    assert audit.verify(ws.store).ok


def test_hide_suggestions(running_app: RunningApp) -> None:
    seeded, ann, ada = running_app.seeded, running_app.login("ann"), running_app.login("ada")
    view = call(ann, "get_task", seeded.label[0])
    assert view["suggestion"] == "billing" and not view["suggestions_hidden"]
    assert call(ada, "hide_suggestions", view["round_number"], True) == {"round": view["round_number"],
                                                                         "hide_suggestions": True}
    hidden = call(ann, "get_task", seeded.label[0])
    assert hidden["suggestion"] is None and hidden["confidence"] is None and hidden["suggestions_hidden"]
    call(ada, "hide_suggestions", view["round_number"], False)
    assert call(ann, "get_task", seeded.label[0])["suggestion"] == "billing"


def test_non_loopback_host_warns(workspace: Workspace, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    seed(workspace, tmp_path)
    demo, _ = launch_app(workspace, host="0.0.0.0", port=free_port(), prevent_thread_lock=True, quiet=True)
    demo.close()
    assert "unencrypted" in capsys.readouterr().err


def test_newest_learning_curve(tmp_path) -> None:
    ws = Workspace.open(tmp_path / "ws", "sqlite:///" + str(tmp_path / "unused.db"))
    assert newest_learning_curve(ws) is None
    reports = ws.reports_dir
    for i, name in enumerate(("learning_curve_round1.png", "learning_curve.png")):
        (reports / name).write_bytes(b"png")
        os.utime(reports / name, (1_000_000 + i, 1_000_000 + i))
    assert newest_learning_curve(ws) == reports / "learning_curve.png"


def test_views_escape_and_restore() -> None:
    assert diff_html("paid 2 times", "paid <b>twice</b>") == (
        '<div class="diff">paid <del>2 times</del><ins>&lt;b&gt;twice&lt;/b&gt;</ins></div>')
    shown = display_order(7, 3)
    view = {"task_id": 7, "type": "rank", "responses": ["x", "y", "z"], "classes": [], "completion": "",
            "draft": {"order": [shown[1], shown[0], shown[2]], "note": "n"}}  # an undone answer: record indices
    assert restore(view) == ("", "2 > 1 > 3", "n", "")
    view["draft"] = {"order_shown": [2, 1, 0], "note": ""}  # typed in the app: display positions
    assert restore(view)[1] == "3 > 2 > 1"
