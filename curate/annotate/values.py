"""Answer values: how an answer is checked against its task, and what several people's answers must share to agree.

Used by :mod:`curate.annotate.answers` (which stores answers and sends tasks whose answers differ to review) and
:mod:`curate.annotate.agreement` (kappa and alpha over the categories of :func:`agreement_key`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from curate.annotate.task_views import build_view, display_order
from curate.errors import InputError

__all__ = ["MAX_NOTE_CHARS", "MAX_REWRITE_CHARS", "PAIR_CHOICES", "agreement_key", "dispute_key", "normalise_rewrite",
           "normalise_value"]

PAIR_CHOICES = ("A", "B", "tie", "both_bad")
MAX_NOTE_CHARS = 2000
MAX_REWRITE_CHARS = 100_000


def normalise_value(conn: Connection, task: Any, value: Any) -> dict[str, Any]:
    """Check an answer against the task type (and schema); returns the value to store. Raises InputError."""
    if not isinstance(value, dict):
        raise InputError(f"task {task.id}: the answer must be an object; got {type(value).__name__}")
    view = build_view(conn, task)
    if task.type == "label":
        label = value.get("label")
        if not view.classes:
            raise InputError(f"task {task.id} has no label schema: an admin must run curate assign --schema NAME")
        if label not in view.classes:
            raise InputError(f"task {task.id}: label must be one of {', '.join(view.classes)}; got {label!r:.80}")
        return {"label": label}
    if task.type == "rewrite":
        accepted = value.get("accepted_as_is") or False
        if not isinstance(accepted, bool):
            raise InputError(f"task {task.id}: accepted_as_is must be true or false; got {accepted!r:.40}")
        edited = value.get("completion")
        if accepted and isinstance(edited, str) and edited.strip() and edited != view.completion:
            raise InputError(f"task {task.id}: the answer both accepts the completion as is and edits it; send the "
                             "edit without accepted_as_is, or accept as is without a completion")
        text = view.completion if accepted else edited
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"task {task.id}: a rewrite needs a non-empty completion (or accept it as is)")
        if len(text) > MAX_REWRITE_CHARS:
            raise InputError(f"task {task.id}: the rewrite is over {MAX_REWRITE_CHARS:,} characters")
        return {"completion": text, "accepted_as_is": accepted or text == view.completion}
    note = value.get("note") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
        raise InputError(f"task {task.id}: the note must be text of at most {MAX_NOTE_CHARS} characters")
    order = display_order(task.id, len(view.responses))
    if len(view.responses) == 2:
        choice = value.get("choice")
        if choice not in PAIR_CHOICES:
            raise InputError(f"task {task.id}: choice must be one of {', '.join(PAIR_CHOICES)}; got {choice!r:.80}")
        preferred = choice
        if choice in ("A", "B"):
            preferred = view.response_names[order["AB".index(choice)]]
        return {"choice": choice, "preferred": preferred, "note": note}
    shown = value.get("order")
    n = len(view.responses)
    if (not isinstance(shown, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in shown)
            or sorted(shown) != list(range(n))):
        raise InputError(f"task {task.id}: order must list the {n} displayed positions 0..{n - 1}, best first; "
                         f"got {shown!r:.80}")
    return {"order": [order[int(i)] for i in shown], "note": note}


def agreement_key(task_type: str, value: dict[str, Any] | None) -> str | None:
    """The category of an answer for agreement figures (kappa, alpha): the class of a label, the preferred response
    or the order of a ranking. None for a rewrite: free text is no category (:func:`dispute_key` compares rewrites)."""
    if value is None:
        return None
    if task_type == "label":
        return str(value.get("label"))
    if task_type == "rank":
        return str(value["preferred"]) if "preferred" in value else ",".join(map(str, value.get("order", [])))
    return None


def normalise_rewrite(text: str) -> str:
    """A rewrite as compared between people: whitespace runs collapsed to one space, ends stripped.

    >>> normalise_rewrite("  The invoice was\\n\\tpaid   twice. ")
    'The invoice was paid twice.'
    """
    return " ".join(text.split())


def dispute_key(task_type: str, value: dict[str, Any] | None) -> str | None:
    """What the answers of several people to one task must share, or the task is disputed: the
    :func:`agreement_key`, and for a rewrite its text up to whitespace (:func:`normalise_rewrite`). "Accepted as
    is" stores the original completion, so it differs from any edit that changes more than whitespace."""
    if value is not None and task_type == "rewrite":
        return normalise_rewrite(str(value.get("completion", "")))
    return agreement_key(task_type, value)
