"""Label-efficiency benchmark (see :mod:`curate.bench.label_efficiency`); the same as
``curate bench label-efficiency``, run on the shared data:

* classify: banking77 train.csv as the pool (10,003), test.csv as the frozen test set (3,080); MiniLM + logistic
  regression (C=10); 2 labels per class, batches of 100 up to 1,500; noise 0 and 0.1; 3 seeds; strategies
  random, margin, entropy, cluster-margin (2 k-means clusters per pick), BADGE and prefilter-cluster-margin (the
  5k lowest-margin records in k spherical k-means groups, the lowest margin of each), 10% random mix.
  C, the clusters per pick and the prefilter's 5k were chosen on a seeded 80/20 split of train.csv (the pool),
  never on test.csv (``benchmarks/tune_label_efficiency.py``, results in label_efficiency_tuning.json).
* preference: HH-RLHF harmless-base test (2,312 pairs), 500 pairs held out by prompt; Bradley-Terry ensemble on
  MiniLM features; 50 pairs, batches of 50 up to 1,000; 5 seeds. With ``--preference-features smollm2`` (or
  ``both``) also SmolLM2 hidden states on a reduced protocol (300 test pairs, 700 random pool pairs, budgets up
  to 500; the LM costs ~3-15 ms per token on 2 busy cores) plus MiniLM on that same split, for comparison.

Usage::

    .venv/bin/python benchmarks/bench_label_efficiency.py [--task classify|preference|both]
        [--preference-features minilm|smollm2|both] [--seeds N] [--oracle-noise P] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench.label_efficiency import BenchConfig, rich_progress, run_benchmark  # noqa: E402
from curate.bench.label_efficiency_plot import plot_report  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def _summary(report: dict) -> None:
    for key, run in report["runs"].items():
        ratios = ", ".join(f"{s} {r['ratio']:.2f}" if r["ratio"] is not None else f"{s} n/a"
                           for s, r in run["ratios"].items())
        finals = ", ".join(f"{s} {v['mean']:.3f}" for s, v in run["final_accuracy"].items())
        print(f"[{report['task']} {key}] ratios: {ratios}")
        print(f"[{report['task']} {key}] final accuracy: {finals}; whole pool {run['full_pool_accuracy']:.3f}")
    for note in report["verdict"].get("why_not", []):
        print(f"  - {note}")


def _run(cfg: BenchConfig, data: Path, out: Path, *, test: Path | None = None, mapping: dict | None = None,
         cache_dir: Path, command: str) -> None:
    started = time.perf_counter()
    with rich_progress() as progress:
        report = run_benchmark(cfg, data, test_path=test, mapping=mapping, cache_dir=cache_dir, progress=progress)
    report["command"] = command
    report["plot"] = str(plot_report(report, out.with_suffix(".png")))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    _summary(report)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')} ({time.perf_counter() - started:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark(s); returns the exit code."""
    parser = argparse.ArgumentParser(description="Label efficiency of curate's strategies vs random sampling.")
    parser.add_argument("--task", choices=["classify", "preference", "both"], default="both")
    parser.add_argument("--preference-features", choices=["minilm", "smollm2", "both"], default="minilm")
    parser.add_argument("--seeds", type=int, default=None, help="default: classify 3, preference 5")
    parser.add_argument("--oracle-noise", type=float, default=0.1)
    parser.add_argument("--smollm2-pool-limit", type=int, default=700,
                        help="pool pairs kept for the SmolLM2 run (all 2,300 pairs take ~25-70 min on 2 busy cores)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    command = "benchmarks/bench_label_efficiency.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.task in ("classify", "both"):
        banking = SHARED / "banking77"
        if not (banking / "train.csv").exists():
            print(f"skipped classify: {banking} not found (the shared benchmark data is not next to this checkout)")
        else:
            cfg = BenchConfig(task="classify", seeds=args.seeds, oracle_noise=args.oracle_noise,
                              strategies=("random", "margin", "entropy", "cluster-margin", "badge",
                                          "prefilter-cluster-margin"))
            _run(cfg, banking / "train.csv", args.out_dir / "label_efficiency_classify", test=banking / "test.csv",
                 mapping={"label": "category"}, cache_dir=args.cache_dir, command=command)
    if args.task in ("preference", "both"):
        hh = SHARED / "hh_rlhf_harmless_test" / "test.jsonl.gz"
        if not hh.exists():
            print(f"skipped preference: {hh} not found (the shared benchmark data is not next to this checkout)")
            return 0
        if args.preference_features in ("minilm", "both"):
            cfg = BenchConfig(task="preference", seeds=args.seeds, oracle_noise=args.oracle_noise)
            _run(cfg, hh, args.out_dir / "label_efficiency_preference", cache_dir=args.cache_dir, command=command)
        if args.preference_features in ("smollm2", "both"):
            # Reduced protocol (SmolLM2 features cost ~5-15 ms per token here): 300 test pairs, a random subset
            # of the pool, budgets up to 500; MiniLM on the very same split, for comparison.
            small = {"test_size": 300, "calibration_size": 30, "pool_limit": args.smollm2_pool_limit, "budget": 500}
            for feat, name in (("smollm2", "label_efficiency_preference_smollm2"),
                               ("minilm", "label_efficiency_preference_minilm_small_split")):
                cfg = BenchConfig(task="preference", seeds=args.seeds, oracle_noise=args.oracle_noise, features=feat,
                                  **small)  # type: ignore[arg-type]
                _run(cfg, hh, args.out_dir / name, cache_dir=args.cache_dir, command=command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
