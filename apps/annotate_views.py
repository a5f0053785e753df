"""The task panel of the annotation app: how a task view is shown and how clicks and keys become an answer.

The panel holds no business logic: it renders :meth:`curate.annotate.task_views.TaskView.as_dict` output (texts
as sanitised Markdown, :mod:`apps.task_text`) and builds the answer values that :mod:`curate.annotate.answers`
checks and stores. The person's current selection lives in the browser (hidden components set by client-side
JavaScript), so a key press followed at once by Ctrl+Enter never races a server round trip.

Layout (fits 1366x768): the task line, guidelines (open on the first task of a set of guidelines, collapsed after),
the prompt and the responses in the page's one scroll area, and a fixed action bar at the bottom of the window
with the progress bar, the status line, the choices and the actions.
"""

import hashlib
import html
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr

from apps.task_text import (
    TYPE_NAMES,
    answer_text,
    changes_html,
    diff_html,
    esc,
    markdown_block,
    mode_of,
    parse_order,
    pick_buttons_html,
    progress_html,
    restore,
    suggestion_line,
    text_block,
)
from curate.annotate.values import PAIR_CHOICES
from curate.errors import CurateError

MAX_CHOICES = 20  # class / candidate buttons; keys 1-9 press the first nine, or two keys (01-20) beyond nine
# A click on a pick button (task_text.pick_buttons_html) becomes the component's click event, and that event's
# browser-side function turns it into the choice (or the next candidate of the order) with no server round trip.
PICK_ON_LOAD = ("element.addEventListener('click', (e) => { const b = e.target.closest && e.target.closest("
                "'[data-pick]'); if (b && !b.disabled) { window.curatePick = b.dataset.pick; trigger('click'); } });")
PICK_CHOICE = ("(choice, order, mode) => { const v = String(window.curatePick || ''); if (!v) return [choice, order];"
               " if (mode !== 'candidates') return [v, order]; const parts = order ? order.split(' > ') : [];"
               " if (!parts.includes(v)) parts.push(v); return [choice, parts.join(' > ')]; }")
NO_DISPUTES = "### No disputed tasks.\nDisagreements between annotators show up here for a decision."
DEFAULT_MIN_READ_SECONDS = 6.0  # per 1,000 characters before "accept as is" is taken (skimming speed)
UNCHANGED = ("The text is unchanged. To accept it as is, press Ctrl+Shift+Enter (or click Accept as is); "
             "to rewrite it, press E and edit.")

__all__ = ["NO_DISPUTES", "TaskPanel", "answer_text", "changes_html", "diff_html", "esc", "restore",
           "service_errors", "user_of"]


class Refused(Exception):
    """An action the panel turns down with a message (shown as a toast and in the status line)."""


