"""The reviewer's Adjudicate tab of the annotation app: list disputed tasks, show the answers, record a decision.

Rank and label disputes show a table of the answers (with names and notes); rewrite disputes show each person's
rewrite side by side, as a compact diff of the original, and the reviewer writes (or pastes) the final text.
"""

import time
from typing import Any

import gradio as gr

from apps.annotate_views import NO_DISPUTES, Refused, TaskPanel, answer_text, esc, service_errors, user_of
from apps.task_text import rewrites_side_by_side
from curate.annotate import answers as annotation
from curate.errors import CurateError
from curate.store.accounts import get_account
from curate.store.workspace import Workspace


def answers_html(view: dict[str, Any], answers: list[dict[str, Any]]) -> str:
    """The answers in disagreement: a table (rank, label), or the rewrites side by side."""
    if view.get("type") == "rewrite":
        return rewrites_side_by_side(str(view.get("completion", "")), answers)
    rows = "".join(f"<tr><td>{esc(a['annotator'])}</td><td>{esc(answer_text(view, a['value']))}</td>"
                   f"<td>{esc(a['value'].get('note', ''))}</td></tr>" for a in answers)
    return ('<div class="block-title">Answers in disagreement</div><table class="answers-table">'
            f"<tr><th>Annotator</th><th>Answer</th><th>Note</th></tr>{rows}</table>")


def wire_adjudicate(ws: Workspace, panel: TaskPanel, picker: Any, refresh: Any, answers: Any, tab: Any,
                    private: dict[str, Any]) -> tuple[Any, Any, list[Any]]:
    """Disputes list, the answers in disagreement (with names) and the reviewer's decision.

    Returns ``(fn, inputs, outputs)`` of the landing step that fills the tab for a reviewer at page load (and
    leaves it alone for anyone else), for ``demo.load(...).then(*landing)``.
    """
    store = ws.store

    # What the reviewer is choosing or typing on the task on screen: a revisit of the tab (or a refresh) that finds
    # the same task on top leaves it alone. Re-sent, it wiped a choice pressed while the revisit was in flight.
    in_progress = (panel.state, panel.choice, panel.order, panel.note, panel.rewrite_box, panel.pairs, panel.choices)

    def listing(request: gr.Request, wanted: Any = None, status: str = "", keep: bool = False) -> dict[Any, Any]:
        on_screen = panel.showing(request)
        with service_errors():
            found = annotation.disputes(store, user_of(request))
        choices = [(f"task {d['task_id']} · {d['view'].type} · round {d['view'].round_number} · "
                    f"{len(d['answers'])} answers", d["task_id"]) for d in found]
        item = next((d for d in found if d["task_id"] == wanted), found[0] if found else None)
        if item is None:
            return {picker: gr.update(choices=[], value=None), answers: "",
                    **panel.show(None, NO_DISPUTES, request), panel.status: status}
        view = item["view"].as_dict()
        shown = panel.show(view, NO_DISPUTES, request)
        if keep and on_screen == item["task_id"]:
            shown.update({c: gr.skip() for c in in_progress})
        return {picker: gr.update(choices=choices, value=item["task_id"]), answers: answers_html(view, item["answers"]),
                **shown, panel.status: status}

    def pick(task_id: Any, request: gr.Request) -> dict[Any, Any]:
        return listing(request, task_id)

    def revisit(request: gr.Request) -> dict[Any, Any]:
        return listing(request, keep=True)

    def landing(request: gr.Request) -> dict[Any, Any]:
        try:
            reviewer = get_account(store, user_of(request)).can("reviewer")
        except CurateError:
            reviewer = False
        return listing(request) if reviewer else {c: gr.skip() for c in outputs}

    def decide(task_id: float | None, choice: str, order: str, note: str, text: str, state: dict[str, Any],
               request: gr.Request) -> dict[Any, Any]:
        with panel.session_lock(request):
            if panel.stale(task_id, request):
                return {c: gr.skip() for c in outputs}
            try:
                value = panel.answer(state, choice or "", order or "", note or "", text or "")
                seconds = round(time.monotonic() - state["shown_at"], 3) if "shown_at" in state else None
                done = annotation.adjudicate(store, user_of(request), int(state["task_id"]), value, seconds=seconds)
            except (Refused, CurateError) as exc:
                return {**{c: gr.skip() for c in outputs}, **panel.refusal(str(exc))}
            return listing(request, None, f"Recorded decision #{done.annotation_id} on task {state['task_id']}.")

    outputs = [picker, answers, *panel.outputs, panel.status]
    leaf: dict[str, Any] = {"show_progress_on": [panel.status], **private}  # see build_app on loading statuses
    tab.select(revisit, None, outputs, **leaf)
    refresh.click(revisit, None, outputs, **leaf)
    picker.input(pick, [picker], outputs, **leaf)

    def echo(task_id: float | None, choice: str, order: str, state: dict[str, Any],
             request: gr.Request) -> dict[Any, Any]:
        if task_id is None or panel.showing(request) != int(task_id):  # a late echo for a task already gone
            return {c: gr.skip() for c in panel.highlight_outputs}
        return panel.highlight(state, choice or "", order or "")

    for component in (panel.choice, panel.order):
        component.change(echo, [panel.task_id, panel.choice, panel.order, panel.state], panel.highlight_outputs,
                         show_progress="hidden", **leaf)
    panel.submit.click(decide, [panel.task_id, panel.choice, panel.order, panel.note, panel.rewrite_box, panel.state],
                       outputs, trigger_mode="multiple", show_progress="minimal", show_progress_on=[panel.status],
                       **private)
    return landing, None, outputs
