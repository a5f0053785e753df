"""PII detection benchmark (see :mod:`curate.bench.pii`): every gold set and every false-positive text set on disk.

Gold sets (curate vs stock Presidio on the same spaCy model): presidio_synth_pii, WNUT-17 train and dev (converted
from the CoNLL files by ``curate.bench.pii_data``). Rules were chosen on presidio_synth_pii and WNUT-17 train;
WNUT-17 dev is reported untouched. False positives: Alpaca outputs and the prompts of the preference sets.

Usage::

    .venv/bin/python benchmarks/bench_pii.py [--limit N] [--out benchmarks/results/pii.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench.pii import run_suite  # noqa: E402

DATA = ROOT.parent / "shared/data"
GOLD = [("presidio_synth_pii", DATA / "presidio_synth_pii/synth_dataset_v2.json"),
        ("wnut17_train", DATA / "wnut17/wnut17train.conll"),
        ("wnut17_dev", DATA / "wnut17/emerging.dev.conll")]
FP = [("alpaca_5000_outputs", DATA / "alpaca_5000/alpaca_5000.json", "output"),
      ("alpacaeval_prompts", DATA / "preference_pairs/alpacaeval_gpt4_balanced.jsonl.gz", "prompt"),
      ("ultrafeedback_prompts", DATA / "preference_pairs/ultrafeedback_1200.jsonl.gz", "prompt"),
      ("hh_rlhf_harmless_prompts", DATA / "hh_rlhf_harmless_test/test.jsonl.gz", "chosen:prompt")]
TUNING = {"chose_rules": ["presidio_synth_pii", "wnut17_train", "alpacaeval_prompts", "hh_rlhf_harmless_prompts"],
          "untouched": ["wnut17_dev", "ultrafeedback_prompts"],
          "seen_before_changes": ["alpaca_5000_outputs (its 60 most frequent PERSON/LOCATION values under the old "
                                  "rules were read before any change; no rule was tried on it)"]}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N records of every set")
    parser.add_argument("--verdicts", type=Path, default=ROOT / "benchmarks/pii_verdicts.json")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pii.json")
    args = parser.parse_args(argv)
    gold = [(n, p) for n, p in GOLD if p.exists()]
    fp = [(n, p, f) for n, p, f in FP if p.exists()]
    if not gold and not fp:
        print(f"skipped: no benchmark data under {DATA} (the shared data folder is absent)")
        return 0
    report = run_suite(gold, fp, limit=args.limit, verdicts=args.verdicts, say=lambda s: print(s, flush=True))
    report["sets"] = TUNING
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
