"""The task panel of the annotation app: how a task view is shown and how clicks and keys become an answer.

The panel holds no business logic: it renders :meth:`curate.annotate.task_views.TaskView.as_dict` output and builds the
answer values that :mod:`curate.annotate.answers` checks and stores. The person's current selection lives in the
browser (hidden components set by client-side JavaScript), so a key press followed at once by Ctrl+Enter
never races a server round trip.
"""

import difflib
import html
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr

from curate.annotate.answers import PAIR_CHOICES
from curate.annotate.task_views import display_order
from curate.errors import CurateError

MAX_CHOICES = 20  # class / candidate buttons; keys 1-9 press the first nine
PAIR_BUTTONS = (("A", "1 · A", "key-1"), ("B", "2 · B", "key-2"), ("tie", "T · Tie", "key-t"),
                ("both_bad", "0 · Both bad", "key-0"))
PAIR_WORDS = {"A": "A", "B": "B", "tie": "tie", "both_bad": "both bad"}
TYPE_NAMES = {"pair": "rank a pair", "candidates": "order the candidates", "rewrite": "rewrite", "label": "label"}
ORDER_SEP = " > "
NO_DISPUTES = "### No disputed tasks.\nDisagreements between annotators show up here for a decision."
_WORDS = re.compile(r"\s+|[^\s]+")


def esc(text: Any) -> str:
    """``text`` escaped for HTML (record texts are data, never markup)."""
    return html.escape(str(text), quote=True)


def text_block(title: str, text: str) -> str:
    """A titled, scrollable block of plain text."""
    return f'<div class="block-title">{esc(title)}</div><div class="text-block">{esc(text)}</div>'


def diff_html(original: str, edited: str) -> str:
    """Word-level diff of ``edited`` against ``original`` as HTML with ``<ins>`` / ``<del>``."""
    if original == edited:
        return '<div class="diff"><em>No changes: the completion is as the model wrote it.</em></div>'
    a, b = _WORDS.findall(original), _WORDS.findall(edited)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            out.append(f"<del>{esc(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{esc(''.join(b[j1:j2]))}</ins>")
        if op == "equal":
            out.append(esc("".join(a[i1:i2])))
    return f'<div class="diff">{"".join(out)}</div>'


def changes_html(original: str, edited: str) -> str:
    """The titled diff shown under the rewrite box."""
    return f'<div class="block-title">Your changes</div>{diff_html(original, edited)}'


def mode_of(view: dict[str, Any]) -> str:
    """How a task is answered: ``pair``, ``candidates``, ``rewrite`` or ``label``."""
    if view["type"] == "rank":
        return "pair" if len(view["responses"]) == 2 else "candidates"
    return str(view["type"])


def format_order(positions: list[int]) -> str:
    """Display positions (0-based) as the 1-based order the person sees, e.g. ``2 > 1 > 3``."""
    return ORDER_SEP.join(str(p + 1) for p in positions)


def parse_order(text: str) -> list[int]:
    """The inverse of :func:`format_order`."""
    return [int(p) - 1 for p in text.split(ORDER_SEP) if p.strip().isdigit()] if text else []


def progress_line(queue: dict[str, int]) -> str:
    """``3 of 9 done, 1 skipped``."""
    total = sum(queue.values())
    return f"{queue.get('done', 0)} of {total} done, {queue.get('skipped', 0)} skipped"


def suggestion_line(view: dict[str, Any]) -> str:
    """``Model suggests: billing (83%)``, or an empty string when hidden or absent."""
    value = view.get("suggestion")
    if view.get("suggestions_hidden") or value is None:
        return ""
    if isinstance(value, list):
        value = format_order([int(v) for v in value])
    conf = view.get("confidence")
    share = f" ({round(100 * conf)}%)" if isinstance(conf, int | float) else ""
    return f"**Model suggests:** {esc(value)}{share}"


def answer_text(view: dict[str, Any], value: dict[str, Any] | None) -> str:
    """A stored answer in the terms the reviewer sees (letters, classes, display positions)."""
    if not value:
        return ""
    mode = mode_of(view)
    if mode == "pair":
        return PAIR_WORDS.get(str(value.get("choice")), str(value.get("choice")))
    if mode == "candidates":
        order = display_order(int(view["task_id"]), len(view["responses"]))
        return format_order([order.index(int(i)) for i in value.get("order", []) if int(i) in order])
    if mode == "label":
        return str(value.get("label"))
    return str(value.get("completion", ""))


