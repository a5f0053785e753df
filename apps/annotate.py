"""The annotation app: experts rank, rewrite and label; reviewers adjudicate and watch agreement.

A thin Gradio shell over :mod:`curate.annotate.answers`, :mod:`curate.annotate.agreement` and
:mod:`curate.rounds.assignment`, laid out by :mod:`apps.annotate_views` to fit 1366x768 with a fixed action bar.
Every handler passes the logged-in name (``request.username``, set by Gradio's login from
:func:`curate.store.login_guard.attempt_login`, throttled per name and address) to the library, which checks
roles and queues on the server; a :class:`~curate.errors.CurateError` becomes a ``gr.Error`` (a toast in the
browser, an error for API callers). In the browser's own actions a refusal is a toast plus the status line.

Named API endpoints (``gradio_client.Client(url, auth=(name, password)).predict(..., api_name="/submit")``):
``next_task``, ``get_task``, ``save_draft``, ``submit``, ``skip``, ``undo``, ``disputes``, ``adjudicate``,
``dashboard`` and ``hide_suggestions``; values are JSON strings in the formats of :mod:`curate.annotate.answers`.
A login lasts ``session_ttl`` seconds (12 hours by default) and a disabled account is refused at its next call:
see :mod:`apps.sessions`.
"""

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr

from apps.adjudicate import wire_adjudicate
from apps.annotate_js import CSS, HEAD
from apps.annotate_views import (
    DEFAULT_MIN_READ_SECONDS,
    UNCHANGED,
    Refused,
    TaskPanel,
    changes_html,
    esc,
    service_errors,
    user_of,
)
from apps.dashboard import DashboardTab
from apps.prefetch import Prefetcher
from apps.sessions import DEFAULT_SESSION_TTL, Sessions, account_checker, login_checker
from curate.annotate import answers as annotation
from curate.annotate.agreement import agreement_report
from curate.errors import AccessError, CurateError, InputError
from curate.rounds.assignment import set_hide_suggestions
from curate.store.accounts import get_account, has_users, require
from curate.store.workspace import Workspace

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
AUTH_MESSAGE = ("<b>curate · annotation</b><br>Rank, rewrite and label the examples the model is least sure "
                "about; reviewers settle disagreements. Log in with the account your admin created "
                "(<code>curate users add</code>). Everything you submit is saved at once; press <kbd>?</kbd> in "
                "the app for keyboard shortcuts. Repeated failed logins make each further try wait longer, then lock "
                "the name for a while (an admin can lift it with <code>curate users unlock NAME</code>).")
EMPTY_QUEUE = "### All done: your queue is empty.\nNew tasks appear here when an admin assigns the next round."
STATUS_WORDS = {"open": "waiting for the other annotators", "done": "complete",
                "disputed": "answers differ, sent to a reviewer"}


