"""PNG learning curves of a label-efficiency report: one panel per oracle-noise level.

Each panel shows the test metric against the number of labels: the mean over seeds of every strategy with a
min-max band, random sampling dashed, a dotted line at random's final value (the target of the ratio) and one
at the model trained on the whole pool (the ceiling). The legend gives each strategy's efficiency ratio and its
mean accuracy gain over random across the budgets; a note flags panels where random's curve is flat. A run with
null streams (``--null-streams``) gets a second panel below: each strategy's mean curve minus the mean of all random
streams, over a grey band of what one random stream reads against the mean of the others (chance).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from curate.errors import MissingDependencyError


def save_figure(fig: Any, path: Path) -> Path:
    """Lay ``fig`` out tight, write it to the PNG ``path`` (its folder made), close it; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ratio_text(ratio: dict[str, Any] | None) -> str:
    if ratio is None:
        return "baseline"
    if ratio["ratio"] is None:
        return "ratio n/a (never reaches random's final)"
    approx = "~" if ratio["extrapolated"] else ""
    return f"ratio {approx}{ratio['ratio']:.2f}"


def _chance_panel(ax: Any, budgets: list[float], mean: dict[str, Any] | None, colours: Any, order: list[str]) -> None:
    """Each strategy's gain over the mean random curve by budget, over the band chance gives (one random stream
    against the mean of the others)."""
    if not mean or "null_band" not in mean:
        ax.set_axis_off()
        return
    band = mean["null_band"]
    ax.fill_between(budgets, band["low"], band["high"], color="grey", alpha=0.3, lw=0,
                    label=f"chance: one of {mean['streams']} random streams against the others")
    ax.axhline(0.0, color="black", ls="--", lw=1)
    for name, gains in mean["gain_by_budget"].items():
        ratio = mean["ratios"][name]
        text = "never reaches its final" if ratio is None else f"ratio {ratio:.2f}"
        ax.plot(budgets, gains, color=colours(order.index(name) % 10) if name in order else None, lw=1.8, marker=".",
                label=f"{name} ({text}, p = {mean['p_value'][name]:.3f})")
    ax.set_title(f"against the mean of {mean['streams']} random streams", fontsize=9)
    ax.set_xlabel("labels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="best")


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
    nulls = {key: run.get("null", {}).get("mean_random") for key, run in runs.items()}
    rows = 2 if any(n and "null_band" in n for n in nulls.values()) else 1
    fig, axes = plt.subplots(rows, len(runs), figsize=(6.4 * len(runs), 4.8 * rows), squeeze=False, sharey="row")
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
    if rows == 2:
        for ax, (key, run) in zip(axes[1], runs.items(), strict=True):
            _chance_panel(ax, run["budgets"], nulls[key], colours, list(run["curves"]))
        axes[1][0].set_ylabel("minus the mean random curve")
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
