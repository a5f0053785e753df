"""Rewrite budget, LoRA variant (see :mod:`curate.bench.rewrite_budget_lora`): train SmolLM2 LoRA adapters on a
damaged Alpaca pool after rewriting the rows each strategy picked, and compare held-out loss on clean data with
random's curve (budget ratio at equal loss).

Held-out clean data: a seeded sample of ../shared/data/self_instruct_seed (instruction + first instance) and a slice
of Alpaca rows outside the pool, one eval set. Finished runs are kept in ``--workspace``/runs.json; a rerun (after
Ctrl-C) trains only the rest. Skips with a message when the data is absent.

Usage::

    .venv/bin/python benchmarks/bench_rewrite_budget_lora.py [--pool 300] [--seeds 1] \
        [--strategies rewrite_need] [--out benchmarks/results/rewrite_budget_lora.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def _self_instruct(path: Path, limit: int, seed: int) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        task = json.loads(line)
        inst = task["instances"][0]
        prompt = task["instruction"] + ("\n\n" + inst["input"] if inst.get("input") else "")
        if inst["output"].strip():
            rows.append((prompt.strip(), inst["output"].strip()))
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=min(limit, len(rows)), replace=False))
    return [rows[int(i)] for i in keep]


def _floats(value: str) -> list[float]:
    return [float(x) for x in value.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool-file", type=Path, default=DATA / "alpaca_5000" / "alpaca_5000.json")
    ap.add_argument("--heldout-file", type=Path, default=DATA / "self_instruct_seed" / "seed_tasks.jsonl")
    ap.add_argument("--pool", type=int, default=300)
    ap.add_argument("--heldout-slice", type=int, default=60, help="pool-file rows outside the pool, held out")
    ap.add_argument("--heldout-external", type=int, default=100, help="rows of --heldout-file held out")
    ap.add_argument("--damage-share", type=float, default=0.3)
    ap.add_argument("--strategies", default="rewrite_need")
    ap.add_argument("--budgets", default="0.1,0.3")
    ap.add_argument("--random-budgets", default="0,0.1,0.3,0.6,1")
    ap.add_argument("--variants", default="applied,rewritten")
    ap.add_argument("--seeds", type=int, default=1, help="damaged copies of the pool: seeds FIRST..FIRST+N-1")
    ap.add_argument("--first-seed", type=int, default=0, help="FIRST (e.g. to train another seed in parallel in "
                                                              "another --workspace, then copy its runs.json entries)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workspace", type=Path, default=ROOT / ".bench-cache" / "rewrite-budget-lora")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rewrite_budget_lora.json")
    args = ap.parse_args(argv)
    if not args.pool_file.exists() or not args.heldout_file.exists():
        print(f"skipped: {args.pool_file} or {args.heldout_file} not found (the shared data folder is absent)")
        return 0
    import torch

    from benchmarks.bench_rewrite_budget import CachedLM
    from curate.bench.rewrite_budget import load_pairs
    from curate.bench.rewrite_budget_lora import plot_lora_budget, run_saved_lora_budget
    from curate.runtime.embeddings import Embedder
    from curate.train import TrainOptions

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rows = load_pairs(args.pool_file, limit=args.pool + args.heldout_slice)
    order = np.random.default_rng(7).permutation(len(rows))
    pool = [rows[int(i)] for i in sorted(order[: args.pool])]
    heldout = [rows[int(i)] for i in sorted(order[args.pool:])] + _self_instruct(args.heldout_file,
                                                                               args.heldout_external, 0)
    settings = {"pool": args.pool, "heldout": len(heldout), "damage_share": args.damage_share, "epochs": args.epochs,
                "lr": args.lr, "max_length": args.max_length, "pool_file": str(args.pool_file)}

    def on_run(key: str, loss: float, seconds: float) -> None:
        print(f"{key}: held-out loss {loss:.4f} ({seconds} s)", flush=True)

    def on_step(step: int, steps: int) -> None:
        if step in (1, steps) or step % max(1, steps // 5) == 0:
            print(f"  step {step}/{steps}", flush=True)

    embedder = Embedder("minilm", cache_dir=args.workspace / "cache")
    lms: dict[str, CachedLM] = {}

    def build(name: str) -> CachedLM:
        if name not in lms:
            lms[name] = CachedLM(name, args.workspace / "cache")
        return lms[name]

    options = TrainOptions(epochs=args.epochs, batch_size=8, max_length=args.max_length, learning_rate=args.lr)
    report = run_saved_lora_budget(pool, heldout, [s for s in args.strategies.split(",") if s],
                                   folder=args.workspace, share=args.damage_share, budgets=_floats(args.budgets),
                                   random_budgets=_floats(args.random_budgets),
                                   variants=[v for v in args.variants.split(",") if v],
                                   seeds=range(args.first_seed, args.first_seed + args.seeds), options=options,
                                   base=None, build=build, embed=embedder.embed_texts, settings=settings,
                                   on_run=on_run, on_step=on_step)
    out = {**settings, **report, "seconds": round(time.perf_counter() - started, 1),
           "command": "python benchmarks/bench_rewrite_budget_lora.py " + " ".join(argv or sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    plot_lora_budget(report, args.out.with_suffix(".png"), base_loss=report["base_model_loss"])
    print(json.dumps(out["summary"], indent=2))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