def parse_value(value: str) -> Any:
    """A JSON answer value from an API caller."""
    try:
        return json.loads(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise gr.Error(f"value must be a JSON object string, e.g. '{{\"choice\": \"A\"}}': {esc(exc)}",
                       print_exception=False) from exc


def parse_id(value: Any, what: str = "task_id") -> int:
    """A whole number (an int, an integral float or a string of digits) from an API caller; InputError else."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,30}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be a whole number; got {value!r:.40}")
    if abs(value) >= 2**63:
        raise InputError(f"{what} is out of range: ids are whole numbers below 2**63")
    return value


def register_api(ws: Workspace) -> None:
    """Declare the named API endpoints (inside a ``gr.Blocks`` context)."""
    store = ws.store

    def next_task(request: gr.Request | None = None) -> dict[str, Any] | None:
        """The next task in your queue as a dict (None when the queue is empty); starts its clock."""
        with service_errors():
            view = annotation.get_task(store, user_of(request))
        return None if view is None else view.as_dict()

    def get_task(task_id: int, request: gr.Request | None = None) -> dict[str, Any]:
        """One task of your queue (with your draft), by id."""
        with service_errors():
            task_id = parse_id(task_id)
            view = annotation.get_task(store, user_of(request), task_id)
        if view is None:
            raise gr.Error(f"no task {task_id}", print_exception=False)
        return view.as_dict()

    def save_draft(task_id: int, value: str, request: gr.Request | None = None) -> dict[str, Any]:
        """Keep a draft (JSON value) of your answer to a task."""
        with service_errors():
            task_id = parse_id(task_id)
            annotation.save_draft(store, user_of(request), task_id, parse_value(value))
        return {"task_id": task_id, "saved": True}

    def submit(task_id: int, value: str, seconds: float | None = None,
               request: gr.Request | None = None) -> dict[str, Any]:
        """Submit your answer (JSON value) to a task; committed before this returns."""
        with service_errors():
            done = annotation.submit(store, user_of(request), parse_id(task_id), parse_value(value), seconds=seconds)
        return {"annotation_id": done.annotation_id, "task_status": done.task_status,
                "next_task_id": done.next_task_id}

    def skip(task_id: int, request: gr.Request | None = None) -> dict[str, Any]:
        """Move a task to the end of your queue."""
        with service_errors():
            task_id = parse_id(task_id)
            following = annotation.skip(store, user_of(request), task_id)
        return {"task_id": task_id, "next_task_id": following}

    def undo(request: gr.Request | None = None) -> dict[str, Any]:
        """Retract your last submission; returns the reopened task (the old answer is its draft)."""
        with service_errors():
            task_id = annotation.undo_last(store, user_of(request))
            view = annotation.get_task(store, user_of(request), task_id)
        return {"task_id": task_id, "task": None if view is None else view.as_dict()}

    def disputes(request: gr.Request | None = None) -> list[dict[str, Any]]:
        """Reviewer: disputed tasks, each with its view and the answers in disagreement (with names)."""
        with service_errors():
            found = annotation.disputes(store, user_of(request))
        return [{**item, "view": item["view"].as_dict()} for item in found]

    def adjudicate(task_id: int, value: str, seconds: float | None = None,
                   request: gr.Request | None = None) -> dict[str, Any]:
        """Reviewer: the final decision (JSON value) on a disputed task."""
        with service_errors():
            done = annotation.adjudicate(store, user_of(request), parse_id(task_id), parse_value(value),
                                         seconds=seconds)
        return {"annotation_id": done.annotation_id, "task_status": done.task_status, **done.extra}

    def dashboard(request: gr.Request | None = None) -> dict[str, Any]:
        """Reviewer: agreement (kappa, alpha), progress, throughput, tasks by status, label distribution."""
        with service_errors():
            require(store, user_of(request), "reviewer")
            return agreement_report(store)

    def hide_suggestions(round_number: int | None, hide: bool = True,
                         request: gr.Request | None = None) -> dict[str, Any]:
        """Admin: hide (or show) the model's suggestions for a round (default: the latest)."""
        with service_errors():
            account = require(store, user_of(request), "admin")
            if not isinstance(hide, bool):
                raise InputError(f"hide must be true or false; got {hide!r:.40}")
            wanted = None if round_number is None else parse_id(round_number, "round")
            number = set_hide_suggestions(store, hide, round_number=wanted, actor=account.name)
        return {"round": number, "hide_suggestions": bool(hide)}

    for fn in (next_task, get_task, save_draft, submit, skip, undo, disputes, adjudicate, dashboard,
               hide_suggestions):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)  # type: ignore[attr-defined]


