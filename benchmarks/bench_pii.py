"""PII detection benchmark (see :mod:`curate.bench.pii`); the same as ``curate bench pii``.

Usage::

    .venv/bin/python benchmarks/bench_pii.py [--data FILE] [--limit N] [--out benchmarks/results/pii.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench.pii import run, table_rows  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_data = ROOT.parent / "shared/data/presidio_synth_pii/synth_dataset_v2.json"
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--format", choices=["presidio"], default="presidio")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N records")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pii.json")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: data file {args.data} not found (pass --data FILE in Presidio-research JSON format)")
        return 0
    results = run(args.data, fmt=args.format, limit=args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    for row in table_rows(results):
        print(f"{row[0]:<20} curate {row[1]:>24}   baseline {row[2]:>24}   gold {row[3]}")
    for name in ("curate", "baseline_presidio_stock"):
        m = results[name]["micro"]
        print(f"micro {name:<24} P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f}  "
              f"{results[name]['records_per_s']} records/s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
