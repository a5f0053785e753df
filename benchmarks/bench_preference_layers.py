"""Reward-model features by layer (see :mod:`curate.bench.preference_layers`): the Laplace head of the preference
suite on each SmolLM2 layer, whole-pool and random-budget test accuracy over seeded pool/test splits.

Writes ``benchmarks/results/preference_layers_<set>.json`` and a plot beside it. The first run computes every
layer's features in one pass per response (cached in ``--cache-dir``; Ctrl-C keeps what is finished).

Usage::

    .venv/bin/python benchmarks/bench_preference_layers.py [--set ultrafeedback] [--splits 10] [--repeats 3]
        [--layers 4,8,12,16,20,24,27,30,10+20+30]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="ultrafeedback", help="one of the preference suite's sets")
    parser.add_argument("--splits", type=int, default=10, help="seeded pool/test splits (split seeds 0..N-1)")
    parser.add_argument("--repeats", type=int, default=3, help="random draws per split and budget")
    parser.add_argument("--layers", default="4,8,12,16,20,24,27,30,10+20+30",
                        help="1-based layers, '+' joins layers into one concatenated feature")
    parser.add_argument("--budgets", default="150,350,550,800", help="random pairs to fit on")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from curate.bench.label_efficiency import rich_progress
    from curate.bench.preference_layers import layer_report, plot_layers
    from curate.bench.preference_suite import shared_preference_set

    pset, skipped = shared_preference_set(args.data, args.set)
    if pset is None:
        print(skipped)
        return
    torch.set_num_threads(1)
    budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    with threadpool_limits(limits=1), rich_progress() as progress:
        report = layer_report(pset, args.layers, cache_dir=args.cache_dir, splits=args.splits, budgets=budgets,
                              repeats=args.repeats, progress=progress)
    out = args.out or ROOT / "benchmarks" / "results" / f"preference_layers_{args.set}.json"
    report["command"] = " ".join([".venv/bin/python", "benchmarks/bench_preference_layers.py",
                                  *map(shlex.quote, sys.argv[1:])])
    report["plot"] = plot_layers(report, out.with_suffix(".png")).name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    for spec, v in report["layers"].items():
        curve = ", ".join(f"{b}: {a:.3f}" for b, a in zip(v["random"]["budgets"], v["random"]["mean"], strict=True))
        print(f"layer {spec:>9}: whole pool {v['whole_pool']['mean']:.4f} (sd {v['whole_pool']['sd']}); random {curve}")
    print(f"best by whole-pool accuracy: layer {report['best']}; wrote {out}")


if __name__ == "__main__":
    main()
