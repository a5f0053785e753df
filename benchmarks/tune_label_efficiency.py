"""Choose the classify strategy variant of the label-efficiency benchmark on a VALIDATION split, never test.csv.

The validation protocol is the benchmark's own seeded split of banking77 ``train.csv`` (``make_split`` with no
``--test``: 20% held out as the validation "test" set, 10% of that as calibration, split seed 0; pool 7,799),
with everything else as in the real run (MiniLM, C=10, 2 labels per class, batches of 100 to 1,500, 10% random
mix, 3 seeds, oracle noise 0). Each variant is run with random sampling and its label-efficiency ratio recorded;
results are merged into ``benchmarks/results/label_efficiency_tuning.json`` (one key per variant), so variants
can be run in separate processes.

Usage::

    .venv/bin/python benchmarks/tune_label_efficiency.py [--variants a,b,...] [--seeds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench.label_efficiency import BenchConfig, run_benchmark  # noqa: E402

TRAIN = ROOT.parent / "shared" / "data" / "banking77" / "train.csv"
# name -> (strategy, BenchConfig overrides)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "margin": ("margin", {}),
    "badge": ("badge", {}),
    "cluster-margin-c1": ("cluster-margin", {"clusters_per_pick": 1.0}),
    "cluster-margin-c2": ("cluster-margin", {"clusters_per_pick": 2.0}),
    "cluster-margin-c3": ("cluster-margin", {"clusters_per_pick": 3.0}),
    "cluster-margin-c4": ("cluster-margin", {"clusters_per_pick": 4.0}),
    "prefilter-b3": ("prefilter-cluster-margin", {"candidates_per_pick": 3.0}),
    "prefilter-b5": ("prefilter-cluster-margin", {"candidates_per_pick": 5.0}),
    "prefilter-b10": ("prefilter-cluster-margin", {"candidates_per_pick": 10.0}),
    "rr-b10-random": ("rr-cluster-margin", {"candidates_per_pick": 10.0, "round_robin_within": "random"}),
    "rr-b10-score": ("rr-cluster-margin", {"candidates_per_pick": 10.0, "round_robin_within": "score"}),
    "prefilter-b20": ("prefilter-cluster-margin", {"candidates_per_pick": 20.0}),
    "prefilter-b40": ("prefilter-cluster-margin", {"candidates_per_pick": 40.0}),
    "rr-b10-random-size50": ("rr-cluster-margin", {"candidates_per_pick": 10.0, "pool_cluster_size": 50}),
    "rr-b10-random-size100": ("rr-cluster-margin", {"candidates_per_pick": 10.0, "pool_cluster_size": 100}),
}


def run_variant(name: str, seeds: int, cache_dir: Path) -> dict[str, Any]:
    """One variant against random on the validation split (noise 0): ratio, per-seed ratios and CI, timings."""
    strategy, overrides = VARIANTS[name]
    cfg = BenchConfig(task="classify", seeds=seeds, strategies=("random", strategy), **overrides)
    started = time.perf_counter()
    report = run_benchmark(cfg, TRAIN, mapping={"label": "category"}, cache_dir=cache_dir)
    run = report["runs"]["noise_0"]
    ratio = run["ratios"][strategy]
    return {
        "strategy": strategy, "overrides": overrides, "ratio": ratio["ratio"], "per_seed": ratio["per_seed"],
        "per_seed_ci95": ratio["per_seed_ci"]["ci95"], "strategy_labels": ratio["strategy_labels"],
        "final_accuracy": {s: round(v["mean"], 4) for s, v in run["final_accuracy"].items()},
        "mean_gain_over_random": round(run["mean_gain_over_random"][strategy]["mean"], 4),
        "seconds": run["seconds"], "wall_seconds": round(time.perf_counter() - started, 1),
        "split": report["data"]["split"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the variants and merge their results into the JSON file; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "label_efficiency_tuning.json")
    args = parser.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    for name in names:
        result = run_variant(name, args.seeds, args.cache_dir)
        print(f"{name}: ratio {result['ratio']:.3f} per seed {result['per_seed']} "
              f"({result['wall_seconds']:.0f} s)", flush=True)
        # merge (re-read: other processes may have written meanwhile)
        doc = json.loads(args.out.read_text()) if args.out.exists() else {}
        doc.setdefault("protocol", "banking77 train.csv only: seeded 80/20 split (split_seed 0) -> pool 7,799, "
                                   "validation 2,000, calibration 200; MiniLM + logistic regression C=10; 2 per "
                                   "class, batches of 100 to 1,500; 10% random mix; oracle noise 0; test.csv unused")
        doc.setdefault("command", "benchmarks/tune_label_efficiency.py --variants <names>")
        key = name if args.seeds == 3 else f"{name}@{args.seeds}seeds"
        doc.setdefault("variants", {})[key] = {**result, "seeds": args.seeds}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