def restore(view: dict[str, Any]) -> tuple[str, str, str, str]:
    """``(choice, order, note, rewrite text)`` restored from the task's draft (or an undone answer)."""
    draft = view.get("draft")
    draft = draft if isinstance(draft, dict) else {}
    note = draft.get("note") if isinstance(draft.get("note"), str) else ""
    mode, choice, order = mode_of(view), "", ""
    if mode == "pair" and draft.get("choice") in PAIR_CHOICES:
        choice = str(draft["choice"])
    elif mode == "label" and draft.get("label") in view["classes"]:
        choice = str(view["classes"].index(draft["label"]) + 1)
    elif mode == "candidates":
        n = len(view["responses"])
        if isinstance(draft.get("order_shown"), list):  # saved by this app, in display positions
            positions = [int(p) for p in draft["order_shown"]]
        elif isinstance(draft.get("order"), list):  # an undone answer, in the record's indices
            shown = display_order(int(view["task_id"]), n)
            positions = [shown.index(int(i)) for i in draft["order"] if int(i) in shown]
        else:
            positions = []
        order = format_order([p for p in dict.fromkeys(positions) if 0 <= p < n])
    text = draft.get("completion") if mode == "rewrite" and isinstance(draft.get("completion"), str) else ""
    return choice, order, note or "", text or str(view.get("completion", ""))


