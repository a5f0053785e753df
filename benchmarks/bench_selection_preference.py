"""Preference label efficiency across data sets, with the acquisition chosen leave-one-data-set-out
(see :mod:`curate.bench.preference_suite`).

Sets: AlpacaEval GPT-4 judgements (length-balanced) and the UltraFeedback subset from ../shared/data/preference_pairs
(judge sets), and HH-RLHF harmless (the noisy control: reported, never used to choose). Writes
``benchmarks/results/selection_preference.json`` and one learning-curve plot per set beside it.

Usage::

    .venv/bin/python benchmarks/bench_selection_preference.py [--seeds 10] [--sets alpacaeval,ultrafeedback]
        [--features tfidf|smollm2] [--out FILE]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10,
                        help="seeds per candidate (10: at 5 the per-seed intervals were too wide to judge)")
    parser.add_argument("--sets", default="", help="comma list of set names (default: every set found)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=None,
                        help="default benchmarks/results/selection_preference.json (_smollm2.json with those features)")
    parser.add_argument("--features", default="tfidf", choices=("tfidf", "smollm2"),
                        help="tfidf (no model) or smollm2 (the packaged LM's last layer; ~0.2 s per response)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache",
                        help="where smollm2 features are cached (a rerun reads them back)")
    parser.add_argument("--from-reports", type=Path, nargs="+", default=None,
                        help="build the suite from saved per-set reports or suite JSONs (sets run apart, or stored "
                             "runs rescored by the current metrics) instead of running")
    args = parser.parse_args()
    if args.out is None:
        suffix = "" if args.features == "tfidf" else f"_{args.features}"
        args.out = ROOT / "benchmarks" / "results" / f"selection_preference{suffix}.json"

    from threadpoolctl import threadpool_limits

    from curate.bench.label_efficiency import rich_progress
    from curate.bench.label_efficiency_plot import plot_report
    from curate.bench.preference_suite import run_preference_suite, shared_preference_sets, suite_result

    sets, missing = shared_preference_sets(args.data)
    for message in missing:
        print(message, file=sys.stderr)
    if args.sets:
        wanted = set(args.sets.split(","))
        sets = [s for s in sets if s.name in wanted]
    if len([s for s in sets if s.judge]) < 2:
        sys.exit(f"the preference suite needs at least two judge sets under {args.data}; found "
                 f"{[s.name for s in sets]}. Put ../shared/data beside the repository.")
    if args.from_reports:
        result = suite_result(_read_reports(args.from_reports, {s.name for s in sets}), args.features)
    else:
        with threadpool_limits(limits=1), rich_progress(transient=True) as progress:
            result = run_preference_suite(sets, seeds=args.seeds, features=args.features, cache_dir=args.cache_dir,
                                          progress=progress)
    command = ".venv/bin/python " + shlex.join([str(Path(sys.argv[0]).relative_to(ROOT))
                                               if Path(sys.argv[0]).is_absolute() else sys.argv[0], *sys.argv[1:]])
    if args.from_reports:  # the runs' own commands stay; this one only recomputed the figures from their curves
        result["runs_from"] = [json.loads(p.read_text(encoding="utf-8")).get("command", str(p))
                               for p in args.from_reports]
    result["command"] = command
    for name, report in result["sets"].items():
        plot = args.out.with_name(f"{args.out.stem}_{name}.png")
        written = plot_report(report, plot).resolve()
        report["plot"] = str(written.relative_to(ROOT) if written.is_relative_to(ROOT) else written)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for name, row in result["leave_one_out"].items():
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}"
        print(f"{name}: left out, chose {row['chosen']} on {', '.join(row['chosen_on'])}: ratio {ratio} "
              f"(per-seed CI {row['per_seed_ci'].get('ci95')}), final accuracy {row['final_accuracy']:.3f} vs random "
              f"{row['random_final_accuracy']:.3f}; random's curve flat: {row['random_curve_flat']}")
    print(f"default: {result['default']['default']} ({result['default']['rule']})")
    print(f"wrote {args.out}")


def _read_reports(paths: list[Path], wanted: set[str]) -> dict[str, Any]:
    """Per-set reports from files holding one set's report or a whole suite's JSON, in the order given."""
    reports: dict[str, Any] = {}
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        for report in (data["sets"].values() if "sets" in data else [data]):
            if report["set"] in wanted:
                reports[report["set"]] = report
    return reports


if __name__ == "__main__":
    main()