def build_app(ws: Workspace, *, min_read_seconds: float = DEFAULT_MIN_READ_SECONDS) -> gr.Blocks:
    """The app's Blocks: Annotate, Adjudicate and Dashboard tabs plus the named API endpoints.

    ``min_read_seconds``: seconds per 1,000 characters a rewrite must be on screen before "accept as is" is taken.
    """
    store = ws.store
    private: dict[str, Any] = {"api_visibility": "private"}
    ahead = Prefetcher(store)  # renders each person's next task while they read this one
    demo: gr.Blocks
    with gr.Blocks(title="curate · annotate", analytics_enabled=False, fill_width=True) as demo:
        with gr.Row(equal_height=True, elem_classes=["app-header"]):
            header = gr.HTML(elem_id="whoami", scale=5, padding=False)
            gr.HTML('<button id="shortcuts-toggle" type="button" title="Keyboard shortcuts (?)">? Shortcuts</button>',
                    scale=1, min_width=140, padding=False)
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Annotate", id="annotate", elem_id="annotate-tab"):
                task = TaskPanel(min_read_seconds=min_read_seconds)
            with gr.Tab("Adjudicate", id="adjudicate", elem_id="adjudicate-tab", visible=False) as adj_tab:
                with gr.Row(equal_height=True, elem_classes=["dispute-bar"]):
                    picker = gr.Dropdown(show_label=False, choices=[], elem_id="dispute-select", scale=4,
                                         container=False, info=None)
                    refresh = gr.Button("Refresh list", elem_id="dispute-refresh", scale=0, min_width=130, size="sm")
                answers = gr.HTML(elem_id="dispute-answers")
                adj = TaskPanel("adj-", submit_label="Record decision · Ctrl+Enter", queue_actions=False)
            with gr.Tab("Dashboard", id="dashboard", elem_id="dashboard-tab", visible=False) as dash_tab:
                board = DashboardTab(ws)

        def on_load(request: gr.Request) -> dict[Any, Any]:
            with service_errors():
                account = get_account(store, user_of(request))
                view = annotation.get_task(store, account.name)
                review = annotation.pending_disputes(store, account.name) > 0
            reviewer = account.can("reviewer")
            ahead.after(account.name, None if view is None else view.task_id)
            return {header: header_html(account.name, account.role),
                    tabs: gr.Tabs(selected="adjudicate" if review else "annotate"),
                    adj_tab: gr.update(visible=reviewer), dash_tab: gr.update(visible=reviewer),
                    board.admin_box: gr.update(visible=account.can("admin")),
                    **task.show(None if view is None else view.as_dict(), EMPTY_QUEUE, request)}

        # Gradio's page re-reads the state of every component that ever had a loading status (and of all its
        # children) on each status change; events whose progress lands on one small leaf keep that list short.
        loaded = demo.load(on_load, None, [header, tabs, adj_tab, dash_tab, board.admin_box, *task.outputs],
                           show_progress="hidden", show_progress_on=[header], **private)
        _wire_drafts(ws, task, private)
        _wire_actions(ws, task, private, ahead)
        land = wire_adjudicate(ws, adj, picker, refresh, answers, adj_tab, private)
        # a reviewer with disputes lands on the Adjudicate tab, its first task shown
        loaded.then(*land, show_progress="hidden", show_progress_on=[adj.status], **private)
        board.wire(dash_tab, private)
        register_api(ws)
    demo.queue(default_concurrency_limit=8)
    return demo


def header_html(name: str, role: str) -> str:
    """The one-line header: who is signed in, and a logout link that stays in this tab."""
    return (f'<div class="header-line"><b>curate · annotate</b> · signed in as <b>{esc(name)}</b> ({esc(role)}) · '
            '<a href="logout" target="_self" id="logout-link">Log out</a></div>')


