"""Access control, proved through the running app's HTTP API (raw requests and ``gradio_client``), on both databases.

- Without a login every API endpoint, UI event and data route is refused (401) and nothing is written.
- An annotator cannot read or write another annotator's task, cannot reach reviewer or admin functions (named
  API or UI events called by index, as a browser would) and never sees PII in clear, whether it was redacted at
  ingest or only flagged.
- Passwords are stored as scrypt hashes (parameters and a per-account salt in the stored string); no password,
  right or wrong, appears anywhere in the database or the audit log.
- Sessions expire: after ``session_ttl`` the same client is refused with "session expired: log in again" by
  every handler (named API and UI events) and as logged out on every other route; its token is dropped from
  Gradio's store after a grace period; logging in again works. A disabled account is refused at its next call
  and all of its sessions end.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select, text

from apps.sessions import DISABLED, EXPIRED, GRACE_SECONDS
from curate.errors import InputError
from curate.ingest.sources import ingest
from curate.rounds.assignment import assign_round
from curate.rounds.tasks import create_round
from curate.store.accounts import deactivate_user, verify_password
from curate.store.schema import Annotation, AuditEvent, Draft, RecordRow, Task, User
from curate.store.workspace import Workspace
from tests.annotation_setup import PASSWORD, USERS, seed
from tests.reliability.conftest import ui_call

pytest.importorskip("gradio_client", reason="the app tests need gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

ENDPOINTS = ("next_task", "get_task", "save_draft", "submit", "skip", "undo", "disputes", "adjudicate", "dashboard",
             "hide_suggestions")
WRONG_PASSWORD = "wrong-horse-99-guess"
REDACTED = {"email": "maria.kovalenko@example-mail.com", "phone": "+1 (415) 555-0137", "aws": "AKIAIOSFODNN7EXAMPLE"}
FLAGGED = {"email": "lena.berg@example-mail.com", "phone": "+1 (415) 555-0199", "card": "4111 1111 1111 1111"}
TTL = 600.0  # seconds; the test moves the session clock past it


def call(client: Any, endpoint: str, *args: Any) -> Any:
    return client.predict(*args, api_name=f"/{endpoint}")


def _state(ws: Workspace) -> tuple[int, int, int]:
    """(annotations, drafts, audit events): what a refused call must leave unchanged."""
    with ws.store.read() as conn:
        a, d, e = (int(conn.scalar(select(func.count()).select_from(t)) or 0) for t in (Annotation, Draft, AuditEvent))
    return a, d, e


def test_logins_are_required_and_passwords_are_stored_as_scrypt_hashes(workspace: Workspace, tmp_path: Path,
                                                                        serve) -> None:
    seeded = seed(workspace, tmp_path)
    served = serve()
    _strangers_are_refused(served, seeded)
    _passwords_are_hashed(served)


def test_annotator_is_confined_to_their_own_queue_and_role(workspace: Workspace, tmp_path: Path, serve) -> None:
    seeded = seed(workspace, tmp_path)
    served = serve()
    _cannot_touch_another_annotators_tasks(served, seeded)
    _cannot_reach_reviewer_or_admin_functions(served, seeded)


def _strangers_are_refused(served: Any, seeded: Any) -> None:
    """Without a login (or with a forged token) every endpoint, UI event and data route answers 401."""
    workspace, url = served.ws, served.url
    named = served.login("ann").view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {f"/{e}" for e in ENDPOINTS} <= set(named)
    before = _state(workspace)
    bodies = {"submit": [seeded.label[0], '{"label": "bug"}', None], "save_draft": [seeded.label[0], "{}"],
              "get_task": [seeded.label[0]], "skip": [seeded.label[0]], "hide_suggestions": [None, True],
              "adjudicate": [seeded.rank[0], '{"choice": "A"}', None]}
    forged = {name: "forged-token-value" for name in served.clients[0].cookies}
    with httpx.Client(base_url=url, timeout=20) as http:
        for cookies in (None, forged):
            http.cookies.clear()
            http.cookies.update(cookies or {})
            for api_name in named:
                name = api_name.strip("/")
                for path in (f"call/{name}", f"call/v2/{name}", f"run/{name}", f"api/{name}"):
                    got = http.post(f"gradio_api/{path}", json={"data": bodies.get(name, [])})
                    assert got.status_code == 401, (path, cookies, got.status_code, got.text[:200])
            for method, path in (("POST", "gradio_api/queue/join"), ("GET", "gradio_api/queue/data?session_hash=x"),
                                 ("GET", "config"), ("GET", "gradio_api/info"), ("GET", "gradio_api/openapi.json"),
                                 ("GET", "gradio_api/call/submit/some-event"), ("GET", "gradio_api/file=/etc/hostname"),
                                 ("POST", "gradio_api/upload"), ("POST", "gradio_api/component_server"),
                                 ("GET", "gradio_api/login_check")):
                got = http.request(method, path, json={"data": [], "fn_index": 0, "session_hash": "x"})
                assert got.status_code == 401, (method, path, cookies, got.status_code)
    # The browser's own events (called by index) are refused at the door too.
    for handler in ("on_load", "render", "revisit", "do_submit"):
        refused = ui_call(url, {}, served.fn_index(handler), [])
        assert isinstance(refused, httpx.Response) and refused.status_code == 401, handler
    wrong = httpx.post(url + "login", data={"username": "ann", "password": WRONG_PASSWORD}, timeout=20)
    assert wrong.status_code == 400 and not wrong.cookies
    assert _state(workspace) == before


def _cannot_touch_another_annotators_tasks(served: Any, seeded: Any) -> None:
    """get_task / save_draft / submit / skip on bob's task as ann, and ann's undo, leave bob's work alone."""
    workspace = served.ws
    ann, bob = served.login("ann"), served.login("bob")
    bobs = seeded.candidates[0]  # in bob's queue only
    before = _state(workspace)
    for endpoint, args in (("get_task", (bobs,)), ("save_draft", (bobs, json.dumps({"order_shown": [0, 1, 2]}))),
                           ("submit", (bobs, json.dumps({"order": [0, 1, 2]}), None)), ("skip", (bobs,))):
        with pytest.raises(AppError, match="not in ann's queue"):
            call(ann, endpoint, *args)
    assert _state(workspace) == before
    done = call(bob, "submit", bobs, json.dumps({"order": [2, 0, 1]}), None)
    with pytest.raises(AppError, match="ann has no submission to undo"):  # undo acts on one's own answers only
        call(ann, "undo")
    assert call(bob, "get_task", bobs)["status"] == "done"
    with workspace.store.read() as conn:
        rows = conn.execute(select(Annotation.id, Annotation.annotator, Annotation.kind)).all()
    assert [tuple(r) for r in rows] == [(done["annotation_id"], "bob", "answer")]


