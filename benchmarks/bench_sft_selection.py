"""SFT selection benchmark: pick K rows of an instruction pool by IFD, by diversity and at random, LoRA-train
SmolLM2 on each pick, and compare held-out loss on a separate clean set.

Usage::

    .venv/bin/python benchmarks/bench_sft_selection.py [--pool N] [--k 250] [--epochs 1] [--out ...]

Defaults: pool = a seeded sample of ``--pool`` rows of ../shared/data/alpaca_5000 (instruction + input -> prompt,
output -> completion), held out = ../shared/data/self_instruct_seed (instruction + instance input -> prompt, instance
output -> completion). IFD is SmolLM2's (curate's IFDScorer; higher = the prompt helps less = more worth learning;
rows with IFD > 1 are skipped, as the IFD paper does); diversity is greedy k-center on MiniLM embeddings. Each pick
trains a fresh LoRA adapter with the same settings; the figure is the held-out loss (lower = better), before and
after. Skips with a message when the data is absent.
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


def _rows(path: Path) -> list[dict[str, str]]:
    return [{"prompt": (r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")).strip(),
             "completion": r["output"].strip()} for r in json.loads(path.read_text()) if r.get("output")]


def _heldout(path: Path) -> list[dict[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        task = json.loads(line)
        for inst in task["instances"][:1]:
            prompt = task["instruction"] + ("\n\n" + inst["input"] if inst.get("input") else "")
            out.append({"prompt": prompt.strip(), "completion": inst["output"].strip()})
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool-file", type=Path, default=DATA / "alpaca_5000" / "alpaca_5000.json")
    ap.add_argument("--heldout-file", type=Path, default=DATA / "self_instruct_seed" / "seed_tasks.jsonl")
    ap.add_argument("--pool", type=int, default=800, help="pool rows sampled from the pool file (IFD costs ~2 "
                                                          "forward passes per row)")
    ap.add_argument("--k", type=int, default=250)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workspace", type=Path, default=ROOT / ".bench-cache" / "sft-selection")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sft_selection.json")
    args = ap.parse_args(argv)
    if not args.pool_file.exists() or not args.heldout_file.exists():
        print(f"skipped: {args.pool_file} or {args.heldout_file} not found")
        return 0
    import torch

    from curate.ingest.formats import row_to_record
    from curate.runtime.embeddings import Embedder
    from curate.runtime.models import lm_path
    from curate.scorers.perplexity import IFDScorer
    from curate.selectors import KCenterGreedy
    from curate.store.workspace import Workspace
    from curate.train import train
    from curate.train.options import TrainOptions

    torch.set_num_threads(2)
    started = time.perf_counter()
    ws = Workspace.open(args.workspace)
    rng = np.random.default_rng(args.seed)
    rows = _rows(args.pool_file)
    pool = [rows[i] for i in sorted(rng.choice(len(rows), size=min(args.pool, len(rows)), replace=False))]
    heldout = _heldout(args.heldout_file)
    records = [row_to_record(r, source="pool", line=i + 1) for i, r in enumerate(pool)]
    t0 = time.perf_counter()
    base = lm_path(None)
    ifd = np.asarray(IFDScorer(model=base, cache_dir=ws.cache_dir).score(records), dtype=float)
    ifd_seconds = time.perf_counter() - t0
    usable = np.where(np.isfinite(ifd) & (ifd <= 1.0), ifd, -np.inf)
    picks = {"ifd": [int(i) for i in np.argsort(-usable)[: args.k]]}
    vectors = Embedder(cache_dir=ws.cache_dir).embed_records(records)
    picks["diversity"] = [int(i) for i in KCenterGreedy(metric="cosine").select(np.zeros(len(records)), args.k,
                                                                                  embeddings=vectors, rng=rng)]
    picks["random"] = [int(i) for i in rng.choice(len(records), size=args.k, replace=False)]
    results: dict[str, object] = {}
    for name, idx in picks.items():
        folder = ws.root / "exports" / f"{name}-{args.seed}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "train.jsonl").write_text("".join(json.dumps(pool[i]) + "\n" for i in idx))
        (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in heldout))
        t0 = time.perf_counter()
        trained = train(ws, "sft", folder, options=TrainOptions(
            epochs=args.epochs, batch_size=8, max_length=args.max_length, learning_rate=2e-4, eval_before=True,
            warm_start=False, seed=args.seed, name=f"bench-sft-{name}-{int(time.time())}"))
        m = trained.metrics
        results[name] = {"rows": len(idx), "heldout_loss_before": round(float(m["eval_loss_before"]), 4),
                         "heldout_loss_after": round(float(m["eval_loss"]), 4),
                         "mean_ifd_of_pick": round(float(np.nanmean(ifd[idx])), 4),
                         "train_seconds": round(time.perf_counter() - t0, 1)}
        print(name, results[name], flush=True)
    out = {"pool_file": str(args.pool_file), "heldout_file": str(args.heldout_file), "pool": len(pool),
           "heldout": len(heldout), "k": args.k, "epochs": args.epochs, "max_length": args.max_length,
           "ifd_seconds": round(ifd_seconds, 1), "ifd_over_1": int((ifd > 1).sum()), "results": results,
           "seconds": round(time.perf_counter() - started, 1),
           "command": "python benchmarks/bench_sft_selection.py " + " ".join(argv or sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
