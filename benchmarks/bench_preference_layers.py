"""Reward-model features by layer, or reward heads on the last layer (see :mod:`curate.bench.preference_layers` and
:mod:`curate.bench.preference_heads`): whole-pool and random-budget test accuracy over seeded pool/test splits.

``--layers``: the Laplace head of the preference suite on each SmolLM2 layer. Writes
``benchmarks/results/preference_layers_<set>.json``; the first run computes every layer's features in one pass per
response. ``--heads``: the suite's features (the last layer) under each head (the Laplace head, the product's
ensemble of linear heads, MLP ensembles). Writes ``benchmarks/results/preference_heads_<set>.json``. Either way a
plot lands beside the JSON, and features are cached in ``--cache-dir`` (Ctrl-C keeps what is finished).

Usage::

    .venv/bin/python benchmarks/bench_preference_layers.py [--set ultrafeedback] [--splits 10] [--repeats 3]
        [--layers 4,8,12,16,20,24,27,30,10+20+30 | --heads laplace,linear-ensemble,mlp-32,mlp-16-early]
        [--budgets 150,350,550,800]
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
    parser.add_argument("--set", default="ultrafeedback", help="one of the preference suite's sets")
    parser.add_argument("--splits", type=int, default=10, help="seeded pool/test splits (split seeds 0..N-1)")
    parser.add_argument("--repeats", type=int, default=3, help="random draws per split and budget")
    parser.add_argument("--layers", default="4,8,12,16,20,24,27,30,10+20+30",
                        help="1-based layers, '+' joins layers into one concatenated feature")
    parser.add_argument("--heads", default=None, help="compare these heads on the last layer instead of layers "
                                                      "(comma list; 'all' for every head)")
    parser.add_argument("--budgets", default="150,350,550,800", help="random pairs to fit on")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from curate.bench.label_efficiency import rich_progress
    from curate.bench.preference_heads import HEADS, head_report, parse_heads, plot_heads
    from curate.bench.preference_layers import layer_report, plot_layers
    from curate.bench.preference_suite import shared_preference_set

    heads = None if args.heads is None else parse_heads(",".join(HEADS) if args.heads == "all" else args.heads)
    pset, skipped = shared_preference_set(args.data, args.set)
    if pset is None:
        print(skipped)
        return
    torch.set_num_threads(1)
    budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    with threadpool_limits(limits=1), rich_progress() as progress:
        if heads is None:
            report = layer_report(pset, args.layers, cache_dir=args.cache_dir, splits=args.splits, budgets=budgets,
                                  repeats=args.repeats, progress=progress)
        else:
            report = head_report(pset, heads, cache_dir=args.cache_dir, splits=args.splits, budgets=budgets,
                                 repeats=args.repeats, progress=progress)
    kind, rows = ("layers", "layer") if heads is None else ("heads", "head")
    out = args.out or ROOT / "benchmarks" / "results" / f"preference_{kind}_{args.set}.json"
    report["command"] = " ".join([".venv/bin/python", "benchmarks/bench_preference_layers.py",
                                  *map(shlex.quote, sys.argv[1:])])
    plot: Any = plot_layers if heads is None else plot_heads
    report["plot"] = plot(report, out.with_suffix(".png")).name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    for spec, v in report[kind].items():
        curve = ", ".join(f"{b}: {a:.3f}" for b, a in zip(v["random"]["budgets"], v["random"]["mean"], strict=True))
        print(f"{rows} {spec:>16}: whole pool {v['whole_pool']['mean']:.4f} (sd {v['whole_pool']['sd']}); "
              f"random {curve}")
    print(f"best by whole-pool accuracy: {rows} {report['best']}; wrote {out}")


if __name__ == "__main__":
    main()
