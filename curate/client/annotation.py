"""The annotation app's API from Python: fetch tasks, submit answers, adjudicate, from a script::

    from curate.client import AnnotationClient

    with AnnotationClient("http://127.0.0.1:7860", "ann", password) as client:
        task = client.next_task()
        client.submit(task.id, {"choice": "A", "note": "more precise"})

Every call is checked on the server as the logged-in account (an annotator reaches only the tasks in their own
queue; ``disputes``/``adjudicate``/``dashboard`` need the reviewer role, ``hide_suggestions`` the admin role).
An answer is a dict whose shape depends on the task (``task.answer_form``):

=============  ==============================================================================================
answer_form    answer
=============  ==============================================================================================
``choice``     rank, two responses: ``{"choice": "A" | "B" | "tie" | "both_bad", "note": str}``; ``A`` is
               ``task.responses[0]`` as displayed (the order is shuffled per task; the server stores which
               of the data's ``chosen``/``rejected`` it was)
``order``      rank, three or more candidates: ``{"order": [display positions, best first], "note": str}``,
               e.g. ``[2, 0, 1]`` when ``responses[2]`` is best
``rewrite``    rewrite: ``{"completion": str, "accepted_as_is": bool}``; ``{"accepted_as_is": true}`` keeps
               ``task.completion`` as it is
``label``      label: ``{"label": one of task.classes}``
=============  ==============================================================================================

``note`` is optional (at most 2,000 characters). Errors are curate's: :class:`~curate.errors.AccessError` (wrong
password, a task outside your queue or no such task, a missing role, a disabled account),
:class:`~curate.errors.TaskStateError` (already answered, closed, nothing to undo), :class:`~curate.errors.InputError`
(an answer that does not fit the task, a task id that is not a whole number from 1, an unreachable URL), each with
the server's message; an expired login is renewed once and the call repeated. Needs ``gradio_client`` (the
``app`` extra: ``pip install 'curate[app]'``).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from curate.errors import (
    AccessError,
    AuditError,
    CurateError,
    InputError,
    MissingDependencyError,
    ModelError,
    StoreError,
    TaskStateError,
)

if TYPE_CHECKING:
    from types import TracebackType

    from gradio_client import Client

ENDPOINTS = ("next_task", "get_task", "save_draft", "submit", "skip", "undo", "disputes", "adjudicate", "dashboard",
             "hide_suggestions")
# The app sends the class name of a curate error as the error's title (apps/annotate_views.service_errors).
_ERRORS: dict[str, type[CurateError]] = {cls.__name__: cls for cls in (
    CurateError, InputError, AccessError, TaskStateError, StoreError, AuditError, ModelError)}
_SESSION_ENDED = ("session expired", "not logged in")


@dataclass(frozen=True)
class AnnotationTask:
    """One task as the app shows it (``next_task``, ``get_task``, ``undo`` and ``disputes`` return these).

    Attributes:
        id: the task id to pass to :meth:`AnnotationClient.submit` and the others.
        type: ``rank``, ``rewrite`` or ``label``.
        prompt: the prompt (rank and rewrite tasks).
        responses: rank: the responses in display order (``A`` is ``responses[0]``).
        completion: rewrite: the completion to improve.
        text: label: the text to classify.
        classes: label: the classes of the task's schema, in order.
        guidelines: the guidelines for this task's type (a label schema's on label tasks, a schema's without
            classes on rank and rewrite tasks); empty when the task's type has none.
        suggestion, confidence: the model's suggestion (None when none, or hidden for the round).
        status: your assignment: ``open``, ``skipped`` or ``done``.
        draft: your saved draft of an answer, if any.
        queue: your queue's counts: ``{"open": n, "skipped": n, "done": n}``.
        data: every field the server sent, as sent.
    """

    id: int
    type: str
    round_number: int = 0
    record_id: str = ""
    prompt: str = ""
    responses: list[str] = field(default_factory=list)
    completion: str = ""
    text: str = ""
    classes: list[str] = field(default_factory=list)
    guidelines: str = ""
    schema: str | None = None
    suggestion: Any = None
    confidence: float | None = None
    suggestions_hidden: bool = False
    status: str = "open"
    draft: dict[str, Any] | None = None
    queue: dict[str, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnnotationTask:
        """A task from the app's JSON view (``task_id`` becomes ``id``; fields this client does not know are kept
        in ``data`` only)."""
        known = {f.name for f in fields(cls)} - {"id", "data"}
        return cls(id=int(data["task_id"]), data=dict(data), **{k: v for k, v in data.items() if k in known})

    @property
    def answer_form(self) -> str:
        """Which answer the task takes: ``choice``, ``order``, ``rewrite`` or ``label`` (see the module doc)."""
        if self.type == "rank":
            return "choice" if len(self.responses) == 2 else "order"
        return self.type


class AnnotationClient:
    """A logged-in connection to a running annotation app (``curate app``); a context manager.

    Args:
        url: the app's address, e.g. ``http://127.0.0.1:7860``.
        user, password: an account of the workspace (``curate users add``).
        timeout: seconds to wait for the app to answer each HTTP request.

    Raises:
        AccessError: wrong name or password, or the account is disabled.
        InputError: nothing answers at ``url``, or it is not curate's annotation app.
        MissingDependencyError: ``gradio_client`` is not installed.
    """

    def __init__(self, url: str, user: str, password: str, *, timeout: float = 60.0) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.user = user
        self._password = password
        self._timeout = timeout
        self._client: Client | None = self._connect()

    # -- annotators ---------------------------------------------------------------------------------------------

    def next_task(self) -> AnnotationTask | None:
        """The next task in your queue (None when it is empty); starts the task's clock on the server."""
        view = self._call("next_task")
        return None if view is None else AnnotationTask.from_dict(view)

    def get_task(self, task_id: int) -> AnnotationTask:
        """One task of your queue, with your draft, by id."""
        return AnnotationTask.from_dict(self._call("get_task", task_id))

    def save_draft(self, task_id: int, answer: dict[str, Any]) -> dict[str, Any]:
        """Keep a draft of an answer (any object; replaces the previous draft). Returns
        ``{"task_id": id, "saved": True}``."""
        return dict(self._call("save_draft", task_id, _as_json(answer, "draft")))

    def submit(self, task_id: int, answer: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
        """Submit your answer; committed with its audit event before this returns.

        Args:
            answer: by ``task.answer_form``: ``choice`` ``{"choice": "A" | "B" | "tie" | "both_bad", "note": str}``
                (``A`` = ``task.responses[0]``); ``order`` ``{"order": [display positions, best first]}``;
                ``rewrite`` ``{"completion": str, "accepted_as_is": bool}``; ``label`` ``{"label": str}``, one of
                ``task.classes`` (details in the module doc).
            seconds: time spent on the task, if you measured it (default: measured on the server from the fetch).

        Returns:
            ``{"annotation_id": int, "task_status": "open" | "done" | "disputed", "next_task_id": int | None}``;
            ``open`` means other annotators of the task have not answered yet.
        """
        return dict(self._call("submit", task_id, _as_json(answer, "answer"), seconds))

    def skip(self, task_id: int) -> dict[str, Any]:
        """Move a task to the end of your queue. Returns ``{"task_id": id, "next_task_id": int | None}``."""
        return dict(self._call("skip", task_id))

    def undo(self) -> dict[str, Any]:
        """Retract your latest submission. Returns ``{"task_id": id, "task": AnnotationTask}``: the task is open
        again, with the retracted answer as its draft."""
        out = dict(self._call("undo"))
        if isinstance(out.get("task"), dict):
            out["task"] = AnnotationTask.from_dict(out["task"])
        return out

    # -- reviewers and admins -----------------------------------------------------------------------------------

    def disputes(self) -> list[dict[str, Any]]:
        """Reviewer: the disputed tasks, each ``{"task_id": id, "view": AnnotationTask, "answers": [{"annotation_id",
        "annotator", "value"}]}`` (values as stored: a pair's ``preferred`` names ``chosen``/``rejected``; a rewrite's
        ``completion`` is that person's text, ``view.completion`` the original). Rewrites are disputed when they
        differ beyond whitespace."""
        return [{**item, "view": AnnotationTask.from_dict(item["view"])} for item in self._call("disputes")]

    def adjudicate(self, task_id: int, answer: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
        """Reviewer: the final decision on a disputed task (an answer of the task's shape). Returns
        ``{"annotation_id": int, "task_status": "adjudicated", "originals": [annotation ids decided between]}``."""
        return dict(self._call("adjudicate", task_id, _as_json(answer, "decision"), seconds))

    def dashboard(self) -> dict[str, Any]:
        """Reviewer: agreement (kappa, alpha), progress, throughput, tasks by status and label distribution."""
        return dict(self._call("dashboard"))

    def hide_suggestions(self, round_number: int | None = None, hide: bool = True) -> dict[str, Any]:
        """Admin: hide (or, with ``hide=False``, show) the model's suggestions in a round (default: the latest).
        Returns ``{"round": n, "hide_suggestions": bool}``."""
        return dict(self._call("hide_suggestions", round_number, hide))

    # -- connection ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        """End the connection (the login stays valid on the server until it expires)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> AnnotationClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AnnotationClient({self.url!r}, user={self.user!r})"

    def _connect(self) -> Client:
        try:
            from gradio_client import Client
            from gradio_client.exceptions import AuthenticationError
        except ImportError:
            raise MissingDependencyError("gradio_client", "app", "The annotation client") from None
        import httpx

        refused = AccessError(f"could not log in to {self.url} as {self.user!r}: wrong name or password, or the "
                              "account is disabled (an admin manages accounts with `curate users`)")
        try:
            return Client(self.url, auth=(self.user, self._password), verbose=False, download_files=False,
                          analytics_enabled=False, httpx_kwargs={"timeout": self._timeout})
        except AuthenticationError:
            raise refused from None
        except ValueError as exc:
            if str(exc).startswith("Could not login"):  # the login form refused the name or password
                raise refused from None
            raise InputError(f"{self.url} does not look like curate's annotation app ({exc}); pass the URL "
                             "`curate app` prints") from None
        except httpx.TransportError as exc:
            raise InputError(f"nothing answers at {self.url} ({type(exc).__name__}): start the app with "
                             "`curate app` and pass the URL it prints") from None
        except (KeyError, httpx.HTTPStatusError) as exc:
            raise InputError(f"{self.url} does not look like curate's annotation app ({exc}); pass the URL "
                             "`curate app` prints") from None

    def _call(self, endpoint: str, *args: Any) -> Any:
        """Call a named endpoint; a session that ended (expired) is logged in again once and the call repeated
        (the server refuses an ended session before doing anything, so nothing happens twice)."""
        try:
            return self._predict(endpoint, args)
        except AccessError as exc:
            if not any(phrase in str(exc) for phrase in _SESSION_ENDED):
                raise
        self.close()
        self._client = self._connect()
        return self._predict(endpoint, args)

    def _predict(self, endpoint: str, args: tuple[Any, ...]) -> Any:
        import asyncio
        import concurrent.futures

        import httpx
        from gradio_client.exceptions import AppError

        if self._client is None:
            raise InputError(f"{self!r} is closed: open a new AnnotationClient")
        try:
            return self._client.predict(*args, api_name=f"/{endpoint}")
        except AppError as exc:
            raise _curate_error(exc, endpoint) from None
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code in (401, 403):
                raise AccessError(f"/{endpoint}: not logged in (session expired): log in again") from None
            raise InputError(f"/{endpoint}: the app answered HTTP {exc.response.status_code}") from None
        except (httpx.TransportError, concurrent.futures.CancelledError, asyncio.CancelledError) as exc:
            # gradio_client cancels the call's future when its stream breaks (the app died mid-call)
            raise InputError(f"/{endpoint}: lost the connection to {self.url} ({type(exc).__name__}); is the app "
                             "still running?") from None


def _as_json(value: Any, what: str) -> str:
    """``value`` as the JSON string the app takes; InputError (before any request) when it is not an object."""
    if not isinstance(value, dict):
        raise InputError(f"the {what} must be a dict, e.g. {{'choice': 'A'}} (README: Annotating from Python); got "
                         f"{type(value).__name__}")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the {what} cannot be sent as JSON: {exc}") from None


def _curate_error(exc: Any, endpoint: str) -> CurateError:
    """The curate error an ``AppError`` of the app stands for, with the server's message."""
    message = html.unescape(str(getattr(exc, "message", "") or exc))
    if "has not enabled verbose error reporting" in message:
        return CurateError(f"/{endpoint} failed on the server with an unexpected error (a bug: the app's console "
                           "shows the traceback)")
    cls = _ERRORS.get(str(getattr(exc, "title", "")))
    if cls is None:  # raised by the app itself, not by curate: a session refusal or a malformed argument
        cls = AccessError if any(p in message for p in (*_SESSION_ENDED, "account disabled")) else InputError
    return cls(message)