def _cannot_reach_reviewer_or_admin_functions(served: Any, seeded: Any) -> None:
    """Dashboard, disputes, adjudicate (reviewer) and hide_suggestions (admin): named API and UI events."""
    workspace = served.ws
    ann, rita = served.login("ann"), served.login("rita")
    call(ann, "submit", seeded.rank[0], '{"choice": "A"}', None)
    call(served.login("bob"), "submit", seeded.rank[0], '{"choice": "B"}', None)  # now disputed
    before = _state(workspace)
    for endpoint, args in (("dashboard", ()), ("disputes", ()),
                           ("adjudicate", (seeded.rank[0], '{"choice": "A"}', None))):
        with pytest.raises(AppError, match="ann is annotator; this needs the reviewer role"):
            call(ann, endpoint, *args)
    for who in (ann, rita):
        with pytest.raises(AppError, match="needs the admin role"):
            call(who, "hide_suggestions", None, True)
    # The same functions behind the UI's events, called by index as a browser would.
    for handler, data, needs in (("render", [], "reviewer"), ("revisit", [], "reviewer"),
                                 ("set_hidden", [None, True], "admin")):
        refused = ui_call(served.url, ann.cookies, served.fn_index(handler), data)
        assert isinstance(refused, dict) and refused["success"] is False, handler
        assert f"needs the {needs} role" in refused["output"]["error"], refused
    assert call(ann, "get_task", seeded.label[0])["suggestion"] == "billing"  # not hidden
    assert _state(workspace) == before
    assert [d["task_id"] for d in call(rita, "disputes")] == [seeded.rank[0]]  # a reviewer may


