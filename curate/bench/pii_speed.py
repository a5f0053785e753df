"""PII detection throughput on long texts: characters per second of curate and stock Presidio, in one process.

Four ways over the same texts, each after a warm-up, one after the other:

* ``curate_batched``: how ``ingest --pii`` and ``filter pii`` detect (:func:`curate.filters.pii_batch.detect_many`,
  spaCy's ``nlp.pipe`` in batches of 32);
* ``curate_per_text``: :func:`curate.filters.pii.detect` one text at a time;
* ``stock_per_text``: Presidio's ``AnalyzerEngine.analyze`` one text at a time (its usual use), all predefined
  recognizers, on the same spaCy model;
* ``stock_batched``: Presidio's own ``BatchAnalyzerEngine`` over the list.

Each way runs ``rounds`` times, the ways taking turns, and the fastest round counts (the others are kept in
``rounds_chars_per_second``): on a shared 2-core machine one round varies by about 10%. Higher is faster. The
ratio ``curate_batched / stock_per_text`` is the headline (``curate_vs_stock``), with
``curate_batched / stock_batched`` beside it (``curate_vs_stock_batched``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from curate.bench.pii_data import load_texts


def long_texts(path: Path, fields: Sequence[str], *, limit: int | None = None) -> list[str]:
    """The texts at ``fields`` of every record of ``path`` (JSON array or JSONL, ``.gz`` too), record by record,
    at most ``limit`` of them."""
    columns = [load_texts(path, f, unique=False) for f in fields]
    out = [t for row in zip(*columns, strict=False) for t in row]
    return out[:limit] if limit else out


def _timed(run: Callable[[], Any], chars: int) -> dict[str, Any]:
    started = time.perf_counter()
    found = run()
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "chars_per_second": round(chars / seconds, 1) if seconds > 0 else 0.0,
            "findings": found}


def measure_speed(texts: Sequence[str], say: Callable[[str], None] = lambda _: None, *,
                  rounds: int = 2) -> dict[str, Any]:
    """Characters per second of the four ways over ``texts`` (see the module docstring); JSON-ready."""
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer import BatchAnalyzerEngine

    from curate.filters.pii import detect, stock_analyzer
    from curate.filters.pii_batch import detect_many

    stock = stock_analyzer()
    batch_stock = BatchAnalyzerEngine(analyzer_engine=stock)
    warm = list(texts[:4])
    list(detect_many(warm))
    for t in warm:
        stock.analyze(t, language="en")
    chars = sum(len(t) for t in texts)
    out: dict[str, Any] = {"texts": len(texts), "characters": chars}
    ways: dict[str, Callable[[], int]] = {
        "curate_batched": lambda: sum(len(f) for f in detect_many(texts)),
        "curate_per_text": lambda: sum(len(detect(t)) for t in texts),
        "stock_per_text": lambda: sum(len(stock.analyze(t, language="en")) for t in texts),
        "stock_batched": lambda: sum(len(r) for r in batch_stock.analyze_iterator(list(texts), language="en",
                                                                                 batch_size=32)),
    }
    for turn in range(rounds):
        for name, run in ways.items():
            say(f"PII speed: {name} over {len(texts):,} texts (round {turn + 1} of {rounds})")
            timed = _timed(run, chars)
            seen = out.get(name, {}).get("rounds_chars_per_second", [])
            best = timed if not seen or timed["chars_per_second"] > out[name]["chars_per_second"] else out[name]
            out[name] = {**best, "rounds_chars_per_second": [*seen, timed["chars_per_second"]]}
    base = out["stock_per_text"]["chars_per_second"] or 1.0
    out["curate_vs_stock"] = round(out["curate_batched"]["chars_per_second"] / base, 3)
    out["curate_vs_stock_batched"] = round(out["curate_batched"]["chars_per_second"]
                                           / (out["stock_batched"]["chars_per_second"] or 1.0), 3)
    return out


def run_speed(sets: Sequence[tuple[str, Path, Sequence[str]]], *, limit: int | None = 300, rounds: int = 2,
              say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """:func:`measure_speed` on each ``(name, path, fields)`` set (its first ``limit`` texts)."""
    return {name: {"data": str(path), "fields": list(fields),
                   **measure_speed(long_texts(path, fields, limit=limit), say, rounds=rounds)}
            for name, path, fields in sets}
