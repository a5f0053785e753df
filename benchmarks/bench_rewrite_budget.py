"""Rewrite-budget benchmark (see :mod:`curate.bench.rewrite_budget`) on several prompt-completion sets, with the
default strategy chosen leave-one-data-set-out.

Sets: Alpaca (instruction + input -> prompt, output -> completion), and the prompts with their preferred responses
of the two preference sets (AlpacaEval, UltraFeedback). For each set left out, the strategy with the best mean
budget ratio over the other sets (at the largest budget) is named and its figure on the left-out set reported.
LM scores (perplexity, IFD) go through a score cache, so the rows a seed leaves clean are scored once.

Usage::

    .venv/bin/python benchmarks/bench_rewrite_budget.py [--pool 800] [--seeds 3] [--out ...]

Two-stage IFD against exact IFD (issue 20), on Alpaca only::

    .venv/bin/python benchmarks/bench_rewrite_budget.py --sets alpaca_5000 --pool 1000 \
        --strategies random,ifd,ifd@two-stage:0.1,ifd@two-stage:0.2 \
        --out benchmarks/results/rewrite_budget_two_stage.json
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
    """A catalog scorer whose scores are remembered by record content (rows shared by seeds are scored once; a
    set-dependent scorer is always run on the whole set)."""

    def __init__(self, name: str, cache_dir: Path) -> None:
        from curate.runtime.catalog import BuildContext, build_scorer

        self.scorer = build_scorer(name, BuildContext(cache_dir=cache_dir))
        self.memo: dict[str, float] = {}

    def score(self, records: list[Any]) -> np.ndarray:
        """Scores of ``records``, shape ``(n,)``."""
        if getattr(self.scorer, "set_dependent", False):
            return np.asarray(self.scorer.score(records), dtype=np.float64)
        todo = list({r.id: r for r in records if r.id not in self.memo}.values())
        for start in range(0, len(todo), 64):
            part = todo[start : start + 64]
            self.memo.update(zip((r.id for r in part), np.asarray(self.scorer.score(part)).tolist(), strict=True))
        return np.array([self.memo[r.id] for r in records], dtype=np.float64)


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
    ap.add_argument("--sets", default=",".join(name for name, _, _ in SETS), help="comma-separated set names")
    ap.add_argument("--two-stage", default="0.2,0.1", help="sample,shortlist shares of ...@two-stage strategies")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rewrite_budget.json")
    args = ap.parse_args(argv)
    sets = [s for s in SETS if s[1].exists() and s[0] in args.sets.split(",")]
    if not sets:
        print(f"skipped: no data under {DATA} (the shared data folder is absent)")
        return 0
    from curate.bench.rewrite_budget import load_pairs, run_rewrite_budget
    from curate.runtime.embeddings import Embedder

    strategies = [s for s in args.strategies.split(",") if s]
    shares = [float(x) for x in args.two_stage.split(",")]
    sample_share, shortlist_share = shares[0], shares[1]
    two_stage: tuple[float, float] = (sample_share, shortlist_share)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        embedder = Embedder("minilm", cache_dir=Path(tmp) / "cache")
        for name, path, mapping in sets:
            lms: dict[str, CachedLM] = {}

            def build(scorer: str, lms: dict[str, CachedLM] = lms) -> CachedLM:
                if scorer not in lms:
                    lms[scorer] = CachedLM(scorer, Path(tmp) / "cache")
                return lms[scorer]

            rows = load_pairs(path, mapping, limit=args.pool)
            results[name] = run_rewrite_budget(rows, strategies, share=args.damage_share, seeds=range(args.seeds),
                                               build=build, embed=embedder.embed_texts, two_stage=two_stage,
                                               say=lambda s, name=name: print(f"{name}: {s}", flush=True))
            last = {s: cells[-1] for s, cells in results[name]["summary"].items()}
            print(name, {s: (c["recall"], c["ratio_vs_random"]) for s, c in last.items()}, flush=True)
    report = {"pool": args.pool, "seeds": args.seeds, "damage_share": args.damage_share,
              "two_stage": {"sample": sample_share, "shortlist": shortlist_share}, "sets": results,
              "leave_one_out": leave_one_out(results)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["leave_one_out"], indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