def _ingest_pii(ws: Workspace, folder: Path) -> list[str]:
    """One text with PII redacted at ingest, one with PII only flagged; returns their record ids."""
    redact = folder / "redact.jsonl"
    redact.write_text(json.dumps({"text": f"Ticket R-7: refund to {REDACTED['email']} please, call "
                                          f"{REDACTED['phone']}; the deploy key is {REDACTED['aws']}"}) + "\n")
    flag = folder / "flag.jsonl"
    flag.write_text(json.dumps({"text": f"Ticket F-7: card {FLAGGED['card']} charged twice; write to "
                                        f"{FLAGGED['email']} or call {FLAGGED['phone']}"}) + "\n")
    assert ingest(ws, redact, pii="redact").as_dict()["pii"]["records"] == {"redacted": 1}
    assert ingest(ws, flag, pii="flag").as_dict()["pii"]["records"] == {"flagged": 1}
    with ws.store.read() as conn:
        rows = {r.id: (r.data, r.meta) for r in conn.execute(select(RecordRow.id, RecordRow.data, RecordRow.meta))}
    redacted = [i for i, (data, _) in rows.items() if "Ticket R-7" in data]
    flagged = [i for i, (data, _) in rows.items() if "Ticket F-7" in data]
    assert len(redacted) == len(flagged) == 1
    assert not any(v in rows[redacted[0]][0] for v in REDACTED.values())  # never stored in clear
    data, meta = rows[flagged[0]]
    assert all(v in data for v in FLAGGED.values()) and "pii_flags" in (meta or "")  # in clear, but flagged
    return [redacted[0], flagged[0]]


def test_annotator_never_sees_pii_in_clear(workspace: Workspace, tmp_path: Path, serve) -> None:
    seed(workspace, tmp_path)
    ids = _ingest_pii(workspace, tmp_path)
    records = [r for r in workspace.store.iter_records(kind="text") if r.id in ids]
    report = create_round(workspace.store, records, list(range(len(records))), scores=np.ones(len(records)),
                          strategy_key="pii-check", task_type="label")
    assign_round(workspace.store, ["ann"], round_number=report.number, schema="topic")
    with workspace.store.read() as conn:
        tasks = [int(t) for t in conn.scalars(select(Task.id).where(Task.round_id == report.round_id))]
    served = serve()
    ann = served.login("ann")
    planted = [*REDACTED.values(), *FLAGGED.values()]
    for task_id in tasks:
        shown = json.dumps(call(ann, "get_task", task_id))
        assert not [v for v in planted if v in shown], shown
        assert "<EMAIL_ADDRESS" in shown and "<PHONE_NUMBER" in shown
    call(ann, "save_draft", tasks[1], '{"label": "billing"}')
    answered = json.dumps(call(ann, "submit", tasks[1], '{"label": "billing"}', None))
    undone = json.dumps(call(ann, "undo"))  # the reopened task's view
    assert not [v for v in planted if v in answered + undone]


def _hashes(ws: Workspace) -> dict[str, str]:
    with ws.store.read() as conn:
        return {r.name: r.password_hash for r in conn.execute(select(User.name, User.password_hash))}


def _database_text(ws: Workspace) -> bytes:
    """Everything the database holds: the SQLite files' bytes, or every row of every PostgreSQL table as text."""
    if ws.store.dialect == "sqlite":
        db = Path(ws.store.engine.url.database or "")
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    with ws.store.read() as conn:
        tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).all()
        return "\n".join(str(v) for t in tables for v in conn.scalars(text(f'SELECT CAST(t AS text) FROM "{t}" t'))
                         ).encode()


