"""PNG learning curves of a label-efficiency report: one panel per oracle-noise level.

Each panel shows the test metric against the number of labels: the mean over seeds of every strategy with a
min-max band, random sampling dashed, a dotted line at random's final value (the target of the ratio) and one
at the model trained on the whole pool (the ceiling). The legend gives each strategy's efficiency ratio and its
mean accuracy gain over random across the budgets; a note flags panels where random's curve is flat.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from curate.errors import MissingDependencyError


def _ratio_text(ratio: dict[str, Any] | None) -> str:
    if ratio is None:
        return "baseline"
    if ratio["ratio"] is None:
        return "ratio n/a (never reaches random's final)"
    approx = "~" if ratio["extrapolated"] else ""
    return f"ratio {approx}{ratio['ratio']:.2f}"


def plot_report(report: dict[str, Any], path: Path) -> Path:
    """Draw ``report`` (from :func:`curate.bench.label_efficiency.run_benchmark`) to the PNG ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "app", "Plotting the learning curves") from exc
    runs = report["runs"]
    many = max(len(run["curves"]) for run in runs.values()) > 6  # a legend that would hide the curves: beside
    fig, axes = plt.subplots(1, len(runs), figsize=(6.4 * len(runs), 4.8), squeeze=False, sharey=True)
    beside: list[Any] = []
    colours = plt.get_cmap("tab10")
    for ax, (key, run) in zip(axes[0], runs.items(), strict=True):
        budgets = run["budgets"]
        for i, (name, curve) in enumerate(run["curves"].items()):
            is_random = name == "random"
            colour = "black" if is_random else colours(i % 10)
            gain = run.get("mean_gain_over_random", {}).get(name, {}).get("mean")
            extra = f", mean gain {gain:+.3f}" if gain is not None else ""
            label = f"{name} ({_ratio_text(run['ratios'].get(name))}{extra})"
            ax.plot(budgets, curve["mean"], "--" if is_random else "-", color=colour, label=label, lw=1.8,
                    marker="." if len(budgets) <= 30 else None)
            ax.fill_between(budgets, curve["min"], curve["max"], color=colour, alpha=0.12, lw=0)
        final = run["curves"]["random"]["mean"][-1]
        ax.axhline(final, color="grey", ls=":", lw=1)
        ax.axhline(run["full_pool_accuracy"], color="tab:olive", ls="-.", lw=1,
                   label=f"whole pool labelled ({run['full_pool_accuracy']:.3f})")
        ax.set_title(f"oracle noise {run['oracle_noise']:g} ({run['flipped_answers_in_pool']} answers flipped)")
        if report.get("verdict", {}).get(key, {}).get("random_curve_flat"):
            ax.text(0.02, 0.97, "random's curve is flat over the second half (gain < test standard error):\n"
                    "the ratios are not meaningful; compare the mean gains", transform=ax.transAxes, fontsize=8,
                    va="top", color="tab:red")
        ax.set_xlabel("labels")
        ax.grid(alpha=0.3)
        if many:  # beside the panel, out of tight_layout's way; savefig's tight box is told to keep it
            beside.append(ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0)))
            beside[-1].set_in_layout(False)
        else:
            ax.legend(fontsize=8, loc="lower right")
    axes[0][0].set_ylabel(report["metric"])
    seeds = report["config"]["seeds"]
    title = (f"label efficiency, {report['task']}: {Path(report['data']['pool_file']['source']).name}, "
             f"{report['features']['name']}, {seeds} seeds (mean, min-max band)")
    fig.suptitle(textwrap.fill(title, 100), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight",
                bbox_extra_artists=[*fig.get_default_bbox_extra_artists(), *beside])
    plt.close(fig)
    return path
