"""Gold PII spans in the layouts public sets use, for ``curate bench pii --data``.

One JSON array or JSONL file (``.gz`` read too) of records, each a text and its spans (end-exclusive character
offsets). Recognised layouts:

- Presidio-research: ``full_text`` + ``spans`` of ``{entity_type, start_position, end_position}``;
- spaCy / Prodigy: ``text`` + ``spans`` (or ``entities``) of ``{start, end, label}``;
- doccano: ``text`` + ``label`` (or ``labels``) of ``[start, end, "LABEL"]``;
- ai4privacy: ``source_text`` + ``privacy_mask`` of ``{start, end, label}``.

In every layout label names are mapped to Presidio's types (:data:`ALIASES`: ``FIRSTNAME``/``LASTNAME``/``PER``
-> ``PERSON``, ``CITY``/``STREET``/``GPE``/``LOC`` -> ``LOCATION``, ``TELEPHONENUM`` -> ``PHONE_NUMBER``, ...).
Outside the Presidio layout neighbouring spans of one type with only spaces between them are also one span
("John" + "Smith" -> "John Smith"), as a detector reports a name.

>>> rows = [{"source_text": "Call John Smith", "privacy_mask": [{"start": 5, "end": 9, "label": "FIRSTNAME"},
...                                                                {"start": 10, "end": 15, "label": "LASTNAME"}]}]
>>> spans_of_rows(rows, "example.jsonl")
[('Call John Smith', [('PERSON', 5, 15)])]
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curate.errors import InputError

Span = tuple[str, int, int]
Data = list[tuple[str, list[Span]]]

TEXT_KEYS = ("full_text", "text", "source_text")
SPAN_KEYS = ("spans", "privacy_mask", "entities", "label", "labels")
#: Label names of public PII sets -> Presidio's entity types (compared upper-case).
ALIASES: dict[str, str] = {
    **dict.fromkeys(("PER", "PERSON", "NAME", "FULLNAME", "FIRSTNAME", "FIRST_NAME", "LASTNAME", "LAST_NAME",
                     "MIDDLENAME", "GIVENNAME", "SURNAME", "NAME_STUDENT"), "PERSON"),
    **dict.fromkeys(("LOC", "LOCATION", "GPE", "FAC", "CITY", "STATE", "COUNTRY", "COUNTY", "STREET",
                     "STREETADDRESS", "STREET_ADDRESS", "ADDRESS"), "LOCATION"),
    **dict.fromkeys(("EMAIL", "EMAIL_ADDRESS"), "EMAIL_ADDRESS"),
    **dict.fromkeys(("PHONE", "PHONENUMBER", "PHONE_NUMBER", "PHONE_NUM", "TELEPHONENUM"), "PHONE_NUMBER"),
    **dict.fromkeys(("CREDITCARD", "CREDIT_CARD", "CREDITCARDNUMBER", "CREDIT_CARD_NUMBER"), "CREDIT_CARD"),
    **dict.fromkeys(("IBAN", "IBAN_CODE"), "IBAN_CODE"),
    **dict.fromkeys(("SSN", "US_SSN", "SOCIALNUM"), "US_SSN"),
    **dict.fromkeys(("IP", "IPV4", "IPV6", "IP_ADDRESS"), "IP_ADDRESS"),
    **dict.fromkeys(("URL", "URL_PERSONAL", "DOMAIN_NAME"), "URL"),
    **dict.fromkeys(("DATE", "TIME", "DATE_TIME", "DOB"), "DATE_TIME"),
}


def read_records(path: Path, what: str = "records with gold spans") -> list[Any]:
    """The records of any file ``curate ingest`` reads (JSONL, a JSON array, CSV/TSV, Parquet; ``.gz`` too); a row
    that cannot be read stops the benchmark, naming its line; ``what`` names the records in the error."""
    from curate.ingest.readers import read_every_row

    return [row for _, row in read_every_row(path, what)]


def _span(raw: Any, presidio: bool) -> Span:
    if isinstance(raw, list | tuple) and len(raw) == 3:
        start, end, label = raw
    elif presidio:
        label, start, end = raw["entity_type"], raw["start_position"], raw["end_position"]
    else:
        label = raw.get("label", raw.get("entity_type", raw.get("type")))
        start, end = raw.get("start", raw.get("start_position")), raw.get("end", raw.get("end_position"))
    if label is None:
        raise KeyError("label")
    return str(label), int(start), int(end)


def _merged(text: str, spans: list[Span]) -> list[Span]:
    """Neighbouring spans of one type with only spaces between them, as one span."""
    out: list[Span] = []
    for kind, start, end in sorted(spans, key=lambda s: (s[1], s[2])):
        if out and out[-1][0] == kind and out[-1][2] <= start and not text[out[-1][2]:start].strip(" "):
            out[-1] = (kind, out[-1][1], end)
        else:
            out.append((kind, start, end))
    return out


def _listed_spans(row: Any, i: int, name: str) -> None:
    """Spans a CSV/TSV or Parquet export holds as text (``'[{"start": 0, ...}]'``, or a Python list's repr as in
    ai4privacy's exports) become the list they spell, in place; text that spells no list is an error."""
    if not isinstance(row, dict):
        return
    for key in SPAN_KEYS:
        value = row.get(key)
        if not isinstance(value, str) or not value.strip().startswith("["):
            continue
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            try:
                parsed = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                parsed = None
        if not isinstance(parsed, list):
            raise InputError(f"{name}: record {i}: the {key!r} column holds text that is not a list of spans "
                             f"({value[:60]!r}); expected JSON such as "
                             '[{"start": 0, "end": 7, "label": "PERSON"}]')
        row[key] = parsed


def spans_of_rows(rows: Sequence[Any], name: str, type_map: dict[str, str] | None = None) -> Data:
    """``(text, spans)`` per record of any layout above; ``type_map`` renames the Presidio layout's types first
    (then :data:`ALIASES`; a name in neither is kept).

    Raises:
        InputError: a record without text, a malformed span, or a file where no record has a spans column
            (gold spans are what the benchmark scores against).
    """
    out: Data = []
    any_spans = False
    for i, row in enumerate(rows):
        _listed_spans(row, i, name)
        text_key = next((k for k in TEXT_KEYS if isinstance(row, dict) and isinstance(row.get(k), str)), None)
        span_key = next((k for k in SPAN_KEYS if isinstance(row, dict) and isinstance(row.get(k), list)), None)
        any_spans = any_spans or span_key is not None
        if text_key is None:
            raise InputError(f"{name}: record {i} has no text ({', '.join(TEXT_KEYS)}); expected records with a "
                             f"text and gold spans ({', '.join(SPAN_KEYS)})")
        presidio = text_key == "full_text"
        try:
            spans = [_span(s, presidio) for s in (row.get(span_key) or [] if span_key else [])]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{name}: record {i} has a span without a label, start and end ({exc!r}); expected "
                             "{entity_type, start_position, end_position}, {start, end, label} or "
                             "[start, end, label]") from exc
        if presidio:
            spans = [((type_map or {}).get(k) or ALIASES.get(k.upper(), k), s, e) for k, s, e in spans]
        else:
            spans = _merged(row[text_key], [(ALIASES.get(k.upper(), k.upper()), s, e) for k, s, e in spans])
        out.append((row[text_key], spans))
    if out and not any_spans:
        raise InputError(f"{name}: no record has gold spans (a list in one of {', '.join(SPAN_KEYS)}); the PII "
                         "benchmark scores detections against them. For text without gold spans use --fp-data.")
    return out