def _wire_drafts(ws: Workspace, panel: TaskPanel, private: dict[str, Any]) -> None:
    """Selections and typing are kept as the task's draft; the server echoes the highlight and the diff."""
    store = ws.store
    highlight_out = [*panel.highlight_outputs, panel.diff]
    unchanged = {c: gr.skip() for c in highlight_out}

    def keep(task_id: float | None, choice: str, order: str, note: str, text: str, state: dict[str, Any],
             request: gr.Request, typed: bool = True) -> dict[Any, Any]:
        """Save the draft and echo the highlight / diff, unless the screen has moved to another task.

        A rewrite's draft is kept only from typing (``typed``): a choice change that arrives with a new task
        carries the text box's value from before that task's text reached it, and must not become its draft.
        """
        if task_id is None or state.get("task_id") != int(task_id) or panel.showing(request) != int(task_id):
            return unchanged
        rewrite = state.get("mode") == "rewrite"
        if rewrite and not typed:
            return unchanged
        value = panel.draft(state, choice or "", order or "", note or "", text or "")
        if value is not None:
            with service_errors():
                annotation.save_draft(store, user_of(request), int(task_id), value)
        if panel.showing(request) != int(task_id):  # the screen moved on while the draft was saved
            return unchanged
        diff = changes_html(state["completion"], text or "") if rewrite else gr.skip()
        return {**panel.highlight(state, choice or "", order or ""), panel.diff: diff}

    def keep_choice(task_id: float | None, choice: str, order: str, note: str, text: str, state: dict[str, Any],
                    request: gr.Request) -> dict[Any, Any]:
        return keep(task_id, choice, order, note, text, state, request, typed=False)

    inputs = [panel.task_id, panel.choice, panel.order, panel.note, panel.rewrite_box, panel.state]
    for component in (panel.choice, panel.order):
        component.change(keep_choice, inputs, highlight_out, show_progress="hidden", show_progress_on=[panel.status],
                         **private)
    for component in (panel.note, panel.rewrite_box):
        component.input(keep, inputs, highlight_out, show_progress="hidden", show_progress_on=[panel.status],
                        trigger_mode="always_last", **private)


def _wire_actions(ws: Workspace, panel: TaskPanel, private: dict[str, Any], ahead: Prefetcher) -> None:
    """Submit, accept as is, skip and undo, each followed by the next task. A refused action leaves the task on
    screen and says why in a toast and in the status line (which it replaces)."""
    store = ws.store
    selection = [panel.choice, panel.order, panel.note, panel.rewrite_box]
    outputs = [*panel.outputs, panel.status]
    skip_all = {c: gr.skip() for c in outputs}

    def shown(view: Any, status: str, request: gr.Request) -> dict[Any, Any]:
        ahead.after(user_of(request) or "", None if view is None else view.task_id)
        return {**panel.show(None if view is None else view.as_dict(), EMPTY_QUEUE, request), panel.status: status}

    @contextmanager
    def refusals(result: dict[Any, Any]) -> Iterator[None]:
        """A refusal (the panel's, or curate's own error) becomes a toast plus the status line."""
        try:
            yield
        except (Refused, CurateError) as exc:
            result.update(skip_all)
            result.update(panel.refusal(str(exc)))

    def do_submit(task_id: float | None, choice: str, order: str, note: str, text: str, state: dict[str, Any],
                  request: gr.Request) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        with panel.session_lock(request), refusals(result):
            if panel.stale(task_id, request):  # pressed twice: the first press already moved on
                return skip_all
            value = panel.answer(state, choice or "", order or "", note or "", text or "")
            if value.get("accepted_as_is"):
                raise Refused(UNCHANGED)
            return _submit(state, value, panel.seconds_on_task(state), request)
        return result

    def do_accept(task_id: float | None, state: dict[str, Any], request: gr.Request) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        with panel.session_lock(request), refusals(result):
            if panel.stale(task_id, request):
                return skip_all
            seconds = panel.check_read(state)
            return _submit(state, {"completion": state.get("completion", ""), "accepted_as_is": True}, seconds,
                           request)
        return result

    def _submit(state: dict[str, Any], value: dict[str, Any], seconds: float | None,
                request: gr.Request) -> dict[Any, Any]:
        done = annotation.submit(store, user_of(request), int(state["task_id"]), value, seconds=seconds)
        view = annotation.get_task(store, user_of(request))
        after = STATUS_WORDS.get(done.task_status, done.task_status)
        return shown(view, f"Saved answer #{done.annotation_id} to task {state['task_id']}: {after}.", request)

    def do_skip(task_id: float | None, state: dict[str, Any], request: gr.Request) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        with panel.session_lock(request), refusals(result):
            if panel.stale(task_id, request):
                return skip_all
            following = annotation.skip(store, user_of(request), int(state["task_id"]))
            view = None if following is None else annotation.get_task(store, user_of(request), following)
            return shown(view, f"Skipped task {state['task_id']}: it comes back at the end of your queue.", request)
        return result

    def do_undo(request: gr.Request) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        with panel.session_lock(request), refusals(result):
            task_id = annotation.undo_last(store, user_of(request))
            view = annotation.get_task(store, user_of(request), task_id)
            return shown(view, f"Undid your answer to task {task_id}: change it (or not) and submit again.", request)
        return result

    # A press is sent with the task id on screen, so a second press is recognised (and ignored) instead of
    # being dropped while the first is in flight (trigger_mode="once" would lose a quick, legitimate press).
    quiet: dict[str, Any] = {"show_progress": "minimal", "show_progress_on": [panel.status], **private}
    panel.submit.click(do_submit, [panel.task_id, *selection, panel.state], outputs, trigger_mode="multiple", **quiet)
    panel.accept.click(do_accept, [panel.task_id, panel.state], outputs, trigger_mode="multiple", **quiet)
    panel.skip.click(do_skip, [panel.task_id, panel.state], outputs, trigger_mode="multiple", **quiet)
    panel.undo.click(do_undo, None, outputs, **quiet)


