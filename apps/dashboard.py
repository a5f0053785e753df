"""The reviewer's dashboard tab of the annotation app: progress, agreement, answer distribution, learning curve."""

from pathlib import Path
from typing import Any

import gradio as gr

from apps.annotate_views import esc, service_errors
from curate.annotate.agreement import agreement_report
from curate.rounds.assignment import set_hide_suggestions
from curate.store.accounts import require
from curate.store.workspace import Workspace


def newest_learning_curve(ws: Workspace) -> Path | None:
    """The newest ``reports/learning_curve*.png`` of the workspace, if any."""
    found = sorted(ws.reports_dir.glob("learning_curve*.png"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def distribution_figure(distribution: dict[str, dict[str, int]]) -> Any:
    """A horizontal bar chart of current answers per class (per task type)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    labels = [f"{t}: {'order ' if ',' in c else ''}{c}" for t, counts in distribution.items() for c in counts]
    values = [n for counts in distribution.values() for n in counts.values()]
    fig = Figure(figsize=(6.0, max(2.4, 0.5 * len(labels) + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    if not labels:
        ax.text(0.5, 0.5, "No answers yet", ha="center", va="center", fontsize=12)
        ax.set_axis_off()
        return fig
    ax.barh(labels[::-1], values[::-1], color="#6366f1")
    ax.set_xlabel("current answers")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _fmt(value: Any) -> Any:
    return "n/a" if value is None else value


def _picture(path: Path | None) -> Any:
    """The PNG at ``path`` loaded in memory (served without opening the workspace folder to the web)."""
    if path is None:
        return None
    from PIL import Image

    with Image.open(path) as img:
        return img.copy()


class DashboardTab:
    """Progress, agreement, throughput and label distribution (reviewers), suggestion settings (admins)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        with gr.Row():
            self.summary = gr.Markdown(elem_id="dashboard-summary")
            self.refresh = gr.Button("Refresh", elem_id="dashboard-refresh", scale=0, min_width=120)
        with gr.Row():
            with gr.Column(scale=3):
                gr.Markdown("#### Agreement: Cohen's kappa per pair, Krippendorff's alpha per task type")
                self.agreement = gr.Dataframe(headers=["task type", "annotators", "shared items", "kappa", "alpha"],
                                              interactive=False, elem_id="dashboard-agreement")
                gr.Markdown("#### Progress per round and annotator")
                self.progress = gr.Dataframe(headers=["round", "annotator", "assigned", "done", "done %"],
                                             interactive=False, elem_id="dashboard-progress")
                gr.Markdown("#### Throughput")
                self.throughput = gr.Dataframe(headers=["annotator", "answers", "median seconds", "per hour"],
                                               interactive=False, elem_id="dashboard-throughput")
            with gr.Column(scale=2):
                self.plot = gr.Plot(label="Label distribution", format="png", elem_id="dashboard-plot")
                self.curve_note = gr.Markdown(elem_id="dashboard-curve-note")
                self.curve = gr.Image(label="Learning curve", type="pil", interactive=False, visible=False,
                                      elem_id="dashboard-curve")
        with gr.Group(visible=False) as self.admin_box:
            gr.Markdown("#### Admin: the model's suggestions")
            with gr.Row():
                self.round = gr.Number(label="Round (empty: the latest)", precision=0, elem_id="admin-round")
                self.hide = gr.Checkbox(label="Hide suggestions in this round", value=True, elem_id="admin-hide")
                self.apply = gr.Button("Apply", elem_id="admin-apply")
            self.admin_status = gr.Markdown(elem_id="admin-status")

    def render(self, request: gr.Request) -> dict[Any, Any]:
        """The report for a reviewer (or an error toast for anyone else)."""
        store = self.ws.store
        with service_errors():
            require(store, request.username, "reviewer")
            report = agreement_report(store)
        statuses = report["tasks_by_status"]
        summary = " · ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "no tasks yet"
        agreement = []
        for task_type, rep in report["agreement"].items():
            if not rep["pairs"]:
                agreement.append([task_type, "no overlapping answers yet", 0, "n/a", _fmt(rep["alpha"])])
            for pair in rep["pairs"]:
                agreement.append([task_type, f"{pair['a']} · {pair['b']}", pair["items"], _fmt(pair["kappa"]),
                                  _fmt(rep["alpha"])])
        progress = [[p["round"], p["annotator"], p["assigned"], p["done"],
                     round(100 * p["done"] / p["assigned"]) if p["assigned"] else 0] for p in report["progress"]]
        throughput = [[t["annotator"], t["answers"], _fmt(t["median_seconds"]), _fmt(t["per_hour"])]
                      for t in report["throughput"]]
        curve = newest_learning_curve(self.ws)
        note = ("" if curve else "_No learning curve yet: it appears here once a round has been trained and "
                "evaluated (reports/learning_curve*.png)._")
        return {self.summary: f"**Tasks:** {esc(summary)}", self.agreement: agreement or [["-", "-", 0, "n/a", "n/a"]],
                self.progress: progress, self.throughput: throughput or [["-", 0, "n/a", "n/a"]],
                self.plot: distribution_figure(report["label_distribution"]), self.curve_note: note,
                self.curve: gr.update(value=_picture(curve), visible=curve is not None)}

    def set_hidden(self, round_number: float | None, hide: bool, request: gr.Request) -> str:
        """Admin: hide or show the suggestions of a round."""
        number = None if round_number is None else int(round_number)
        with service_errors():
            account = require(self.ws.store, request.username, "admin")
            done = set_hide_suggestions(self.ws.store, bool(hide), round_number=number, actor=account.name)
        return f"Suggestions are now {'hidden' if hide else 'shown'} in round {done}."

    def wire(self, tab: Any, private: dict[str, Any]) -> None:
        """Refresh on opening the tab and on the button; the admin control."""
        outputs = [self.summary, self.agreement, self.progress, self.throughput, self.plot, self.curve_note,
                   self.curve]
        leaf = {"show_progress_on": [self.summary], **private}  # one small leaf shows progress (see build_app)
        tab.select(self.render, None, outputs, **leaf)
        self.refresh.click(self.render, None, outputs, **leaf)
        self.apply.click(self.set_hidden, [self.round, self.hide], self.admin_status, **private)


