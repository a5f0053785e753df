"""Dedup benchmark (see :mod:`curate.bench.dedup`) on the shared data sets; the same as ``curate bench dedup``.

Usage::

    .venv/bin/python benchmarks/bench_dedup.py [--skip exact,minhash,semantic] [--out benchmarks/results/dedup.json]

Writes ``benchmarks/results/dedup.json`` and prints it (without the MinHash tuning grid). Each part is skipped,
with a message, when its data file is absent. Data paths default to ``../shared/data/...`` relative to the
repository root; ``--sms``, ``--alpaca``, ``--sts`` and the ``--*-fields`` options map other files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench.dedup import DEFAULT_SEED, run  # noqa: E402
from curate.errors import CurateError  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dedup.json")
    ap.add_argument("--sms", type=Path, default=DATA / "sms_spam" / "SMSSpamCollection")
    ap.add_argument("--sms-column", type=int, default=-1, help="tab-separated column holding the text (-1 = last)")
    ap.add_argument("--alpaca", type=Path, default=DATA / "alpaca_5000" / "alpaca_5000.json")
    ap.add_argument("--alpaca-fields", default="instruction,input,output", help="JSON keys joined into one text")
    ap.add_argument("--sts", type=Path, default=DATA / "sts12_16" / "sts12_16.jsonl")
    ap.add_argument("--sts-fields", default="sentence1,sentence2,score", help="first, second sentence, 0-5 score")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--n-originals", type=int, default=1000, help="originals in the evaluation split (tuning: half)")
    ap.add_argument("--n-unrelated", type=int, default=2000, help="unrelated rows in the evaluation split")
    ap.add_argument("--sts-limit", type=int, default=None, help="use only the first N STS pairs (quick runs)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="workspace cache for MiniLM embeddings")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: exact,minhash,semantic")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    for name in sorted(skip):
        print(f"[{name}] skipped (--skip)")

    def say(line: str) -> None:
        if not line.endswith("skipped: no file given"):  # a part left out with --skip: said above
            print(line, flush=True)

    try:
        out = run(exact=None if "exact" in skip else args.sms, minhash=None if "minhash" in skip else args.alpaca,
                  semantic=None if "semantic" in skip else args.sts, exact_column=args.sms_column,
                  minhash_fields=args.alpaca_fields.split(","), semantic_fields=args.sts_fields.split(","),
                  seed=args.seed, n_originals=args.n_originals, n_unrelated=args.n_unrelated,
                  semantic_limit=args.sts_limit, cache_dir=args.cache_dir, missing="skip", say=say)
    except CurateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for name in skip & {"exact", "minhash", "semantic"}:
        out[name] = {"skipped": "--skip"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    printable = {k: ({kk: vv for kk, vv in v.items() if kk != "grid"} if isinstance(v, dict) else v)
                 for k, v in out.items()}
    print(json.dumps(printable, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