class TaskPanel:
    """The components that show one task and collect one answer (Annotate and Adjudicate tabs)."""

    def __init__(self, prefix: str = "", *, rewrite: bool = True, submit_label: str = "Submit · Ctrl+Enter",
                 queue_actions: bool = True) -> None:
        p = prefix
        self.state = gr.State({})
        self.task_id = gr.Number(visible=False, precision=0)
        self.mode = gr.Textbox(visible=False)
        self.choice = gr.Textbox(visible=False)
        self.info = gr.Markdown(elem_id=f"{p}task-info", elem_classes=["task-info"])
        self.suggestion = gr.Markdown(elem_id=f"{p}suggestion", elem_classes=["suggestion"])
        with gr.Accordion("Guidelines", open=True, visible=False) as self.guidelines_box:
            self.guidelines = gr.Markdown(elem_id=f"{p}guidelines")
        self.prompt = gr.HTML(elem_id=f"{p}prompt", visible=False)
        with gr.Row(visible=False, equal_height=True) as self.pair_row:
            self.resp_a = gr.HTML(elem_id=f"{p}response-a")
            self.resp_b = gr.HTML(elem_id=f"{p}response-b")
        with gr.Row(visible=False) as self.pair_buttons_row:
            self.pair_buttons = {value: gr.Button(label, elem_id=f"{p}pair-{value}", elem_classes=[key])
                                 for value, label, key in PAIR_BUTTONS}
        self.body = gr.HTML(elem_id=f"{p}body", visible=False)
        with gr.Row(visible=False, elem_classes=["choice-row"]) as self.choice_row:
            self.choice_buttons = [gr.Button(str(i), elem_id=f"{p}choice-{i}", elem_classes=[f"key-{i}"] if i < 10
                                             else [], visible=False, min_width=60) for i in range(1, MAX_CHOICES + 1)]
        with gr.Row(visible=False) as self.order_row:
            self.order = gr.Textbox(label="Your order, best first (press the numbers in turn)", interactive=False,
                                    elem_id=f"{p}order", scale=4)
            self.reset = gr.Button("R · Reset order", elem_id=f"{p}reset-btn", elem_classes=["key-reset"], scale=1)
        self.rewrite_parts: list[Any] = []
        if rewrite:
            with gr.Column(visible=False) as self.rewrite_col:
                self.rewrite_box = gr.Textbox(label="Completion: edit it (Ctrl+Enter submits)", lines=6, max_lines=24,
                                              elem_id=f"{p}rewrite-box")
                self.diff = gr.HTML(elem_id=f"{p}rewrite-diff")
                self.accept = gr.Button("Accept as is", elem_id=f"{p}accept-btn")
            self.rewrite_parts = [self.rewrite_col, self.rewrite_box, self.diff]
        self.note = gr.Textbox(label="Note (optional)", elem_id=f"{p}note", visible=False, max_lines=3,
                               placeholder="Why? (optional; saved as you type)")
        with gr.Row():
            self.submit = gr.Button(submit_label, variant="primary", elem_id=f"{p}submit-btn",
                                    elem_classes=["key-submit"], interactive=False)
            if queue_actions:
                self.skip = gr.Button("S · Skip", elem_id=f"{p}skip-btn", elem_classes=["key-skip"],
                                      interactive=False)
                self.undo = gr.Button("Ctrl+Z · Undo last", elem_id=f"{p}undo-btn",
                                      elem_classes=["key-undo"])
        self.status = gr.Markdown(elem_id=f"{p}status", elem_classes=["status-line"])
        self.on_screen: dict[str, int | None] = {}  # session -> task id shown (guards late echoes, double presses)
        self._locks: dict[str, threading.Lock] = {}
        self._wire_client_side()

    def _wire_client_side(self) -> None:
        """Selections are set in the browser at once; the server only echoes the highlight."""
        for value, button in self.pair_buttons.items():
            button.click(None, None, self.choice, js=f"() => {value!r}")
        for i, button in enumerate(self.choice_buttons, start=1):
            button.click(None, [self.choice, self.order, self.mode], [self.choice, self.order], js=(
                f"(choice, order, mode) => {{ if (mode !== 'candidates') return ['{i}', order];"
                f" const parts = order ? order.split('{ORDER_SEP}') : [];"
                f" if (!parts.includes('{i}')) parts.push('{i}'); return [choice, parts.join('{ORDER_SEP}')]; }}"))
        self.reset.click(None, None, self.order, js="() => ''")

    @property
    def outputs(self) -> list[Any]:
        """Every component :meth:`show` may update."""
        return [self.state, self.task_id, self.mode, self.choice, self.info, self.suggestion, self.guidelines_box,
                self.guidelines, self.prompt, self.pair_row, self.pair_buttons_row, self.resp_a, self.resp_b,
                *self.pair_buttons.values(), self.body, self.choice_row, *self.choice_buttons, self.order_row,
                self.order, *self.rewrite_parts, self.note, self.submit, *self._queue_buttons()]

    @property
    def highlight_outputs(self) -> list[Any]:
        """The buttons whose variant shows the current selection."""
        return [*self.pair_buttons.values(), *self.choice_buttons]

    def _queue_buttons(self) -> list[Any]:
        return [self.skip] if hasattr(self, "skip") else []

    def showing(self, request: gr.Request | None) -> int | None:
        """The task id last shown to the session of ``request``."""
        return self.on_screen.get(getattr(request, "session_hash", None) or "")

    def session_lock(self, request: gr.Request | None) -> threading.Lock:
        """One lock per browser session: its submit / skip / decide presses run one after another."""
        session = getattr(request, "session_hash", None) or ""
        if len(self._locks) > 10_000:
            self._locks.clear()
        return self._locks.setdefault(session, threading.Lock())

    def stale(self, task_id: float | None, request: gr.Request | None) -> bool:
        """Whether a press was meant for a task no longer on screen (a double press: ignore it)."""
        return task_id is None or self.showing(request) != int(task_id)

    def show(self, view: dict[str, Any] | None, empty: str, request: gr.Request | None = None) -> dict[Any, Any]:
        """Updates that display ``view`` (a ``TaskView.as_dict()``), or ``empty`` when there is no task."""
        session = getattr(request, "session_hash", None)
        if session:
            if len(self.on_screen) > 10_000:
                self.on_screen.clear()
            self.on_screen[session] = None if view is None else int(view["task_id"])
        if view is None:
            hidden = [self.guidelines_box, self.prompt, self.pair_row, self.pair_buttons_row, self.body,
                      self.choice_row, self.order_row, self.note, *self.rewrite_parts[:1]]
            return {self.state: {}, self.task_id: None, self.mode: "", self.choice: "", self.order: "",
                    self.info: empty, self.suggestion: "", self.submit: gr.update(interactive=False),
                    **{c: gr.update(visible=False) for c in hidden},
                    **{c: gr.update(interactive=False) for c in self._queue_buttons()}}
        mode = mode_of(view)
        choice, order, note, text = restore(view)
        responses, classes = list(view["responses"]), list(view["classes"])
        state = {"task_id": int(view["task_id"]), "mode": mode, "classes": classes, "n": len(responses),
                 "completion": view.get("completion", "")}
        n_buttons = len(classes) if mode == "label" else len(responses) if mode == "candidates" else 0
        status = " · skipped earlier" if view.get("status") == "skipped" else ""
        info = (f"**Round {view['round_number']} · task {view['task_id']} · {TYPE_NAMES[mode]}**{status}"
                + (f" · {progress_line(view['queue'])}" if view.get("queue") else ""))
        prompt = view.get("prompt") or ""
        if mode == "candidates":
            body = "".join(f'<div class="candidate"><span class="num">{i}.</span>'
                           f'<div class="text-block">{esc(r)}</div></div>' for i, r in enumerate(responses, 1))
            body = f'<div class="block-title">Candidates</div>{body}'
        else:
            body = text_block("Text", view.get("text", "")) if mode == "label" else ""
        updates: dict[Any, Any] = {
            self.state: state, self.task_id: state["task_id"], self.mode: mode, self.choice: choice,
            self.order: order, self.note: gr.update(value=note, visible=mode in ("pair", "candidates")),
            self.info: info, self.suggestion: suggestion_line(view),
            self.guidelines_box: gr.update(visible=True),
            self.guidelines: view.get("guidelines") or "_No guidelines for this task._",
            self.prompt: gr.update(value=text_block("Prompt", prompt), visible=bool(prompt) and mode != "label"),
            self.pair_row: gr.update(visible=mode == "pair"),
            self.pair_buttons_row: gr.update(visible=mode == "pair"),
            self.resp_a: text_block("Response A", responses[0]) if mode == "pair" else "",
            self.resp_b: text_block("Response B", responses[1]) if mode == "pair" else "",
            self.body: gr.update(value=body, visible=mode in ("candidates", "label")),
            self.choice_row: gr.update(visible=n_buttons > 0), self.order_row: gr.update(visible=mode == "candidates"),
            self.submit: gr.update(interactive=True),
            **{c: gr.update(interactive=True) for c in self._queue_buttons()},
        }
        for i, button in enumerate(self.choice_buttons):
            label = f"{i + 1} · {classes[i]}" if mode == "label" and i < len(classes) else str(i + 1)
            updates[button] = gr.update(value=label, visible=i < min(n_buttons, MAX_CHOICES))
        if self.rewrite_parts:
            updates[self.rewrite_col] = gr.update(visible=mode == "rewrite")
            updates[self.rewrite_box] = text if mode == "rewrite" else ""
            updates[self.diff] = changes_html(state["completion"], text) if mode == "rewrite" else ""
        for component, update in self.highlight(state, choice, order).items():
            updates[component] = {**updates[component], **update} if isinstance(updates.get(component), dict) \
                else update
        return updates

    def highlight(self, state: dict[str, Any], choice: str, order: str) -> dict[Any, Any]:
        """Button variants: the selected choice (or the candidates already ordered) in the primary colour."""
        mode = state.get("mode")
        picked = set(parse_order(order)) if mode == "candidates" else (
            {int(choice) - 1} if mode == "label" and choice.isdigit() else set())
        updates: dict[Any, Any] = {b: gr.update(variant="primary" if mode == "pair" and v == choice else "secondary")
                                   for v, b in self.pair_buttons.items()}
        for i, button in enumerate(self.choice_buttons):
            updates[button] = gr.update(variant="primary" if i in picked else "secondary")
        return updates

    def answer(self, state: dict[str, Any], choice: str, order: str, note: str, text: str) -> dict[str, Any]:
        """The answer value for :func:`curate.annotate.answers.submit` from the current selection.

        Raises:
            gr.Error: nothing chosen yet (or the candidate order is incomplete).
        """
        mode = state.get("mode")
        if mode == "pair":
            if choice not in PAIR_CHOICES:
                raise gr.Error("Choose A, B, tie or both bad first (keys 1, 2, T, 0).", print_exception=False)
            return {"choice": choice, "note": note or ""}
        if mode == "label":
            classes = state.get("classes", [])
            if not choice.isdigit() or not 1 <= int(choice) <= len(classes):
                raise gr.Error(f"Choose a class first (keys 1-{len(classes)}).", print_exception=False)
            return {"label": classes[int(choice) - 1]}
        if mode == "candidates":
            positions, n = parse_order(order), int(state.get("n", 0))
            if sorted(positions) != list(range(n)):
                raise gr.Error(f"Order all {n} candidates first: press their numbers from best to worst.",
                               print_exception=False)
            return {"order": positions, "note": note or ""}
        if mode == "rewrite":
            return {"completion": text, "accepted_as_is": text == state.get("completion")}
        raise gr.Error("There is no task on screen.", print_exception=False)

    def draft(self, state: dict[str, Any], choice: str, order: str, note: str, text: str) -> dict[str, Any] | None:
        """What to keep as the task's draft (None: nothing worth saving)."""
        mode = state.get("mode")
        if mode == "pair" and (choice in PAIR_CHOICES or note):
            return {"choice": choice if choice in PAIR_CHOICES else None, "note": note}
        if mode == "label" and choice.isdigit() and 1 <= int(choice) <= len(state.get("classes", [])):
            return {"label": state["classes"][int(choice) - 1]}
        if mode == "candidates" and (order or note):
            return {"order_shown": parse_order(order), "note": note}
        if mode == "rewrite":
            return {"completion": text, "accepted_as_is": False}
        return None


@contextmanager
def service_errors() -> Iterator[None]:
    """Turn curate's deliberate errors into ``gr.Error`` (a toast in the browser; an error for API clients) titled
    with the error's class name, which :mod:`curate.client` raises again (``AccessError``, ``TaskStateError``...)."""
    try:
        yield
    except CurateError as exc:
        raise gr.Error(html.escape(str(exc), quote=False), title=type(exc).__name__, print_exception=False) from exc


def user_of(request: gr.Request | None) -> str | None:
    """The logged-in name of the session (never a name sent by the client)."""
    return getattr(request, "username", None) if request is not None else None
