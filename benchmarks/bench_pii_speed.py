"""PII detection speed on long texts (see :mod:`curate.bench.pii_speed`): characters per second of curate (batched
as ``ingest --pii`` runs it, and per text) and stock Presidio (per text and batched), in one process, on the
prompts and both responses of the shared preference sets.

Usage::

    .venv/bin/python benchmarks/bench_pii_speed.py [--limit 300] [--out benchmarks/results/pii_speed.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench.pii_speed import run_speed  # noqa: E402

DATA = ROOT.parent / "shared/data"
SETS = [("alpacaeval_gpt4_balanced", DATA / "preference_pairs/alpacaeval_gpt4_balanced.jsonl.gz",
         ("prompt", "chosen", "rejected")),
        ("ultrafeedback_1200", DATA / "preference_pairs/ultrafeedback_1200.jsonl.gz", ("prompt", "chosen", "rejected"))]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=300, help="texts per set")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pii_speed.json")
    args = parser.parse_args(argv)
    sets = [s for s in SETS if s[1].exists()]
    if not sets:
        print(f"skipped: no preference sets under {DATA} (the shared data folder is absent)")
        return 0
    import torch

    torch.set_num_threads(1)
    report = run_speed(sets, limit=args.limit, say=lambda s: print(s, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for name, r in report.items():
        speeds = ", ".join(f"{way} {r[way]['chars_per_second']:,.0f}" for way in
                           ("curate_batched", "curate_per_text", "stock_per_text", "stock_batched"))
        print(f"{name}: {r['texts']} texts, {r['characters']:,} chars; chars/s {speeds}; "
              f"curate/stock {r['curate_vs_stock']}x")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
