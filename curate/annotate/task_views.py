"""What a task looks like to the person answering it: texts, choices, guidelines and the model's suggestion.

Texts come from the stored records, which are already redacted when the workspace redacts PII; a record that
was only *flagged* for PII is redacted here, on the way to the screen, so the app never shows a clear value.
Responses of a rank task are shown in an order shuffled per task (the same for everybody), so position bias
does not line up with the data's chosen/rejected columns. Classes and guidelines follow the task's type: a
label schema's (one with classes) show only on label tasks, a schema without classes only on rank and rewrite
tasks (:func:`curate.rounds.assignment.schema_task_types`); a task whose type has none shows none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, select

from curate.ingest.records import as_text, is_conversational
from curate.rounds.assignment import round_settings, schema_task_types
from curate.store.schema import LabelSchema, RecordRow, Round, Suggestion


@dataclass
class TaskView:
    """One task as displayed. ``responses`` are in display order; ``response_names`` name each one's origin
    (``chosen``/``rejected`` or ``completion <i>``) in the record's order. ``guidelines``, ``classes`` and
    ``schema`` are those of the task's schema when it fits the task's type, else empty (and None)."""

    task_id: int
    type: str
    round_number: int
    record_id: str
    prompt: str = ""
    responses: list[str] = field(default_factory=list)
    response_names: list[str] = field(default_factory=list)
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

    def as_dict(self, *, with_origins: bool = False) -> dict[str, Any]:
        """JSON-ready form (what the app's API returns). ``response_names`` (which response is the data's
        ``chosen``) is left out unless ``with_origins``: an annotator must not learn it."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if with_origins or k != "response_names"}


def display_order(task_id: int, n: int) -> list[int]:
    """Record index shown at each display position (a permutation of ``range(n)``, fixed per task)."""
    seed = int.from_bytes(hashlib.blake2b(f"task-{task_id}".encode(), digest_size=8).digest(), "little")
    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


def render(value: Any) -> str:
    """A field value as readable text: a string as is, a conversation as ``role: content`` paragraphs."""
    if is_conversational(value):
        return "\n\n".join(f"{m.get('role', '?')}: {as_text(m.get('content', ''))}" for m in value)
    return as_text(value)


def _split_example(fields: dict[str, Any]) -> tuple[str, str]:
    if "messages" in fields and is_conversational(fields["messages"]):
        messages = fields["messages"]
        if messages and messages[-1].get("role") == "assistant":
            return render(messages[:-1]), as_text(messages[-1].get("content", ""))
        return render(messages), ""
    return render(fields.get("prompt", "")), render(fields.get("completion", ""))


def _fields(conn: Connection, record_id: str, store: Any) -> dict[str, Any]:
    row = conn.execute(select(RecordRow.data, RecordRow.meta).where(RecordRow.id == record_id)).first()
    if row is None:
        return {}
    fields = orjson.loads(row.data)
    meta = orjson.loads(row.meta) if row.meta else {}
    if isinstance(meta, dict) and meta.get("pii_flags"):
        from curate.filters.pii_workspace import PiiGuard

        fields = PiiGuard("redact", b"display-only").redact_text(fields)
    return fields if isinstance(fields, dict) else {}


def build_view(conn: Connection, task: Any, *, store: Any = None) -> TaskView:
    """The :class:`TaskView` of a task row (no per-user state: draft, queue and status are filled by callers)."""
    number = int(conn.scalar(select(Round.number).where(Round.id == task.round_id)) or 0)
    view = TaskView(task_id=int(task.id), type=str(task.type), round_number=number, record_id=str(task.record_id))
    fields = _fields(conn, task.record_id, store)
    if task.label_schema_id is not None:
        schema = conn.execute(select(LabelSchema).where(LabelSchema.id == task.label_schema_id)).first()
        classes = list(orjson.loads(schema.classes)) if schema is not None else []
        if schema is not None and view.type in schema_task_types(classes):  # a label schema on a rank task: none
            view.classes = classes
            view.guidelines = schema.guidelines
            view.schema = f"{schema.name} v{schema.version}"
    if "chosen" in fields and "rejected" in fields:
        names, texts = ["chosen", "rejected"], [render(fields["chosen"]), render(fields["rejected"])]
    elif isinstance(fields.get("completions"), list):
        names = [f"completion {i}" for i in range(len(fields["completions"]))]
        texts = [render(c) for c in fields["completions"]]
    else:
        names, texts = [], []
    view.prompt, view.completion = _split_example(fields)
    if "text" in fields:
        view.text = render(fields["text"])
    if task.type == "rank":
        order = display_order(int(task.id), len(texts))
        view.responses = [texts[i] for i in order]
        view.response_names = names
    elif task.type == "label" and not view.text:
        view.text = "\n\n".join(t for t in (view.prompt, view.completion, *texts) if t)
    hidden = bool(round_settings(conn, int(task.round_id)).get("hide_suggestions", False))
    view.suggestions_hidden = hidden
    if not hidden:
        found = conn.execute(select(Suggestion).where(Suggestion.task_id == task.id)).first()
        if found is not None:
            view.suggestion, view.confidence = _display_suggestion(view, orjson.loads(found.value)), found.confidence
    return view


def _display_suggestion(view: TaskView, value: Any) -> Any:
    """The stored suggestion in display terms: a letter for a pair, positions for candidates, a class."""
    if view.type == "rank" and view.response_names:
        order = display_order(view.task_id, len(view.response_names))
        if len(view.response_names) == 2 and value in view.response_names:
            return "AB"[order.index(view.response_names.index(value))]
        if isinstance(value, list):
            return [order.index(int(i)) for i in value if 0 <= int(i) < len(order)]
    return value
