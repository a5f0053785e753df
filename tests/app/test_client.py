"""curate.client.AnnotationClient against a live app: the README's example as written, every method, every refusal."""

from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from curate.annotate.task_views import display_order
from curate.client import AnnotationClient, AnnotationTask
from curate.errors import AccessError, InputError, MissingDependencyError, TaskStateError
from curate.store import audit
from curate.store.schema import Annotation
from curate.store.workspace import Workspace
from tests.annotation_setup import PASSWORD
from tests.app.conftest import RunningApp, free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The python block between ``<!-- client-example -->`` and ``<!-- /client-example -->`` in README.md."""
    found = re.search(r"<!-- client-example -->\s*```python\n(.*?)```\s*<!-- /client-example -->", README.read_text(),
                      re.S)
    assert found, "README.md has no client example between the markers"
    return found.group(1)


def rows(ws: Workspace) -> list[Any]:
    with ws.store.read() as conn:
        return list(conn.execute(select(Annotation).order_by(Annotation.id)).all())


def client(app: RunningApp, user: str) -> AnnotationClient:
    return AnnotationClient(app.url, user, PASSWORD)


def test_the_readme_example_runs_against_a_live_app(running_app: RunningApp) -> None:
    ws, seeded = running_app.ws, running_app.seeded
    code, n = re.subn(r'^URL, USER, PASSWORD = .*$', f"URL, USER, PASSWORD = {running_app.url!r}, 'ann', {PASSWORD!r}",
                      readme_example(), flags=re.M)
    assert n == 1, "the example must set URL, USER, PASSWORD on one line"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md:client-example", "exec"), {"__name__": "readme_example"})

    stored = rows(ws)
    assert [r.annotator for r in stored] == ["ann"] * 9 and {r.kind for r in stored} == {"answer"}
    assert [r.task_id for r in stored] == [*seeded.rank, *seeded.rewrite, *seeded.label]
    for row in stored[:4]:  # the fuller response is the data's "chosen" one in every seeded pair
        value = orjson.loads(row.value)
        assert value["preferred"] == "chosen" and value["note"] == "the fuller answer"
        assert value["choice"] == "AB"[display_order(row.task_id, 2).index(0)]
    assert [orjson.loads(r.value) for r in stored[4:6]] == [
        {"completion": "The invoice got paid 2 times. Hope this helps!", "accepted_as_is": False},
        {"completion": "Bonjour Hope this helps!", "accepted_as_is": False}]
    assert [orjson.loads(r.value)["label"] for r in stored[6:]] == ["billing"] * 3  # the suggestion, then classes[0]
    lines = printed.getvalue().splitlines()
    assert len(lines) == 9 and lines[0].startswith(f"task {seeded.rank[0]} (rank): answer #")
    assert lines[0].endswith("task open") and lines[-1].endswith("task done")
    assert audit.verify(ws.store).ok


def test_annotator_methods(running_app: RunningApp) -> None:
    ws, seeded = running_app.ws, running_app.seeded
    with client(running_app, "ann") as ann:
        task = ann.next_task()
        assert isinstance(task, AnnotationTask) and task.id == seeded.rank[0]
        assert (task.type, task.answer_form, len(task.responses)) == ("rank", "choice", 2)
        assert task.queue == {"open": 9, "skipped": 0, "done": 0} and task.prompt.startswith("Question 0")
        assert task.data["task_id"] == task.id

        assert ann.skip(task.id) == {"task_id": task.id, "next_task_id": seeded.rank[1]}
        assert ann.get_task(task.id).status == "skipped"

        rewrite = ann.get_task(seeded.rewrite[0])
        assert (rewrite.answer_form, rewrite.completion) == ("rewrite", "The invoice got paid 2 times.")
        typed = {"completion": "The invoice was paid tw", "accepted_as_is": False}
        assert ann.save_draft(rewrite.id, typed) == {"task_id": rewrite.id, "saved": True}
        assert ann.get_task(rewrite.id).draft == typed
        done = ann.submit(rewrite.id, {"accepted_as_is": True}, seconds=7.5)
        assert done["task_status"] == "done" and done["next_task_id"] == seeded.rank[1]

        label = ann.get_task(seeded.label[0])
        assert (label.answer_form, label.classes, label.suggestion) == ("label", ["billing", "bug", "praise"],
                                                                         "billing")
        first = ann.submit(label.id, {"label": "bug"})
        undone = ann.undo()
        assert undone["task_id"] == label.id and isinstance(undone["task"], AnnotationTask)
        assert undone["task"].status == "open" and undone["task"].draft == {"label": "bug"}
        ann.submit(label.id, {"label": "praise"})

    stored = rows(ws)
    assert [(r.kind, r.task_id) for r in stored] == [("answer", seeded.rewrite[0]), ("answer", label.id),
                                                     ("retract", label.id), ("answer", label.id)]
    assert orjson.loads(stored[0].value) == {"completion": "The invoice got paid 2 times.", "accepted_as_is": True}
    assert stored[0].seconds_spent == 7.5 and stored[2].supersedes_id == first["annotation_id"]
    assert orjson.loads(stored[3].value) == {"label": "praise"}


def test_reviewer_and_admin_methods(running_app: RunningApp) -> None:
    ws, seeded = running_app.ws, running_app.seeded
    with client(running_app, "ann") as ann, client(running_app, "bob") as bob:
        ann.submit(seeded.rank[0], {"choice": "A"})
        assert bob.submit(seeded.rank[0], {"choice": "B", "note": "A is vague"})["task_status"] == "disputed"
        candidates = bob.get_task(seeded.candidates[0])
        assert (candidates.answer_form, len(candidates.responses)) == ("order", 3)
        bob.submit(candidates.id, {"order": [2, 0, 1]})
    shown = display_order(seeded.candidates[0], 3)
    assert orjson.loads(rows(ws)[-1].value)["order"] == [shown[2], shown[0], shown[1]]

    with client(running_app, "rita") as rita:
        found = rita.disputes()
        assert [d["task_id"] for d in found] == [seeded.rank[0]]
        assert isinstance(found[0]["view"], AnnotationTask) and found[0]["view"].id == seeded.rank[0]
        assert [(a["annotator"], a["value"]["choice"]) for a in found[0]["answers"]] == [("ann", "A"), ("bob", "B")]
        assert rita.dashboard()["tasks_by_status"]["disputed"] == 1
        decided = rita.adjudicate(seeded.rank[0], {"choice": "A", "note": "A is right"}, seconds=30.0)
        assert decided["task_status"] == "adjudicated" and len(decided["originals"]) == 2
        assert rita.disputes() == []
    row = rows(ws)[-1]
    assert (row.annotator, row.kind, row.seconds_spent) == ("rita", "adjudication", 30.0)

    with client(running_app, "ada") as ada:
        number = ada.hide_suggestions()["round"]
        with client(running_app, "ann") as ann:
            assert ann.get_task(seeded.label[0]).suggestion == "billing"  # the label round is not the latest
            latest = ada.hide_suggestions(ann.get_task(seeded.label[0]).round_number)
            assert latest["hide_suggestions"] is True and latest["round"] != number
            hidden = ann.get_task(seeded.label[0])
            assert hidden.suggestion is None and hidden.suggestions_hidden
    assert audit.verify(ws.store).ok


def test_refusals_are_curate_errors_with_the_servers_message(running_app: RunningApp) -> None:
    seeded = running_app.seeded
    with pytest.raises(AccessError, match="could not log in .* as 'ann': wrong name or password"):
        AnnotationClient(running_app.url, "ann", "wrong-password")
    with pytest.raises(AccessError, match="wrong name or password"):
        AnnotationClient(running_app.url, "nobody", PASSWORD)
    with client(running_app, "ann") as ann:
        with pytest.raises(AccessError, match="task .* is not in ann's queue"):
            ann.get_task(seeded.candidates[0])  # bob's task
        with pytest.raises(AccessError, match="not in ann's queue"):
            ann.submit(seeded.candidates[0], {"order": [0, 1, 2]})
        with pytest.raises(InputError, match="choice must be one of A, B, tie, both_bad; got 'C'"):
            ann.submit(seeded.rank[0], {"choice": "C"})
        with pytest.raises(InputError, match="label must be one of billing, bug, praise"):
            ann.submit(seeded.label[0], {"label": "refund"})
        with pytest.raises(InputError, match="a rewrite needs a non-empty completion"):
            ann.submit(seeded.rewrite[0], {"completion": "  "})
        with pytest.raises(InputError, match="must be a dict"):
            ann.submit(seeded.rank[0], "A")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="cannot be sent as JSON"):
            ann.submit(seeded.rank[0], {"choice": {1, 2}})
        with pytest.raises(InputError, match="no task 0: task ids are whole numbers from 1"):
            ann.get_task(0)
        with pytest.raises(TaskStateError, match="has no submission to undo"):
            ann.undo()
        ann.submit(seeded.rank[0], {"choice": "A"})
        with pytest.raises(TaskStateError, match="already answered by ann; undo it"):
            ann.submit(seeded.rank[0], {"choice": "B"})
        with pytest.raises(AccessError, match="ann is annotator; this needs the reviewer role"):
            ann.disputes()
        with pytest.raises(AccessError, match="needs the admin role"):
            ann.hide_suggestions()
    with pytest.raises(InputError, match="is closed"):
        ann.next_task()
    assert len(rows(running_app.ws)) == 1


def test_an_expired_login_is_renewed_once(running_app: RunningApp, monkeypatch: pytest.MonkeyPatch) -> None:
    skew, logins = [0.0], []
    monkeypatch.setattr("apps.sessions.now", lambda: time.monotonic() + skew[0])
    connect = AnnotationClient._connect
    monkeypatch.setattr(AnnotationClient, "_connect", lambda self: logins.append(self.user) or connect(self))
    with client(running_app, "ann") as ann:
        assert ann.next_task() is not None
        skew[0] += 13 * 3600  # past the 12-hour session: the server refuses it before doing anything
        assert ann.submit(running_app.seeded.rank[0], {"choice": "A"})["task_status"] == "open"
    assert logins == ["ann", "ann"] and len(rows(running_app.ws)) == 1


def test_nothing_listening_and_missing_gradio_client(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="nothing answers at http://127.0.0.1:.*curate app"):
        AnnotationClient(f"http://127.0.0.1:{free_port()}", "ann", PASSWORD, timeout=5)
    monkeypatch.setitem(sys.modules, "gradio_client", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'curate\[app\]'"):
        AnnotationClient("http://127.0.0.1:1", "ann", PASSWORD)


def test_a_call_cut_off_by_the_app_dying_is_a_clear_error(running_app: RunningApp) -> None:
    """gradio_client cancels a call whose stream breaks (the app killed mid-call): a CancelledError with no
    message. It reads as the lost connection it is."""
    import concurrent.futures

    with client(running_app, "ann") as ann:
        real = ann._client

        class Cut:  # the real client's predict, cut off as when the server dies mid-call
            def predict(self, *args: object, **kwargs: object) -> object:
                raise concurrent.futures.CancelledError()

        ann._client = Cut()  # type: ignore[assignment]
        with pytest.raises(InputError, match="lost the connection to .* \\(CancelledError\\); is the app still"):
            ann.next_task()
        ann._client = real
