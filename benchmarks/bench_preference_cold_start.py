"""The cold branch of preference-rank: which pairs to rank first, before any is ranked
(see :mod:`curate.bench.preference_cold_start`).

Sets: those of the preference suite (AlpacaEval and UltraFeedback judge, HH-RLHF harmless the control), SmolLM2
features (cached in --cache-dir, shared with ``bench_selection_preference.py --features smollm2``). Writes
``benchmarks/results/preference_cold_start.json`` and a plot beside it.

Usage::

    .venv/bin/python benchmarks/bench_preference_cold_start.py [--seeds 10] [--sets alpacaeval,ultrafeedback]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def plot(reports: list[dict[str, Any]], path: Path) -> Path:
    """One panel per set: each cold pick followed by prompt coverage, and random throughout (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(5 * len(reports), 4), squeeze=False)
    for ax, report in zip(axes[0], reports, strict=True):
        for key, curve in report["curves"].items():
            if key.endswith("-> prompt-coverage") or key == "random -> random":
                ax.plot(report["budgets"], curve["mean"], marker="o", ms=3, label=key,
                        linestyle="--" if key == "random -> random" else "-")
        ax.set_title(f"{report['set']} ({report['seeds']} seeds)" + ("" if report["judge"] else ", control"))
        ax.set_xlabel("ranked pairs")
        ax.set_ylabel("test pairwise accuracy")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("first batch picked with no label, then prompt coverage (the recipe's warm scorer)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    """Run every set found and write the JSON and plot; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--sets", default="", help="comma list of set names (default: every set found)")
    ap.add_argument("--start", type=int, default=50, help="the first batch, picked with no label")
    ap.add_argument("--budget", type=int, default=550)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "preference_cold_start.json")
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    from curate.bench.label_efficiency import rich_progress
    from curate.bench.preference_cold_start import cold_start_verdict, run_cold_start
    from curate.bench.preference_suite import shared_preference_sets

    sets, missing = shared_preference_sets(args.data)
    for message in missing:
        print(message, file=sys.stderr)
    if args.sets:
        sets = [s for s in sets if s.name in set(args.sets.split(","))]
    if not sets:
        print(f"skipped: no preference set under {args.data}. Put ../shared/data beside the repository.")
        return 0
    reports = []
    with threadpool_limits(limits=1), rich_progress(transient=True) as progress:
        for pset in sets:
            reports.append(run_cold_start(pset, seeds=args.seeds, cache_dir=args.cache_dir, start=args.start,
                                          budget=args.budget, progress=progress))
            first = reports[-1]["first_budget_gain_over_random"]
            print(f"{pset.name}: gain over random at {args.start} labels: " + ", ".join(
                f"{k.split(' ->')[0]} {v['mean']:+.4f} {v['ci95']}" for k, v in first.items() if k.endswith("random")),
                flush=True)
    result: dict[str, Any] = {"benchmark": "preference_cold_start", "sets": {r["set"]: r for r in reports},
              "verdict": cold_start_verdict(reports),
              "command": ".venv/bin/python benchmarks/bench_preference_cold_start.py " + shlex.join(sys.argv[1:])}
    png = plot(reports, args.out.with_suffix(".png")).resolve()
    result["plot"] = str(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"shipped cold pick ({result['verdict']['shipped']}) loses to random on a judge set: "
          f"{result['verdict']['shipped_loses']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
