"""What committing every few seconds costs: perplexity under SmolLM2 scored 16 records per call (the default of
causal-LM scorers, so an interrupted run keeps its work and progress moves) vs 512 per call (the old batch), through
the score cache, on the same Alpaca records, in one process.

Usage::

    .venv/bin/python benchmarks/bench_score_batches.py [--n 256] [--out benchmarks/results/score_batches.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared/data/alpaca_5000/alpaca_5000.json"
WAYS = (("16 per call", None), ("512 per call", 512), ("16 per call, again", None))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256, help="records scored by each way")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/score_batches.json")
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (the shared data folder is not next to this checkout)")
        return 0
    import numpy as np

    from curate.ingest.sources import ingest
    from curate.scorers.cache import score_records
    from curate.scorers.perplexity import PerplexityScorer
    from curate.store.workspace import Workspace

    rows = json.loads(DATA.read_text(encoding="utf-8"))[: args.n]
    figures: dict[str, dict[str, float]] = {}
    values: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rows.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        scorer = PerplexityScorer()
        scorer.load()  # the model loads once, outside every timing
        for n, (name, batch) in enumerate(WAYS):
            ws = Workspace.open(Path(tmp) / f"ws{n}")
            ingest(ws, data, mapping={"prompt": "instruction", "completion": "output"})
            pool = list(ws.store.iter_records())
            started = time.perf_counter()
            values[name], report = score_records(ws.store, scorer, pool, batch_size=batch)
            seconds = time.perf_counter() - started
            figures[name] = {"records": report.computed, "seconds": round(seconds, 2),
                             "records_per_second": round(report.computed / seconds, 3)}
            print(name, figures[name], flush=True)
            ws.store.dispose()
    small = max(figures[WAYS[0][0]]["records_per_second"], figures[WAYS[2][0]]["records_per_second"])
    big = figures[WAYS[1][0]]["records_per_second"]
    diff = np.abs(values[WAYS[0][0]] - values[WAYS[1][0]]) / np.abs(values[WAYS[1][0]])
    out = {"n": args.n, "ways": figures, "ratio_16_vs_512": round(small / big, 3),
           "max_relative_difference_of_scores": float(np.nanmax(diff))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
