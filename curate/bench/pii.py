"""PII detection benchmark: curate's analyzer vs Presidio's stock AnalyzerEngine on the same spaCy model.

Gold data: Presidio-research's JSON format (a list of records with ``full_text`` and ``spans`` of
``{entity_type, start_position, end_position}``, end exclusive), the other span layouts of
:mod:`curate.bench.pii_spans`, the Hub's token rows, or CoNLL IOB/IO files such as WNUT-17's, converted by
:mod:`curate.bench.pii_data` (person and location entities). False positives: texts with little or no real
PII, measured by :mod:`curate.bench.pii_fp`. :func:`run_suite` runs both over many sets in one report.

Type mapping (dataset -> Presidio), in every layout: :data:`curate.bench.pii_spans.ALIASES` (``PER`` ->
``PERSON``, ``LOC``/``GPE``/``STREET_ADDRESS`` -> ``LOCATION``, ``DOMAIN_NAME`` -> ``URL``, ...); other names are
kept. Types curate does not report by default (``TITLE``, ``AGE``, ``URL``, ``DATE_TIME``) are left out of the
micro average; :func:`table_rows` marks which rows count.

Matching: overlap. A predicted span is a true positive if it overlaps a gold span of the same type; a gold
span is found if a predicted span of the same type overlaps it. Precision counts predictions, recall counts
gold spans. The micro average is over the types curate reports by default that occur in the data; both
analyzers are scored on the same types, side by side in one run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from curate.bench.pii_data import TYPE_MAP, Data, Span, load_gold, load_presidio, load_texts
from curate.errors import InputError

__all__ = ["TYPE_MAP", "Data", "Span", "evaluate", "load_presidio", "run", "run_suite", "table_rows"]


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


Predict = Callable[[str], list[Span]]


def _analyzers() -> tuple[Predict, Predict, list[str], str, Predict]:
    """curate's detection, stock Presidio's, curate's default types, the spaCy model, and curate's redaction
    (detection plus a found name's parts and repeats, :func:`curate.filters.pii.propagate_names`)."""
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from curate.filters.pii import DEFAULT_ENTITIES, detect, propagate_names, spacy_model_name, stock_analyzer

    detect("warm up: Ann Lee, ann@example.com")
    stock = stock_analyzer()
    stock.analyze("warm up: Ann Lee", language="en")
    seen: dict[str, Any] = {}

    def found(text: str) -> Any:  # the redaction figures run after the detection ones on the same texts: detect once
        if text not in seen:
            seen[text] = detect(text)
        return seen[text]

    def curate_predict(text: str) -> list[Span]:
        return [(f.entity_type, f.start, f.end) for f in found(text)]

    def curate_redaction(text: str) -> list[Span]:
        return [(f.entity_type, f.start, f.end) for f in propagate_names([text], [found(text)])[0]]

    def stock_predict(text: str) -> list[Span]:
        return [(r.entity_type, r.start, r.end) for r in stock.analyze(text, language="en")]

    return curate_predict, stock_predict, list(DEFAULT_ENTITIES), spacy_model_name(), curate_redaction


def _scored_types(data: Data, path: Path) -> list[str]:
    """The types of the micro average: those of the gold spans that curate reports by default (checked before any
    model loads)."""
    from curate.filters.pii import DEFAULT_ENTITIES

    found = {g[0] for _, gold in data for g in gold}
    types = sorted(found & set(DEFAULT_ENTITIES))
    if not types:
        raise InputError(f"{path}: none of its gold spans is of a type curate detects (gold types: "
                         f"{', '.join(sorted(found)[:12]) or 'none'}; curate's: {', '.join(DEFAULT_ENTITIES)}); name "
                         "the types as Presidio does (PERSON, LOCATION, PHONE_NUMBER, ...) or as the public sets do "
                         "(PER, LOC, FIRSTNAME, TELEPHONENUM, ...)")
    return types


def _gold_figures(data: Data, path: Path, types: list[str], curate: Predict, stock: Predict,
                  redaction: Predict) -> dict[str, Any]:
    """curate's detection and stock's side by side, and curate's redaction (detection + name parts)."""
    return {"data": str(path), "records": len(data), "micro_types": types, "type_map": TYPE_MAP,
            "match": "overlap, same type", "curate": evaluate(data, curate, types),
            "baseline_presidio_stock": evaluate(data, stock, types),
            "curate_redaction": evaluate(data, redaction, types)}


def run(path: Path, *, fmt: str = "presidio", limit: int | None = None,
        tag_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Score curate's analyzer and stock Presidio on the same records (read as ``fmt`` says: presidio, conll or
    auto; :func:`curate.bench.pii_data.load_gold`); returns the figures (JSON-ready)."""
    data = load_gold(path, limit, fmt=fmt, tag_names=tag_names)
    types = _scored_types(data, path)
    curate, stock, _, model, redaction = _analyzers()
    return {**_gold_figures(data, path, types, curate, stock, redaction), "spacy_model": model}


def run_suite(gold: Sequence[tuple[str, Path]], fp: Sequence[tuple[str, Path, str]], *, limit: int | None = None,
              verdicts: Path | None = None, sample_per_type: int = 100, fmt: str = "auto",
              tag_names: Sequence[str] | None = None, say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every gold set (name, path; read as ``fmt`` says) scored for curate and stock Presidio side by side, and the
    false-positive figures of both on every text set (name, path, field). Returns the JSON-ready report."""
    from curate.bench.pii_fp import load_verdicts, measure

    sets = [(name, path, data, _scored_types(data, path)) for name, path in gold for data in
            [load_gold(path, limit, fmt=fmt, tag_names=tag_names)]]
    curate, stock, defaults, model, redaction = _analyzers()
    checked = load_verdicts(verdicts)
    report: dict[str, Any] = {"spacy_model": model, "default_entities": defaults, "gold": {}, "false_positives": {}}
    for name, path, data, types in sets:
        say(f"gold {name}")
        report["gold"][name] = _gold_figures(data, path, types, curate, stock, redaction)
    for name, path, field in fp:
        say(f"false positives {name}")
        texts = load_texts(path, field, limit=limit)
        report["false_positives"][name] = {
            "data": str(path), "field": field, "counted_types": defaults,
            "curate": measure(name, texts, curate, defaults, sample_per_type=sample_per_type, verdicts=checked),
            "baseline_presidio_stock": measure(name, texts, stock, defaults, sample_per_type=0),
            "curate_redaction": measure(name, texts, redaction, defaults, sample_per_type=0),
        }
    report["summary"] = summary(report)
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures: per gold set micro P/R/F1 and PERSON recall; per text set placeholders per 1,000
    words and share of records changed; curate vs stock."""
    out: dict[str, Any] = {}
    for name, r in report.get("gold", {}).items():
        row = {}
        for who in ("curate", "baseline_presidio_stock"):
            m, person = r[who]["micro"], r[who]["per_type"].get("PERSON", {})
            row[who] = {"precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
                        "person_recall": person.get("recall"), "records_per_s": r[who]["records_per_s"]}
        row["f1_gain"] = round(row["curate"]["f1"] - row["baseline_presidio_stock"]["f1"], 4)
        if "curate_redaction" in r:  # what redaction replaces: the findings plus a found name's parts and repeats
            m, person = r["curate_redaction"]["micro"], r["curate_redaction"]["per_type"].get("PERSON", {})
            row["curate_redaction"] = {"precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
                                       "person_recall": person.get("recall")}
        out[name] = row
    for name, r in report.get("false_positives", {}).items():
        c, b = r["curate"], r["baseline_presidio_stock"]
        out[name] = {who: {"per_1000_words": x["per_1000_words"], "records_changed": x["records_changed"]}
                     for who, x in (("curate", c), ("baseline_presidio_stock", b))}
        out[name]["ratio"] = round(c["per_1000_words"] / b["per_1000_words"], 3) if b["per_1000_words"] else None
        if "curate_redaction" in r:
            red = r["curate_redaction"]
            out[name]["curate_redaction"] = {"per_1000_words": red["per_1000_words"],
                                             "records_changed": red["records_changed"]}
    return out


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, int, bool]]:
    """``(type, curate P/R/F1, baseline P/R/F1, gold count, in the micro average)`` rows for printing: the types
    of the micro average first, then the others (gold types curate does not report, stock-only types)."""
    cur, base = results["curate"]["per_type"], results["baseline_presidio_stock"]["per_type"]
    micro = set(results.get("micro_types", ()))
    empty = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 0}
    rows = []
    for t in sorted(set(cur) | set(base), key=lambda t: (t not in micro, t)):
        c, b = cur.get(t, empty), base.get(t, empty)
        rows.append((t, f"{c['precision']:.3f} / {c['recall']:.3f} / {c['f1']:.3f}",
                     f"{b['precision']:.3f} / {b['recall']:.3f} / {b['f1']:.3f}", max(c["gold"], b["gold"]),
                     t in micro))
    return rows