def _passwords_are_hashed(served: Any) -> None:
    """scrypt with its parameters and a salt per account; no password, right or wrong, anywhere in the data."""
    workspace = served.ws
    call(served.login("ann"), "next_task")
    with pytest.raises(ValueError, match="Could not login"):
        served.login("bob", WRONG_PASSWORD)
    hashes = _hashes(workspace)
    assert set(hashes) == set(USERS)
    for name, stored in hashes.items():
        found = re.fullmatch(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)", stored)
        assert found, f"{name}: {stored[:20]}... is not an scrypt hash"
        n, r, p = (int(found.group(i)) for i in (1, 2, 3))
        assert n >= 2**14 and r >= 8 and p >= 1
        assert len(base64.b64decode(found.group(4))) == 16 and len(base64.b64decode(found.group(5))) == 32
        assert verify_password(PASSWORD, stored) and not verify_password(WRONG_PASSWORD, stored)
    assert len(set(hashes.values())) == len(hashes)  # one password, four salts, four hashes
    dumped = _database_text(workspace)
    assert b"user.add" in dumped and hashes["ann"].encode() in dumped  # the scan does see the tables
    for secret in (PASSWORD, WRONG_PASSWORD):
        assert secret.encode() not in dumped
        assert not [p for p in workspace.root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    with workspace.store.read() as conn:
        payloads = " ".join(conn.scalars(select(AuditEvent.payload)))
    assert PASSWORD not in payloads and "password" not in payloads


def test_sessions_expire_and_logging_in_again_works(workspace: Workspace, tmp_path: Path, serve,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The session clock is moved forward (so a slow machine cannot make a fresh session look old)."""
    skew = [0.0]
    monkeypatch.setattr("apps.sessions.now", lambda: time.monotonic() + skew[0])
    seeded = seed(workspace, tmp_path)
    served = serve(session_ttl=TTL)
    url = served.url
    ann, ann_ui, ann_page = served.login("ann"), served.login("ann"), served.login("ann")
    assert call(ann, "next_task")["task_id"] == seeded.rank[0]
    on_load = served.fn_index("on_load")
    assert ui_call(url, ann_ui.cookies, on_load, [])["success"] is True
    assert httpx.get(url + "config", cookies=ann_page.cookies, timeout=20).status_code == 200
    before = _state(workspace)
    skew[0] += TTL + 1

    bob = served.login("bob")  # a session that started later is still good
    assert call(bob, "next_task")["task_id"] == seeded.rank[0]
    # The named API: refused with a clear message, every time, and nothing is stored.
    for endpoint, args in (("submit", (seeded.rank[0], '{"choice": "A"}', None)), ("next_task", ())):
        with pytest.raises(AppError, match=re.escape(EXPIRED)):
            call(ann, endpoint, *args)
    assert _state(workspace)[0] == before[0]
    # A UI event of an expired session: refused by its handler with the same message.
    refused = ui_call(url, ann_ui.cookies, on_load, [])
    assert isinstance(refused, dict) and refused["success"] is False and refused["output"]["error"] == EXPIRED
    # Every other route treats the session as logged out: 401, and a reload shows the login page.
    for path in ("config", "gradio_api/info", "gradio_api/file=/etc/hostname"):
        assert httpx.get(url + path, cookies=ann_page.cookies, timeout=20).status_code == 401, path
    # The login page is served and logging in again works, even from a browser that sends the old cookies.
    assert httpx.get(url, cookies=ann_page.cookies, timeout=20).status_code == 200
    relogin = httpx.post(url + "login", data={"username": "ann", "password": PASSWORD}, cookies=ann_page.cookies,
                         timeout=20)
    assert relogin.status_code == 200 and set(relogin.cookies.values()).isdisjoint(ann_page.cookies.values())
    new_page = {**ann_page.cookies, **dict(relogin.cookies)}
    assert httpx.get(url + "config", cookies=new_page, timeout=20).status_code == 200
    again = served.login("ann")
    assert call(again, "submit", seeded.rank[0], '{"choice": "A"}', None)["task_status"] == "open"

    # After the grace period the next request on another route (a reload, the heartbeat) drops the token from
    # Gradio's store: from then on Gradio itself no longer knows it (401 at the door, like any stranger).
    skew[0] += GRACE_SECONDS + 1
    with pytest.raises(AppError, match=re.escape(EXPIRED)):
        call(ann, "next_task")
    assert httpx.get(url + "config", cookies=ann.cookies, timeout=20).status_code == 401
    assert not set(ann.cookies.values()) & set(served.demo.server_app.tokens)
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        call(ann, "next_task")


def test_sessions_expire_in_real_time(tmp_path: Path) -> None:
    """A 2-second session on the real clock (once: the session clock does not involve the database)."""
    from apps.annotate import launch_app
    from tests.app.conftest import free_port
    from tests.reliability.conftest import Served

    ws = Workspace.open(tmp_path / "ws", f"sqlite:///{tmp_path / 'curate.db'}")
    seed(ws, tmp_path)
    demo, url = launch_app(ws, port=free_port(), prevent_thread_lock=True, quiet=True, session_ttl=2)
    served = Served(ws, demo, url)
    try:
        ann = served.login("ann")
        logged_in = time.monotonic()
        time.sleep(max(0.0, logged_in + 2.3 - time.monotonic()))
        with pytest.raises(AppError, match=re.escape(EXPIRED)):
            call(ann, "next_task")
        assert httpx.get(served.url + "config", cookies=ann.cookies, timeout=20).status_code == 401
    finally:
        demo.close()
        for client in served.clients:
            client.close()
        ws.store.dispose()


def test_a_disabled_account_is_refused_at_once(workspace: Workspace, tmp_path: Path, serve) -> None:
    seeded = seed(workspace, tmp_path)
    served = serve()
    ann, ann_other, bob = served.login("ann"), served.login("ann"), served.login("bob")
    assert call(ann, "next_task")["task_id"] == seeded.rank[0]
    assert call(ann_other, "next_task")["task_id"] == seeded.rank[0]
    deactivate_user(workspace.store, "ann", actor="ada")
    before = _state(workspace)
    with pytest.raises(AppError, match=re.escape(DISABLED)):
        call(ann, "submit", seeded.rank[0], '{"choice": "A"}', None)
    # Every session of the account has ended, not only the one that called.
    with pytest.raises(AppError, match=re.escape(DISABLED)):
        call(ann_other, "save_draft", seeded.rank[0], '{"choice": "B"}')
    assert httpx.get(served.url + "config", cookies=ann_other.cookies, timeout=20).status_code == 401
    assert _state(workspace) == before
    with pytest.raises(ValueError, match="Could not login"):
        served.login("ann")
    assert call(bob, "next_task")["task_id"] == seeded.rank[0]


class _FakeApp:
    cookie_id = "c1"

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}


def test_session_bookkeeping_with_a_fake_clock() -> None:
    """Expiry counts from first sight; an ended token is dropped from Gradio's store after the grace period."""
    from apps.sessions import Sessions, without_ended_logins

    now = [100.0]
    sessions = Sessions(10, grace=5, clock=lambda: now[0])
    app = _FakeApp()
    sessions.attach(app)
    app.tokens.update({"t-ann": "ann", "t-ann2": "ann", "t-bob": "bob"})
    assert sessions.token({"access-token-unsecure-c1": "t-ann"}) == "t-ann"
    assert sessions.ended("forged") is None and "forged" not in sessions._first_seen  # Gradio refuses it anyway
    assert [sessions.ended(t) for t in ("t-ann", "t-ann2")] == [None, None]
    now[0] = 108.0
    assert sessions.ended("t-bob") is None  # first seen now: its clock starts now
    now[0] = 110.5
    assert sessions.ended("t-ann") == EXPIRED and "t-ann" in app.tokens  # refused, still known (grace)
    now[0] = 116.0
    assert sessions.ended("t-ann") == EXPIRED and "t-ann" in app.tokens  # a handler never drops it
    assert sessions.ended("t-ann", drop=True) == EXPIRED and "t-ann" not in app.tokens  # dropped after the grace
    assert sessions.ended("t-bob") is None
    sessions.end_user("bob")
    assert sessions.ended("t-bob") == DISABLED
    with pytest.raises(InputError, match="positive"):
        Sessions(0)
    headers = [(b"host", b"x"), (b"cookie", b"a=1; access-token-c1=t-ann2; access-token-unsecure-c1=t-new; b=2")]
    assert without_ended_logins(headers, sessions.ended) == [(b"host", b"x"),
                                                            (b"cookie", b"a=1; access-token-unsecure-c1=t-new; b=2")]
    assert without_ended_logins([(b"cookie", b"access-token-c1=t-bob")], sessions.ended) == []
