"""Rewrite-budget benchmark (see :mod:`curate.bench.rewrite_budget`) on several prompt-completion sets, with the
default strategy chosen leave-one-data-set-out.

Sets: Alpaca (instruction + input -> prompt, output -> completion), and the prompts with their preferred responses
of the two preference sets (AlpacaEval, UltraFeedback). For each set left out, the strategy with the best mean
budget ratio over the other sets (at the largest budget) is named and its figure on the left-out set reported.
LM scores (perplexity, IFD) go through a score cache, so the rows a seed leaves clean are scored once.

Usage::

    .venv/bin/python benchmarks/bench_rewrite_budget.py [--pool 800] [--seeds 3] [--out ...]

With a weak model's drafts among the damage (the packaged SmolLM2 answers the prompt; cached in .bench-cache)::

    .venv/bin/python benchmarks/bench_rewrite_budget.py --pool 400 --damage-kinds swapped,truncated,generic,draft \
        --out benchmarks/results/rewrite_budget_drafts.json

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
    """A catalog scorer whose scores are remembered by record content, in memory and (with ``disk``) in a SQLite
    file under ``.bench-cache/`` keyed by the scorer's key and a hash of prompt and completion, committed every
    batch: rows shared by seeds are scored once, a rerun or an interrupted run scores only the rest. A
    set-dependent scorer is always run on the whole set."""

    def __init__(self, name: str, cache_dir: Path, disk: Path | None = None) -> None:
        from curate.runtime.catalog import BuildContext, build_scorer

        self.scorer = build_scorer(name, BuildContext(cache_dir=cache_dir))
        self.memo: dict[str, float] = {}
        self.db = None
        if disk is not None and not getattr(self.scorer, "set_dependent", False):
            import sqlite3

            disk.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(disk / "rewrite_budget_scores.sqlite")
            self.db.execute("CREATE TABLE IF NOT EXISTS scores (scorer TEXT, content TEXT, value REAL, "
                            "PRIMARY KEY (scorer, content))")
            self.key = self.scorer.key()
            self.memo.update(self.db.execute("SELECT content, value FROM scores WHERE scorer = ?", (self.key,)))

    @staticmethod
    def content(record: Any) -> str:
        from curate.runtime.embeddings import text_hash

        return text_hash(f"{record.fields.get('prompt')}\0{record.fields.get('completion')}").hex()

    def score(self, records: list[Any]) -> np.ndarray:
        """Scores of ``records``, shape ``(n,)``."""
        if getattr(self.scorer, "set_dependent", False):
            return np.asarray(self.scorer.score(records), dtype=np.float64)
        todo = list({self.content(r): r for r in records if self.content(r) not in self.memo}.items())
        if todo:
            print(f"  {self.scorer.name}: scoring {len(todo)} rows", flush=True)
        for start in range(0, len(todo), 64):
            part = todo[start : start + 64]
            values = np.asarray(self.scorer.score([r for _, r in part]), dtype=np.float64).tolist()
            self.memo.update(zip((c for c, _ in part), values, strict=True))
            if self.db is not None:
                self.db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)",
                                    [(self.key, c, v) for (c, _), v in zip(part, values, strict=True)])
                self.db.commit()
            print(f"  {self.scorer.name}: {start + len(part)}/{len(todo)}", flush=True)
        return np.array([self.memo[self.content(r)] for r in records], dtype=np.float64)


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
    ap.add_argument("--damage-kinds", default="swapped,truncated,generic",
                    help="comma list; 'draft' adds a weak model's answers (the packaged SmolLM2, greedy, cached)")
    ap.add_argument("--draft-tokens", type=int, default=128, help="longest draft, in tokens")
    ap.add_argument("--draft-temperature", type=float, default=0.0, help="0: greedy drafts; above 0: sampled")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--sets", default=",".join(name for name, _, _ in SETS), help="comma-separated set names")
    ap.add_argument("--two-stage", default="0.2,0.1", help="sample,shortlist shares of ...@two-stage strategies")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rewrite_budget.json")
    args = ap.parse_args(argv)
    sets = [s for s in SETS if s[1].exists() and s[0] in args.sets.split(",")]
    if not sets:
        print(f"skipped: no data under {DATA} (the shared data folder is absent)")
        return 0
    from curate.bench.rewrite_budget import load_pairs, run_rewrite_budget, two_stage_vs_exact
    from curate.runtime.embeddings import Embedder

    strategies = [s for s in args.strategies.split(",") if s]
    kinds = [k for k in args.damage_kinds.split(",") if k]
    draft = None
    if "draft" in kinds:
        import torch

        from curate.bench.rewrite_drafts import lm_drafts

        torch.set_num_threads(1)

        def said(done: int, total: int) -> None:
            if done % 8 == 0 or done == total:
                print(f"drafts {done}/{total}", flush=True)

        draft = lm_drafts(ROOT / ".bench-cache", max_new_tokens=args.draft_tokens,
                          temperature=args.draft_temperature, on_progress=said)
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
                    lms[scorer] = CachedLM(scorer, Path(tmp) / "cache", disk=ROOT / ".bench-cache")
                return lms[scorer]

            rows = load_pairs(path, mapping, limit=args.pool)
            results[name] = run_rewrite_budget(rows, strategies, share=args.damage_share, seeds=range(args.seeds),
                                               build=build, embed=embedder.embed_texts, two_stage=two_stage,
                                               say=lambda s, name=name: print(f"{name}: {s}", flush=True),
                                               kinds=kinds, draft=draft)
            results[name]["two_stage_vs_exact"] = two_stage_vs_exact(results[name])
            last = {s: cells[-1] for s, cells in results[name]["summary"].items()}
            print(name, {s: (c["recall"], c["ratio_vs_random"]) for s, c in last.items()}, flush=True)
    report = {"pool": args.pool, "seeds": args.seeds, "damage_share": args.damage_share, "damage_kinds": kinds,
              "command": " ".join([".venv/bin/python", "benchmarks/bench_rewrite_budget.py", *sys.argv[1:]]),
              "two_stage": {"sample": sample_share, "shortlist": shortlist_share}, "sets": results,
              "leave_one_out": leave_one_out(results)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["leave_one_out"], indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