class TaskPanel:
    """The components that show one task and collect one answer (Annotate and Adjudicate tabs).

    Args:
        prefix: element-id prefix (``adj-`` for the Adjudicate tab).
        submit_label: the submit button's text.
        queue_actions: show Skip, Undo and Accept as is (the annotator's queue), not on the Adjudicate tab.
        min_read_seconds: seconds per 1,000 characters a rewrite must have been on screen before it can be
            accepted as is (0 turns the guard off).
    """

    def __init__(self, prefix: str = "", *, submit_label: str = "Submit · Ctrl+Enter", queue_actions: bool = True,
                 min_read_seconds: float = DEFAULT_MIN_READ_SECONDS) -> None:
        p = prefix
        self.min_read_seconds = float(min_read_seconds)
        self.state = gr.State({})
        self.task_id = gr.Number(visible=False, precision=0)
        self.mode = gr.Textbox(visible=False)
        self.choice = gr.Textbox(visible=False)
        self.info = gr.Markdown(elem_id=f"{p}task-info", elem_classes=["task-info"])
        self.suggestion = gr.Markdown(elem_id=f"{p}suggestion", elem_classes=["suggestion"], visible=False)
        with gr.Accordion("Guidelines", open=True, visible=False, elem_id=f"{p}guidelines-box",
                          elem_classes=["guidelines-box"]) as self.guidelines_box:
            self.guidelines = gr.Markdown(elem_id=f"{p}guidelines")
        self.prompt = gr.HTML(elem_id=f"{p}prompt", visible=False)
        with gr.Row(visible=False, equal_height=False, elem_classes=["pair-row"]) as self.pair_row:
            self.resp_a = gr.HTML(elem_id=f"{p}response-a")
            self.resp_b = gr.HTML(elem_id=f"{p}response-b")
        self.body = gr.HTML(elem_id=f"{p}body", visible=False)
        with gr.Column(visible=False) as self.rewrite_col:
            self.rewrite_box = gr.Textbox(label="Completion · E edits, Esc leaves the box, Ctrl+Enter submits",
                                          lines=6, max_lines=80, elem_id=f"{p}rewrite-box",
                                          elem_classes=["rewrite-box"])
        with gr.Column(elem_id=f"{p}action-bar", elem_classes=["action-bar"]):
            with gr.Row(elem_classes=["bar-top"]):
                self.progress = gr.HTML(elem_id=f"{p}progress", elem_classes=["bar-progress"])
                self.status = gr.Markdown(elem_id=f"{p}status", elem_classes=["status-line"])
            self.diff = gr.HTML(elem_id=f"{p}rewrite-diff", visible=False, elem_classes=["bar-diff"])
            self.choices = gr.HTML(elem_id=f"{p}choices", elem_classes=["choice-row"], visible=False,
                                   js_on_load=PICK_ON_LOAD)
            with gr.Row(visible=False, elem_classes=["order-row"]) as self.order_row:
                self.order = gr.Textbox(label="Your order, best first (press the numbers in turn)", interactive=False,
                                        elem_id=f"{p}order", scale=4)
                self.reset = gr.Button("R · Reset order", elem_id=f"{p}reset-btn", elem_classes=["key-reset"],
                                       scale=1)
            with gr.Row(elem_classes=["bar-actions"]):
                self.pairs = gr.HTML(elem_id=f"{p}pairs", elem_classes=["pair-picks"], visible=False, scale=0,
                                     js_on_load=PICK_ON_LOAD)
                self.note = gr.Textbox(show_label=False, elem_id=f"{p}note", visible=False, max_lines=1, scale=2,
                                       placeholder="Note (optional): why? Saved as you type.", container=False)
                self.submit = gr.Button(submit_label, variant="primary", elem_id=f"{p}submit-btn",
                                        elem_classes=["key-submit"], interactive=False, scale=1, min_width=180)
                if queue_actions:
                    self.accept = gr.Button("Accept as is · Ctrl+Shift+Enter", elem_id=f"{p}accept-btn",
                                            elem_classes=["key-accept"], visible=False, scale=1, min_width=200)
                    self.skip = gr.Button("S · Skip", elem_id=f"{p}skip-btn", elem_classes=["key-skip"],
                                          interactive=False, scale=0, min_width=100)
                    self.undo = gr.Button("Ctrl+Z · Undo", elem_id=f"{p}undo-btn", elem_classes=["key-undo"],
                                          scale=0, min_width=140)
        self.rewrite_parts: list[Any] = [self.rewrite_col, self.rewrite_box, self.diff]
        self.prefix = p
        self.on_screen: dict[str, int | None] = {}  # session -> task id shown (guards late echoes, double presses)
        self.seen_guidelines: dict[str, set[str]] = {}  # session -> guidelines already shown open once
        self._locks: dict[str, threading.Lock] = {}
        self._sent: dict[str, dict[int, str]] = {}  # session -> component id -> last update sent by show()
        # Components only show() changes (never the browser, never the echoes): an update equal to the last one
        # sent to the session is left out, so the browser re-renders less between tasks.
        self._server_owned = {id(c) for c in (self.info, self.suggestion, self.guidelines,
                                              self.prompt, self.pair_row, self.body, self.order_row,
                                              self.rewrite_col, self.submit, self.progress,
                                              *self._queue_buttons())}
        self._wire_client_side()

    def _wire_client_side(self) -> None:
        """Selections are set in the browser at once; the server only echoes the highlight."""
        for picks in (self.pairs, self.choices):
            picks.click(None, [self.choice, self.order, self.mode], [self.choice, self.order], js=PICK_CHOICE)
        self.reset.click(None, None, self.order, js="() => ''")

    @property
    def outputs(self) -> list[Any]:
        """Every component :meth:`show` may update."""
        return [self.state, self.task_id, self.mode, self.choice, self.info, self.suggestion, self.guidelines_box,
                self.guidelines, self.prompt, self.pair_row, self.resp_a, self.resp_b,
                self.pairs, self.body, self.choices, self.order_row,
                self.order, *self.rewrite_parts, self.note, self.submit, self.progress, *self._queue_buttons()]

    @property
    def highlight_outputs(self) -> list[Any]:
        """The pick buttons, whose colour shows the current selection."""
        return [self.pairs, self.choices]

    def _queue_buttons(self) -> list[Any]:
        return [self.skip, self.accept] if hasattr(self, "skip") else []

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

    def _guidelines_open(self, session: str | None, text: str) -> bool:
        """Open on the first task of a set of guidelines in this browser session, collapsed afterwards."""
        seen = self.seen_guidelines.setdefault(session or "", set())
        if len(self.seen_guidelines) > 10_000:
            self.seen_guidelines.clear()
        key = hashlib.sha256(text.encode()).hexdigest()
        first = key not in seen
        seen.add(key)
        return first

    def show(self, view: dict[str, Any] | None, empty: str, request: gr.Request | None = None) -> dict[Any, Any]:
        """Updates that display ``view`` (a ``TaskView.as_dict()``), or ``empty`` when there is no task."""
        session = getattr(request, "session_hash", None)
        if session:
            if len(self.on_screen) > 10_000:
                self.on_screen.clear()
            self.on_screen[session] = None if view is None else int(view["task_id"])
        if view is None:
            hidden = [self.guidelines_box, self.prompt, self.pair_row, self.pairs, self.body,
                      self.choices, self.order_row, self.note, self.rewrite_col, self.diff, self.suggestion]
            return self._changed(session, {
                self.state: {}, self.task_id: None, self.mode: "", self.choice: "", self.order: "",
                self.info: empty, self.progress: "", self.submit: gr.update(interactive=False),
                **{c: gr.update(visible=False) for c in hidden},
                **{c: gr.update(interactive=False, visible=c is not getattr(self, "accept", None))
                   for c in self._queue_buttons()}})
        mode = mode_of(view)
        choice, order, note, text = restore(view)
        responses, classes = list(view["responses"]), list(view["classes"])
        state = {"task_id": int(view["task_id"]), "mode": mode, "classes": classes, "n": len(responses),
                 "completion": view.get("completion", ""), "shown_at": time.monotonic()}
        pairs, choices = self._picks(state, choice, order)
        status = " · skipped earlier" if view.get("status") == "skipped" else ""
        info = f"**Round {view['round_number']} · task {view['task_id']} · {TYPE_NAMES[mode]}**{status}"
        prompt = view.get("prompt") or ""
        if mode == "candidates":
            body = "".join(f'<div class="candidate">{markdown_block(f"Candidate {i}", r)}</div>'
                           for i, r in enumerate(responses, 1))
        else:
            body = text_block("Text", view.get("text", "")) if mode == "label" else ""
        guidelines = view.get("guidelines") or ""
        suggestion = suggestion_line(view)
        updates: dict[Any, Any] = {
            self.state: state, self.task_id: state["task_id"], self.mode: mode, self.choice: choice,
            self.order: order, self.note: gr.update(value=note, visible=mode in ("pair", "candidates")),
            self.info: info, self.suggestion: gr.update(value=suggestion, visible=bool(suggestion)),
            self.guidelines_box: gr.update(visible=True, open=self._guidelines_open(session, guidelines)
                                           if guidelines else False,
                                           label="Guidelines" if guidelines else "Guidelines (none for this task)"),
            # '<' escaped: Markdown would drop "<PERSON_1>" as an unknown HTML tag, the very text guidelines name
            self.guidelines: guidelines.replace("<", "&lt;") or "_No guidelines for this task._",
            self.prompt: gr.update(value=markdown_block("Prompt", prompt), visible=bool(prompt) and mode != "label"),
            self.pair_row: gr.update(visible=mode == "pair"),
            self.resp_a: markdown_block("Response A", responses[0]) if mode == "pair" else "",
            self.resp_b: markdown_block("Response B", responses[1]) if mode == "pair" else "",
            self.body: gr.update(value=body, visible=mode in ("candidates", "label")),
            self.pairs: gr.update(value=pairs, visible=bool(pairs)),
            self.choices: gr.update(value=choices, visible=bool(choices)),
            self.order_row: gr.update(visible=mode == "candidates"),
            self.submit: gr.update(interactive=True), self.progress: progress_html(view.get("queue")),
            self.rewrite_col: gr.update(visible=mode == "rewrite"),
            self.rewrite_box: text if mode == "rewrite" else "",
            self.diff: gr.update(value=changes_html(state["completion"], text) if mode == "rewrite" else "",
                                 visible=mode == "rewrite"),
        }
        for c in self._queue_buttons():
            updates[c] = gr.update(interactive=True, visible=c is not self.accept or mode == "rewrite")
        return self._changed(session, updates)

    def _changed(self, session: str | None, updates: dict[Any, Any]) -> dict[Any, Any]:
        """``updates`` without those of server-owned components equal to the last one sent to ``session``."""
        if not session:
            return updates
        if len(self._sent) > 10_000:
            self._sent.clear()
        sent = self._sent.setdefault(session, {})
        kept: dict[Any, Any] = {}
        for component, update in updates.items():
            if id(component) in self._server_owned:
                key = repr(update)
                if sent.get(id(component)) == key:
                    continue
                sent[id(component)] = key
            kept[component] = update
        return kept

    def highlight(self, state: dict[str, Any], choice: str, order: str) -> dict[Any, Any]:
        """The pick buttons with the selected choice (or the candidates already ordered) in the primary colour."""
        pairs, choices = self._picks(state, choice, order)
        return {self.pairs: pairs or gr.skip(), self.choices: choices or gr.skip()}

    def _picks(self, state: dict[str, Any], choice: str, order: str) -> tuple[str, str]:
        """The HTML of the pair buttons and of the class / candidate buttons (empty when the task has none)."""
        mode = str(state.get("mode") or "")
        picked = set(parse_order(order)) if mode == "candidates" else (
            {int(choice) - 1} if mode == "label" and choice.isdigit() else set())
        classes = list(state.get("classes", []))
        n_buttons = min(MAX_CHOICES, len(classes) if mode == "label" else int(state.get("n", 0))
                        if mode == "candidates" else 0)
        return pick_buttons_html(self.prefix, mode, classes, n_buttons, choice, picked)

    def answer(self, state: dict[str, Any], choice: str, order: str, note: str, text: str) -> dict[str, Any]:
        """The answer value for :func:`curate.annotate.answers.submit` from the current selection.

        Raises:
            Refused: nothing chosen yet (or the candidate order is incomplete).
        """
        mode = state.get("mode")
        if mode == "pair":
            if choice not in PAIR_CHOICES:
                raise Refused("Choose A, B, tie or both bad first (keys 1, 2, T, 0).")
            return {"choice": choice, "note": note or ""}
        if mode == "label":
            classes = state.get("classes", [])
            if not choice.isdigit() or not 1 <= int(choice) <= len(classes):
                keys = f"1-{len(classes)}" if len(classes) <= 9 else f"01-{len(classes):02d}, two keys each"
                raise Refused(f"Choose a class first (keys {keys}).")
            return {"label": classes[int(choice) - 1]}
        if mode == "candidates":
            positions, n = parse_order(order), int(state.get("n", 0))
            if sorted(positions) != list(range(n)):
                raise Refused(f"Order all {n} candidates first: press their numbers from best to worst.")
            return {"order": positions, "note": note or ""}
        if mode == "rewrite":
            return {"completion": text, "accepted_as_is": text == state.get("completion")}
        raise Refused("There is no task on screen.")

    def seconds_on_task(self, state: dict[str, Any]) -> float | None:
        """Seconds since the task was put on screen (server clock), or None."""
        shown = state.get("shown_at")
        return round(time.monotonic() - float(shown), 3) if isinstance(shown, int | float) else None

    def check_read(self, state: dict[str, Any]) -> float | None:
        """Refuse "accept as is" sooner than :attr:`min_read_seconds` per 1,000 characters after the text appeared;
        returns the seconds on the task (recorded with the answer, so the guard and the record agree)."""
        seconds = self.seconds_on_task(state)
        needed = self.min_read_seconds * len(str(state.get("completion", ""))) / 1000
        if seconds is not None and seconds < needed:
            raise Refused(f"Read the text before accepting it as is: {len(state.get('completion', '')):,} characters "
                          f"need at least {needed:.0f} s on screen, and it has been {seconds:.1f} s. "
                          f"Accept again in {needed - seconds:.0f} s, or edit it.")
        return seconds

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

    def refusal(self, message: str) -> dict[Any, Any]:
        """A toast and the status line (replaced, never stacked) saying why nothing was saved."""
        gr.Warning(message, duration=8)
        return {self.status: f"**Not saved:** {esc(message)}"}


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
