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

from curate.bench.pii_spans import ALIASES
from curate.errors import InputError, SourceNotFoundError

#: Gold type names mapped to curate's (Presidio's) names.
TYPE_MAP = {"GPE": "LOCATION", "STREET_ADDRESS": "LOCATION", "DOMAIN_NAME": "URL", "person": "PERSON",
            "location": "LOCATION"}
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


_TAG_PREFIXES = ("B", "I", "E", "L", "S", "U")


def _tag(tag: str) -> tuple[str, str | None]:
    """``(prefix, curate type)`` of an IOB/IOB2/BIOES/BILOU tag (``B-PER`` -> ``("B", "PERSON")``); a type that is not
    personal data (``ORG``, ``MISC``, WNUT-17's ``corporation``) or ``O`` gives ``("O", None)``."""
    prefix, sep, kind = tag.partition("-")
    mapped = ALIASES.get(kind.upper()) if sep and prefix.upper() in _TAG_PREFIXES else None
    return (prefix.upper(), mapped) if mapped else ("O", None)


def conll_records(lines: Iterable[str]) -> Data:
    """Posts of a CoNLL file as ``(tokens joined by single spaces, gold spans)``: one token per line with its tag in
    the last column (``token<TAB>B-person`` as WNUT-17, ``EU NNP B-NP B-ORG`` as CoNLL-2003), posts apart by empty
    lines or ``-DOCSTART-``; IOB, IOB2, BIOES and BILOU tags; tag names mapped as in
    :data:`curate.bench.pii_spans.ALIASES` (``PER``, ``person`` -> PERSON; ``LOC``, ``GPE`` -> LOCATION), other
    types left out. A byte-order mark alone on a line is skipped."""
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
            prefix, kind = _tag(tag)
            continues = open_span is not None and prefix in ("I", "E", "L") and kind == open_span[0]
            if open_span is not None and not continues:
                spans.append(tuple(open_span))
                open_span = None
            if continues and open_span is not None:
                open_span[2] = pos
            elif kind is not None:
                open_span = [kind, start, pos]
            if open_span is not None and prefix in ("E", "L", "S", "U"):
                spans.append(tuple(open_span))
                open_span = None
        if open_span is not None:
            spans.append(tuple(open_span))
        out.append((text, [(k, s, e) for k, s, e in spans]))
        tokens.clear()

    for line in lines:
        words = line.split()
        if not words or words == ["\ufeff"] or words[0] == "-DOCSTART-":
            flush()
            continue
        parts = line.rstrip("\r\n").split("\t") if "\t" in line else words  # a tab-separated token keeps its spaces
        tokens.append((parts[0], parts[-1].strip() if len(parts) > 1 else "O"))
    flush()
    return out


def load_gold(path: Path, limit: int | None = None) -> Data:
    """Gold data from ``path``: CoNLL (``.conll``, ``.iob``, ``.tsv``, ``.txt``; :func:`conll_records`) or gold-span
    records (:func:`load_presidio`).

    Raises:
        InputError: a CoNLL file with no span of a personal-data type (its tag types named).
    """
    if path.suffix.lower() in (".conll", ".iob", ".tsv", ".txt"):
        if not path.exists():
            raise SourceNotFoundError(f"{path}: no such file. Pass --data FILE (CoNLL or Presidio-research JSON).")
        lines = path.read_text(encoding="utf-8").splitlines()
        data = conll_records(lines)
        if not any(spans for _, spans in data):
            tags = sorted({p[-1].partition("-")[2] for p in map(str.split, lines) if len(p) > 1 and "-" in p[-1]})
            raise InputError(f"{path}: no gold span of a personal-data type (posts: {len(data)}; tag types found: "
                             f"{', '.join(tags[:12]) or 'none'}); expected IOB tags such as B-PER, B-person, "
                             "B-LOC or B-location in the last column")
        return data[:limit] if limit else data
    return load_presidio(path, limit)


def _field(row: Any, field: str) -> Any:
    """The value at a dotted path as ``--map`` reads it (``messages.-1.content``: a number picks a list item), or
    None where the row has none."""
    from curate.errors import RecordError
    from curate.ingest.mapping import lookup

    try:
        return lookup(row, field) if isinstance(row, dict) else None
    except RecordError:
        return None


def hh_prompt(transcript: str) -> str:
    """The prompt of an HH-RLHF transcript: the dialogue up to its last ``\\n\\nAssistant:``."""
    cut = transcript.rfind("\n\nAssistant:")
    return transcript[:cut] if cut >= 0 else transcript


def load_texts(path: Path, field: str, *, limit: int | None = None, unique: bool = True) -> list[str]:
    """The strings at ``field`` (a dotted path as ``--map`` reads it, ``messages.0.content``; ``chosen:prompt`` = the
    HH-RLHF prompt of ``chosen``) of the records of a file ``curate ingest`` reads (JSONL, a JSON array, CSV/TSV,
    Parquet; ``.gz`` too); empty and missing values are skipped, repeats dropped if ``unique``."""
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
