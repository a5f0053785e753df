"""Rewrite-budget benchmark (see :mod:`curate.bench.rewrite_budget`) on several prompt-completion sets, with the
default strategy chosen leave-one-data-set-out.

Sets: Alpaca (instruction + input -> prompt, output -> completion), and the prompts with their preferred responses
of the two preference sets (AlpacaEval, UltraFeedback). For each set left out, the strategy with the best mean
budget ratio over the other sets (at the largest budget) is named and its figure on the left-out set reported.
LM scores (perplexity, IFD) go through a score cache, so the rows a seed leaves clean are scored once.

Usage::

    .venv/bin/python benchmarks/bench_rewrite_budget.py [--pool 800] [--seeds 3] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
SETS = [("alpaca_5000", DATA / "alpaca_5000" / "alpaca_5000.json", {}),
        ("alpacaeval_chosen", DATA / "preference_pairs" / "alpacaeval_gpt4_balanced.jsonl.gz",
         {"completion": "chosen"}),
        ("ultrafeedback_chosen", DATA / "preference_pairs" / "ultrafeedback_1200.jsonl.gz", {"completion": "chosen"})]
STRATEGIES = ["random", "shortest", "longest", "relevance", "diversity", "perplexity", "ifd", "shortest+relevance",
              "relevance+perplexity", "shortest+relevance+perplexity", "shortest+relevance+ifd"]


class CachedLM:
    """A catalog scorer whose scores go through a score cache (rows shared by seeds are scored once)."""

    def __init__(self, name: str, ws: Any) -> None:
        from curate.runtime.catalog import BuildContext, build_scorer

        self.scorer = build_scorer(name, BuildContext(cache_dir=ws.cache_dir))
        self.ws = ws

    def score(self, records: list[Any]) -> np.ndarray:
        """Scores of ``records`` (cached by content)."""
        from curate.scorers.cache import score_records

        unique = list({r.id: r for r in records}.values())
        values, _ = score_records(self.ws.store, self.scorer, unique)
        by_id = dict(zip((r.id for r in unique), values.tolist(), strict=True))
        return np.array([by_id[r.id] for r in records], dtype=np.float64)


def leave_one_out(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """For each set: the strategy with the best mean ratio (largest budget) on the other sets, and its figure here."""
    out: dict[str, Any] = {}
    for held in results:
        others = [n for n in results if n != held]
        if not others:
            continue
        mean = {s: float(np.mean([results[o]["summary"][s][-1]["ratio_vs_random"] for o in others]))
                for s in results[held]["summary"] if s != "random"}
        chosen = max(mean, key=lambda s: mean[s])
        cell = results[held]["summary"][chosen][-1]
        out[held] = {"chosen_on_the_others": chosen, "mean_ratio_on_the_others": round(mean[chosen], 3),
                     "ratio_here": cell["ratio_vs_random"], "ratio_per_seed_here": cell["ratio_per_seed"],
                     "recall_here": cell["recall"]}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", type=int, default=800)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--damage-share", type=float, default=0.3)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rewrite_budget.json")
    args = ap.parse_args(argv)
    sets = [s for s in SETS if s[1].exists()]
    if not sets:
        print(f"skipped: no data under {DATA} (the shared data folder is absent)")
        return 0
    from curate.bench.rewrite_budget import load_pairs, run_rewrite_budget
    from curate.runtime.embeddings import Embedder
    from curate.store.workspace import Workspace

    strategies = [s for s in args.strategies.split(",") if s]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        embedder = Embedder("minilm", cache_dir=Path(tmp) / "cache")
        for name, path, mapping in sets:
            ws = Workspace.open(Path(tmp) / name)
            lms: dict[str, CachedLM] = {}

            def build(scorer: str, ws: Any = ws, lms: dict[str, CachedLM] = lms) -> CachedLM:
                if scorer not in lms:
                    lms[scorer] = CachedLM(scorer, ws)
                return lms[scorer]

            rows = load_pairs(path, mapping, limit=args.pool)
            results[name] = run_rewrite_budget(rows, strategies, share=args.damage_share, seeds=range(args.seeds),
                                               build=build, embed=embedder.embed_texts,
                                               say=lambda s, name=name: print(f"{name}: {s}", flush=True))
            last = {s: cells[-1] for s, cells in results[name]["summary"].items()}
            print(name, {s: (c["recall"], c["ratio_vs_random"]) for s, c in last.items()}, flush=True)
            ws.store.dispose()
    report = {"pool": args.pool, "seeds": args.seeds, "damage_share": args.damage_share, "sets": results,
              "leave_one_out": leave_one_out(results)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["leave_one_out"], indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
