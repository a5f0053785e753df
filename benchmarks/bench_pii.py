"""PII detection benchmark: curate's analyzer vs Presidio's stock AnalyzerEngine on the same spaCy model.

Data: Presidio-research's JSON format (``--format presidio``): a list of records with ``full_text`` and
``spans`` of ``{entity_type, start_position, end_position}`` (end exclusive).

Type mapping (dataset -> Presidio): ``GPE`` -> ``LOCATION``, ``STREET_ADDRESS`` -> ``LOCATION``,
``DOMAIN_NAME`` -> ``URL``; all other names are equal. Types without a Presidio counterpart (``TITLE``,
``AGE``, ``ZIP_CODE``) are never predicted by either analyzer and are left out of the micro average.

Matching: overlap. A predicted span is a true positive if it overlaps a gold span of the same type; a gold
span is found if a predicted span of the same type overlaps it. Precision counts predictions, recall counts
gold spans. The micro average is over the types curate reports by default (``curate.filters.DEFAULT_ENTITIES``
that occur in the data); both analyzers are scored on the same types.

Usage::

    .venv/bin/python benchmarks/bench_pii.py [--data FILE] [--limit N] [--out benchmarks/results/pii.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TYPE_MAP = {"GPE": "LOCATION", "STREET_ADDRESS": "LOCATION", "DOMAIN_NAME": "URL"}
Span = tuple[str, int, int]


def load_presidio(path: Path, limit: int | None) -> list[tuple[str, list[Span]]]:
    """Records of a Presidio-research JSON file as (text, gold spans with mapped types)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SystemExit(f"{path}: expected a JSON list of records in Presidio-research format; {exc}") from exc
    out = []
    for i, row in enumerate(rows[:limit] if limit else rows):
        if not isinstance(row, dict) or "full_text" not in row:
            raise SystemExit(f"{path}: record {i} has no 'full_text'; expected Presidio-research format")
        spans = [(TYPE_MAP.get(s["entity_type"], s["entity_type"]), int(s["start_position"]), int(s["end_position"]))
                 for s in row.get("spans") or []]
        out.append((row["full_text"], spans))
    return out


def evaluate(data, predict: Callable[[str], list[Span]], types: list[str]) -> dict:
    """Per-type and micro precision/recall/F1 with overlap matching, and records per second."""
    gold_n, gold_hit, pred_n, pred_hit = Counter(), Counter(), Counter(), Counter()
    start = time.perf_counter()
    preds = [predict(text) for text, _ in data]
    elapsed = time.perf_counter() - start
    for (_, gold), pred in zip(data, preds, strict=True):
        for g in gold:
            gold_n[g[0]] += 1
            gold_hit[g[0]] += any(p[0] == g[0] and p[1] < g[2] and g[1] < p[2] for p in pred)
        for p in pred:
            pred_n[p[0]] += 1
            pred_hit[p[0]] += any(p[0] == g[0] and p[1] < g[2] and g[1] < p[2] for g in gold)

    def prf(ph: int, pn: int, gh: int, gn: int) -> dict:
        p = ph / pn if pn else 0.0
        r = gh / gn if gn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "gold": gn, "predicted": pn}

    per_type = {t: prf(pred_hit[t], pred_n[t], gold_hit[t], gold_n[t]) for t in sorted(set(gold_n) | set(pred_n))}
    micro = prf(sum(pred_hit[t] for t in types), sum(pred_n[t] for t in types),
                sum(gold_hit[t] for t in types), sum(gold_n[t] for t in types))
    return {"per_type": per_type, "micro": micro, "records_per_s": round(len(data) / elapsed, 1),
            "seconds": round(elapsed, 2)}


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
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from curate.filters import DEFAULT_ENTITIES, detect
    from curate.filters.pii import stock_analyzer

    data = load_presidio(args.data, args.limit)
    types = sorted({g[0] for _, gold in data for g in gold} & set(DEFAULT_ENTITIES))
    detect("warm up: Ann Lee, ann@example.com")
    stock = stock_analyzer()
    stock.analyze("warm up: Ann Lee", language="en")

    def curate_predict(text: str) -> list[Span]:
        return [(f.entity_type, f.start, f.end) for f in detect(text)]

    def stock_predict(text: str) -> list[Span]:
        return [(r.entity_type, r.start, r.end) for r in stock.analyze(text, language="en")]

    results = {"data": str(args.data), "records": len(data), "micro_types": types, "type_map": TYPE_MAP,
               "match": "overlap, same type", "curate": evaluate(data, curate_predict, types),
               "baseline_presidio_stock": evaluate(data, stock_predict, types)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    cur, base = results["curate"], results["baseline_presidio_stock"]
    print(f"{'type':<20} {'curate P/R/F1':>22} {'baseline P/R/F1':>22}  gold")
    for t in sorted(set(cur["per_type"]) | set(base["per_type"])):
        c = cur["per_type"].get(t, {"precision": 0, "recall": 0, "f1": 0, "gold": 0})
        b = base["per_type"].get(t, {"precision": 0, "recall": 0, "f1": 0, "gold": 0})
        print(f"{t:<20} {c['precision']:6.3f} {c['recall']:6.3f} {c['f1']:6.3f}   "
              f"{b['precision']:6.3f} {b['recall']:6.3f} {b['f1']:6.3f}  {max(c['gold'], b['gold'])}")
    print(f"micro over {types}")
    for name, r in (("curate", cur), ("baseline", base)):
        m = r["micro"]
        print(f"  {name:<9} P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f}  "
              f"{r['records_per_s']} records/s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