def launch_app(ws: Workspace, *, host: str = "127.0.0.1", port: int | None = None,
               prevent_thread_lock: bool = False, quiet: bool = False,
               session_ttl: float = DEFAULT_SESSION_TTL,
               min_read_seconds: float = DEFAULT_MIN_READ_SECONDS) -> tuple[gr.Blocks, str]:
    """Start the app (login required; a login lasts ``session_ttl`` seconds) and return it with its local URL.

    ``min_read_seconds``: per 1,000 characters, the least time a rewrite is on screen before "accept as is" is taken.

    Raises:
        AccessError: the workspace has no accounts (create one with ``curate users add NAME --role admin``).
        InputError: ``session_ttl`` is not a positive number of seconds, or the port is taken.
    """
    if not has_users(ws.store):
        raise AccessError("the annotation app needs accounts and this workspace has none: create one with "
                          "`curate users add NAME --role admin` (then add annotators), and start the app again")
    if host not in LOOPBACK:
        sys.stderr.write(f"warning: the app listens on {host}, beyond this machine; logins and answers travel "
                         "unencrypted unless you put it behind a TLS proxy (https).\n")
    if not 0 <= min_read_seconds <= 600:
        raise InputError(f"min_read_seconds must be between 0 and 600 seconds per 1,000 characters; "
                         f"got {min_read_seconds!r}")
    store = ws.store
    sessions = Sessions(session_ttl, is_active=account_checker(store))
    demo = build_app(ws, min_read_seconds=min_read_seconds)
    sessions.protect(demo)  # every handler refuses an expired session or a disabled account
    try:
        server, url, _ = demo.launch(
            server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet,
            app_kwargs={"middleware": [sessions.middleware()]},
            auth=login_checker(store), auth_message=AUTH_MESSAGE,  # type: ignore[arg-type]  # async: awaited
            show_error=False, ssr_mode=False, footer_links=["api"], css=CSS, head=HEAD,
            theme=gr.themes.Soft(font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
                                 font_mono=["ui-monospace", "SFMono-Regular", "monospace"]),
        )
    except OSError as exc:  # gradio: "Cannot find empty port in range: ..."
        if "port" not in str(exc).lower():
            raise
        tried = re.search(r"range: (\d+-\d+)", str(exc))
        taken = f"port {port} on {host} is already in use" if port is not None else (
            f"no free port on {host} (tried {tried.group(1) if tried else 'from 7860'})")
        raise InputError(f"{taken}, so the app cannot start. Stop the program that listens there, or pass "
                         "--port N with a free port.") from None
    sessions.attach(server)
    if not prevent_thread_lock:
        demo.block_thread()
    return demo, url
