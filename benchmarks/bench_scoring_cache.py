"""Score cache benchmark: first scoring of a pool vs re-scoring the unchanged pool, side by side in one run.

Run: ``.venv/bin/python benchmarks/bench_scoring_cache.py --scorer ifd --n 300`` (``make bench`` runs it).
Any data file works through column mapping (``--map prompt=question``); default: the shared Alpaca sample.
Writes ``benchmarks/results/scoring_cache.json``. Target (issue 3): re-scoring at least 50x faster.
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

from curate.ingest.formats import parse_mapping  # noqa: E402
from curate.ingest.sources import ingest  # noqa: E402
from curate.runtime.catalog import BuildContext, build_scorer  # noqa: E402
from curate.scorers.cache import score_records  # noqa: E402
from curate.store.workspace import Workspace  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alpaca_5000" / "alpaca_5000.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--map", action="append", default=[], help="TARGET=SOURCE column mapping")
    parser.add_argument("--scorer", default="ifd")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--cache-dir", type=Path, default=None, help="reuse converted models from here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scoring_cache.json")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} is absent (the shared benchmark data is not next to this checkout)")
        return
    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="curate-bench-") as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        ingest(ws, args.data, mapping=parse_mapping(args.map))
        records = [r for _, r in zip(range(args.n), ws.store.iter_records(), strict=False)]
        cache_dir = args.cache_dir or ROOT / ".bench-cache"
        scorer = build_scorer(args.scorer, BuildContext(cache_dir=cache_dir))
        scorer.score(records[:2])  # load the model outside the timed runs
        start = time.perf_counter()
        first, report1 = score_records(ws.store, scorer, records)
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        second, report2 = score_records(ws.store, scorer, records)
        second_s = time.perf_counter() - start
    result = {
        "scorer": report1.scorer_key, "records": len(records), "data": str(args.data),
        "first_seconds": round(first_s, 3), "first_computed": report1.computed,
        "rescore_seconds": round(second_s, 4), "rescore_computed": report2.computed,
        "speedup": round(first_s / second_s, 1), "target_speedup": 50,
    }
    result["meets_target"] = result["speedup"] >= 50 and report2.computed == 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
