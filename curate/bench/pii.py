"""PII detection benchmark: curate's analyzer vs Presidio's stock AnalyzerEngine on the same spaCy model.

Data: Presidio-research's JSON format (``format="presidio"``): a list of records with ``full_text`` and
``spans`` of ``{entity_type, start_position, end_position}`` (end exclusive).

Type mapping (dataset -> Presidio): ``GPE`` -> ``LOCATION``, ``STREET_ADDRESS`` -> ``LOCATION``,
``DOMAIN_NAME`` -> ``URL``; all other names are equal. Types neither analyzer predicts (``TITLE``, ``AGE``,
``ZIP_CODE``) are left out of the micro average.

Matching: overlap. A predicted span is a true positive if it overlaps a gold span of the same type; a gold
span is found if a predicted span of the same type overlaps it. Precision counts predictions, recall counts
gold spans. The micro average is over the types curate reports by default that occur in the data; both
analyzers are scored on the same types, side by side in one run.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from curate.errors import InputError, SourceNotFoundError

TYPE_MAP = {"GPE": "LOCATION", "STREET_ADDRESS": "LOCATION", "DOMAIN_NAME": "URL"}
Span = tuple[str, int, int]
Data = list[tuple[str, list[Span]]]


def load_presidio(path: Path, limit: int | None = None) -> Data:
    """Records of a Presidio-research JSON file as ``(text, gold spans)`` with mapped type names."""
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file. Pass --data FILE in Presidio-research JSON format.")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: expected a JSON list of records in Presidio-research format; {exc}") from exc
    if not isinstance(rows, list):
        raise InputError(f"{path}: expected a JSON list of records; got {type(rows).__name__}")
    out: Data = []
    for i, row in enumerate(rows[:limit] if limit else rows):
        if not isinstance(row, dict) or not isinstance(row.get("full_text"), str):
            raise InputError(f"{path}: record {i} has no 'full_text' string; expected Presidio-research format")
        try:
            spans = [(TYPE_MAP.get(s["entity_type"], s["entity_type"]), int(s["start_position"]),
                      int(s["end_position"])) for s in row.get("spans") or []]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: record {i} has a span without entity_type/start_position/end_position "
                             f"({exc!r})") from exc
        out.append((row["full_text"], spans))
    return out


def _prf(ph: int, pn: int, gh: int, gn: int) -> dict[str, Any]:
    p = ph / pn if pn else 0.0
    r = gh / gn if gn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "gold": gn, "predicted": pn}


def evaluate(data: Data, predict: Callable[[str], list[Span]], types: Sequence[str]) -> dict[str, Any]:
    """Per-type and micro precision / recall / F1 with overlap matching, and records per second."""
    gold_n: Counter[str] = Counter()
    gold_hit: Counter[str] = Counter()
    pred_n: Counter[str] = Counter()
    pred_hit: Counter[str] = Counter()
    start = time.perf_counter()
    preds = [predict(text) for text, _ in data]
    elapsed = max(time.perf_counter() - start, 1e-9)
    for (_, gold), pred in zip(data, preds, strict=True):
        for g in gold:
            gold_n[g[0]] += 1
            gold_hit[g[0]] += any(p[0] == g[0] and p[1] < g[2] and g[1] < p[2] for p in pred)
        for p in pred:
            pred_n[p[0]] += 1
            pred_hit[p[0]] += any(p[0] == g[0] and p[1] < g[2] and g[1] < p[2] for g in gold)
    per_type = {t: _prf(pred_hit[t], pred_n[t], gold_hit[t], gold_n[t]) for t in sorted(set(gold_n) | set(pred_n))}
    micro = _prf(sum(pred_hit[t] for t in types), sum(pred_n[t] for t in types),
                 sum(gold_hit[t] for t in types), sum(gold_n[t] for t in types))
    return {"per_type": per_type, "micro": micro, "records_per_s": round(len(data) / elapsed, 1),
            "seconds": round(elapsed, 2)}


def run(path: Path, *, fmt: str = "presidio", limit: int | None = None) -> dict[str, Any]:
    """Score curate's analyzer and stock Presidio on the same records; returns the figures (JSON-ready)."""
    if fmt != "presidio":
        raise InputError(f"--format must be presidio (Presidio-research JSON); got {fmt!r}")
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from curate.filters.pii import DEFAULT_ENTITIES, detect, spacy_model_name, stock_analyzer

    data = load_presidio(path, limit)
    types = sorted({g[0] for _, gold in data for g in gold} & set(DEFAULT_ENTITIES))
    detect("warm up: Ann Lee, ann@example.com")
    stock = stock_analyzer()
    stock.analyze("warm up: Ann Lee", language="en")

    def curate_predict(text: str) -> list[Span]:
        return [(f.entity_type, f.start, f.end) for f in detect(text)]

    def stock_predict(text: str) -> list[Span]:
        return [(r.entity_type, r.start, r.end) for r in stock.analyze(text, language="en")]

    return {"data": str(path), "records": len(data), "micro_types": types, "type_map": TYPE_MAP,
            "match": "overlap, same type", "spacy_model": spacy_model_name(),
            "curate": evaluate(data, curate_predict, types),
            "baseline_presidio_stock": evaluate(data, stock_predict, types)}


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """``(type, curate P/R/F1, baseline P/R/F1, gold count)`` rows for printing."""
    cur, base = results["curate"]["per_type"], results["baseline_presidio_stock"]["per_type"]
    empty = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 0}
    rows = []
    for t in sorted(set(cur) | set(base)):
        c, b = cur.get(t, empty), base.get(t, empty)
        rows.append((t, f"{c['precision']:.3f} / {c['recall']:.3f} / {c['f1']:.3f}",
                     f"{b['precision']:.3f} / {b['recall']:.3f} / {b['f1']:.3f}", max(c["gold"], b["gold"])))
    return rows
