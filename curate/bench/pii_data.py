"""Data for the PII benchmark: gold spans (Presidio-research JSON, CoNLL IOB2) and plain texts (JSON, JSONL).

Gold data becomes ``(text, [(type, start, end), ...])`` with end-exclusive character offsets. Texts with little
or no real PII (for false positives) become a list of strings.

>>> text, spans = conll_records(["Ann\\tB-person", "Lee\\tI-person", "in\\tO", "Paris\\tB-location", ""])[0]
>>> text, [text[s:e] for _, s, e in spans], [t for t, _, _ in spans]
('Ann Lee in Paris', ['Ann Lee', 'Paris'], ['PERSON', 'LOCATION'])
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from curate.errors import InputError, SourceNotFoundError

#: Gold type names mapped to curate's (Presidio's) names.
TYPE_MAP = {"GPE": "LOCATION", "STREET_ADDRESS": "LOCATION", "DOMAIN_NAME": "URL", "person": "PERSON",
            "location": "LOCATION"}
#: CoNLL types kept (WNUT-17's corporation, group, product and creative-work are not personal data).
CONLL_TYPES = {"person": "PERSON", "location": "LOCATION"}
Span = tuple[str, int, int]
Data = list[tuple[str, list[Span]]]


def load_presidio(path: Path, limit: int | None = None) -> Data:
    """Records of a gold-span file as ``(text, gold spans)`` with mapped type names: Presidio-research JSON, or
    the spaCy / doccano / ai4privacy layouts of :mod:`curate.bench.pii_spans` (JSON array or JSONL)."""
    from curate.bench.pii_spans import read_records, spans_of_rows

    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file. Pass --data FILE: gold spans (Presidio-research JSON, "
                                  "spaCy/doccano/ai4privacy JSON or JSONL) or CoNLL.")
    rows = read_records(path)
    return spans_of_rows(rows[:limit] if limit else rows, str(path), TYPE_MAP)


def conll_records(lines: Iterable[str]) -> Data:
    """Posts of a CoNLL file (``token<TAB>IOB2 tag`` per line, posts apart by empty or tab-only lines) as
    ``(tokens joined by single spaces, PERSON/LOCATION spans)``; a byte-order mark alone on a line is skipped."""
    out: Data = []
    tokens: list[tuple[str, str]] = []

    def flush() -> None:
        if not tokens:
            return
        text, spans, pos = "", [], 0
        open_span: list[Any] | None = None
        for tok, tag in tokens:
            start = pos + (1 if text else 0)
            text = f"{text} {tok}" if text else tok
            pos = len(text)
            kind = tag[2:] if tag[:2] in ("B-", "I-") else ""
            if open_span is not None and not (tag.startswith("I-") and kind == open_span[0]):
                spans.append(tuple(open_span))
                open_span = None
            if kind in CONLL_TYPES and open_span is None and tag[:2] in ("B-", "I-"):
                open_span = [kind, start, pos]
            elif open_span is not None:
                open_span[2] = pos
        if open_span is not None:
            spans.append(tuple(open_span))
        out.append((text, [(CONLL_TYPES[k], s, e) for k, s, e in spans]))
        tokens.clear()

    for line in lines:
        line = line.rstrip("\n")
        if not line.strip() or line.strip() == "\ufeff":
            flush()
            continue
        tok, _, tag = line.partition("\t")
        tokens.append((tok, tag.strip() or "O"))
    flush()
    return out


def load_gold(path: Path, limit: int | None = None) -> Data:
    """Gold data from ``path``: CoNLL IOB2 (``.conll``, ``.iob``, ``.tsv``) or Presidio-research JSON."""
    if path.suffix.lower() in (".conll", ".iob", ".tsv", ".txt"):
        if not path.exists():
            raise SourceNotFoundError(f"{path}: no such file. Pass --data FILE (CoNLL or Presidio-research JSON).")
        data = conll_records(path.read_text(encoding="utf-8").splitlines())
        return data[:limit] if limit else data
    return load_presidio(path, limit)


def _field(row: Any, field: str) -> Any:
    for key in field.split("."):
        row = row.get(key) if isinstance(row, dict) else None
    return row


def hh_prompt(transcript: str) -> str:
    """The prompt of an HH-RLHF transcript: the dialogue up to its last ``\\n\\nAssistant:``."""
    cut = transcript.rfind("\n\nAssistant:")
    return transcript[:cut] if cut >= 0 else transcript


def load_texts(path: Path, field: str, *, limit: int | None = None, unique: bool = True) -> list[str]:
    """The strings at ``field`` (dotted for nesting; ``chosen:prompt`` = the HH-RLHF prompt of ``chosen``) of the
    records of a file ``curate ingest`` reads (JSONL, a JSON array, CSV/TSV, Parquet; ``.gz`` too); empty and
    missing values are skipped, repeats dropped if ``unique``."""
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file. Pass --fp-data FILE (JSONL, JSON array, CSV/TSV, Parquet).")
    from curate.bench.pii_spans import read_records

    rows = read_records(path, "records")
    name, _, how = field.partition(":")
    texts = [_field(r, name) for r in rows]
    out = [hh_prompt(t) if how == "prompt" else t for t in texts if isinstance(t, str) and t.strip()]
    if unique:
        out = list(dict.fromkeys(out))
    if not out:
        raise InputError(f"{path}: no string values at field {field!r}; pass --fp-field NAME")
    return out[:limit] if limit else out
