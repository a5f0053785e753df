"""Data for the PII benchmark: gold spans (Presidio-research JSON and other span layouts, CoNLL IOB/IO tags, the
Hugging Face Hub's token rows) and plain texts (JSON, JSONL).

Gold data becomes ``(text, [(type, start, end), ...])`` with end-exclusive character offsets. Texts with little
or no real PII (for false positives) become a list of strings.

>>> text, spans = conll_records(["Ann\\tB-person", "Lee\\tI-person", "in\\tO", "Paris\\tB-location", ""])[0]
>>> text, [text[s:e] for _, s, e in spans], [t for t, _, _ in spans]
('Ann Lee in Paris', ['Ann Lee', 'Paris'], ['PERSON', 'LOCATION'])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from curate.bench.pii_spans import ALIASES
from curate.errors import InputError, SourceNotFoundError, UnsupportedFormatError

#: Gold type names mapped to curate's (Presidio's) names (:data:`curate.bench.pii_spans.ALIASES` maps many more).
TYPE_MAP = {"GPE": "LOCATION", "STREET_ADDRESS": "LOCATION", "DOMAIN_NAME": "URL", "person": "PERSON",
            "location": "LOCATION"}
Span = tuple[str, int, int]
Data = list[tuple[str, list[Span]]]
#: ``--format`` values of ``curate bench pii``.
GOLD_FORMATS = ("auto", "conll", "presidio")
CONLL_SUFFIXES = (".conll", ".iob", ".iob2", ".bio", ".bioes", ".tsv", ".txt")
RECORD_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".parquet")
#: Tag columns of the Hub's token rows (``tokens`` + ``ner_tags``).
TAG_KEYS = ("ner_tags", "tags")


def load_presidio(path: Path, limit: int | None = None, tag_names: Sequence[str] | None = None) -> Data:
    """Records of a gold-span file as ``(text, gold spans)`` with mapped type names: Presidio-research JSON, the
    spaCy / doccano / ai4privacy layouts of :mod:`curate.bench.pii_spans`, or the Hub's token rows
    (:func:`token_records`); a JSON array, JSONL, CSV/TSV or Parquet."""
    from curate.bench.pii_spans import read_records, spans_of_rows

    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file. Pass --data FILE: gold spans (Presidio-research JSON, "
                                  "spaCy/doccano/ai4privacy JSON or JSONL) or CoNLL.")
    try:
        rows = read_records(path)
    except UnsupportedFormatError:
        raise InputError(f"{path}: not gold-span records (JSON, JSONL, CSV/TSV or Parquet: "
                         f"{', '.join(RECORD_SUFFIXES)}, optionally .gz). For a CoNLL file (a token and its tag per "
                         f"line; {', '.join(CONLL_SUFFIXES)}) pass --format conll.") from None
    rows = rows[:limit] if limit else rows
    tokens = token_records(rows, str(path), tag_names)
    return tokens if tokens is not None else spans_of_rows(rows, str(path), TYPE_MAP)


_TAG_PREFIXES = ("B", "I", "E", "L", "S", "U")


def _tag(tag: str) -> tuple[str, str | None]:
    """``(prefix, curate type)`` of an IOB/IOB2/BIOES/BILOU tag (``B-PER`` -> ``("B", "PERSON")``) or an IO tag (a
    bare ``PER`` -> ``("I", "PERSON")``); a type that is not personal data (``ORG``, ``MISC``, WNUT-17's
    ``corporation``) or ``O`` gives ``("O", None)``."""
    prefix, sep, kind = tag.partition("-")
    if not sep:
        prefix, kind = "I", tag
    mapped = ALIASES.get(kind.upper()) if prefix.upper() in _TAG_PREFIXES else None
    return (prefix.upper(), mapped) if mapped else ("O", None)


def tagged_post(tokens: Sequence[tuple[str, str]]) -> tuple[str, list[Span]]:
    """``(tokens joined by single spaces, gold spans)`` of one post's ``(token, tag)`` pairs (tags as
    :func:`_tag` reads them)."""
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
    return text, [(k, s, e) for k, s, e in spans]


def conll_records(lines: Iterable[str]) -> Data:
    """Posts of a CoNLL file as ``(tokens joined by single spaces, gold spans)``: one token per line with its tag in
    the last column (``token<TAB>B-person`` as WNUT-17, ``EU NNP B-NP B-ORG`` as CoNLL-2003), posts apart by empty
    lines or ``-DOCSTART-``; IOB, IOB2, BIOES and BILOU tags, or IO tags (consecutive tokens tagged ``PER`` are one
    span); tag names mapped as in :data:`curate.bench.pii_spans.ALIASES` (``PER``, ``person`` -> PERSON; ``LOC``,
    ``GPE`` -> LOCATION), other types left out. A byte-order mark alone on a line is skipped."""
    out: Data = []
    tokens: list[tuple[str, str]] = []
    for line in [*lines, ""]:
        words = line.split()
        if not words or words == ["\ufeff"] or words[0] == "-DOCSTART-":
            if tokens:
                out.append(tagged_post(tokens))
                tokens = []
            continue
        parts = line.rstrip("\r\n").split("\t") if "\t" in line else words  # a tab-separated token keeps its spaces
        tokens.append((parts[0], parts[-1].strip() if len(parts) > 1 else "O"))
    return out


def token_records(rows: Sequence[Any], name: str, tag_names: Sequence[str] | None = None) -> Data | None:
    """Posts of the Hugging Face Hub's token rows (``tokens`` + ``ner_tags``, as conll2003, wnut_17, wikiann), or
    None when the first row is not one. String tags are read as CoNLL's; integer tags are names by position in
    ``tag_names`` (``--tag-names``; the set's ``ClassLabel`` names)."""
    first = rows[0] if rows else None
    if not (isinstance(first, dict) and isinstance(first.get("tokens"), list)
            and any(isinstance(first.get(k), list) for k in TAG_KEYS)):
        return None
    out: Data = []
    for i, row in enumerate(rows):
        key = next((k for k in TAG_KEYS if isinstance(row, dict) and isinstance(row.get(k), list)), TAG_KEYS[0])
        toks, tags = (row.get("tokens"), row.get(key)) if isinstance(row, dict) else (None, None)
        if not isinstance(toks, list) or not isinstance(tags, list) or len(toks) != len(tags):
            raise InputError(f"{name}: record {i} has no tokens and {key} lists of one length; expected token rows "
                             'as the Hugging Face Hub\'s NER sets: {"tokens": ["Ann", "Lee"], "ner_tags": [1, 2]}')
        names: list[str] = []
        for tag in tags:
            if isinstance(tag, str):
                names.append(tag)
            elif tag_names is None:
                raise InputError(f"{name}: record {i}: {key} are numbers and the file has no tag names; pass "
                                 "--tag-names O,B-PER,I-PER,... (the set's tag names in order: its dataset card, or "
                                 f"features['{key}'].feature.names in the datasets library)")
            elif isinstance(tag, int) and not isinstance(tag, bool) and 0 <= tag < len(tag_names):
                names.append(tag_names[tag])
            else:
                raise InputError(f"{name}: tag {tag!r} of record {i} has no name in --tag-names "
                                 f"({len(tag_names)} names: {','.join(tag_names)})")
        out.append(tagged_post([(str(t), n) for t, n in zip(toks, names, strict=True)]))
    return out


def _gold_format(path: Path, fmt: str) -> str:
    """``conll`` or ``presidio`` (gold-span records) for ``path``: ``fmt`` unless ``auto``, else by the suffix, else
    by the content (JSON or Parquet: records; lines of tokens and tags: CoNLL)."""
    if fmt not in GOLD_FORMATS:
        raise InputError(f"--format must be presidio (gold-span records: JSON, JSONL, CSV/TSV, Parquet), conll or "
                         f"auto; got {fmt!r}")
    suffixes = [x.lower() for x in path.suffixes if x.lower() != ".gz"]
    if fmt != "auto" or not path.is_file():
        return "presidio" if fmt == "auto" else fmt
    if suffixes and suffixes[-1] in CONLL_SUFFIXES:
        return "conll"
    if suffixes and suffixes[-1] in RECORD_SUFFIXES or path.suffix.lower() == ".gz":
        return "presidio"
    with path.open("rb") as fh:
        head = fh.read(65_536)
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if head.startswith(b"PAR1") or text[:1] in ("[", "{"):
        return "presidio"
    lines = [ln.split() for ln in text.splitlines()[:-1] or text.splitlines()]
    lines = [w for w in lines if w and w[0] != "-DOCSTART-"]
    if lines and all(len(w) > 1 for w in lines) and any(w[-1] == "O" for w in lines):
        return "conll"
    raise InputError(f"{path}: cannot tell from the suffix {''.join(path.suffixes) or '(none)'} or the content "
                     f"whether it is CoNLL ({', '.join(CONLL_SUFFIXES)}) or gold-span records "
                     f"({', '.join(RECORD_SUFFIXES)}, optionally .gz). Pass --format conll (a token and its tag per "
                     "line) or --format presidio (records with a text and its spans).")


def load_gold(path: Path, limit: int | None = None, *, fmt: str = "auto",
              tag_names: Sequence[str] | None = None) -> Data:
    """Gold data from ``path``: CoNLL (:func:`conll_records`) or gold-span records (:func:`load_presidio`), as
    ``fmt`` (``--format``: conll, presidio, or auto: by the suffix, else the content) says.

    Raises:
        InputError: an unknown ``fmt``; a file neither way; a CoNLL file with no span of a personal-data type (its
            tag types named).
    """
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file. Pass --data FILE (CoNLL or gold-span records).")
    if _gold_format(path, fmt) == "presidio":
        return load_presidio(path, limit, tag_names)
    lines = path.read_text(encoding="utf-8").splitlines()
    data = conll_records(lines)
    if not any(spans for _, spans in data):
        tags = sorted({(p[-1].partition("-")[2] or p[-1]) for p in map(str.split, lines)
                       if len(p) > 1 and p[-1] != "O" and p[0] != "-DOCSTART-"} - {""})
        raise InputError(f"{path}: no gold span of a personal-data type (posts: {len(data)}; tag types found: "
                         f"{', '.join(tags[:12]) or 'none'}); expected IOB tags such as B-PER, B-person, "
                         "B-LOC or B-location, or IO tags such as PER or LOC, in the last column")
    return data[:limit] if limit else data


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
