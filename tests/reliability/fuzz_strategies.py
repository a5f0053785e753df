"""Hypothesis strategies for the fuzz tests: valid rows (with the record each must become) and malformed input.

Valid rows come with the record id curate must store for them, computed independently of the reader with
:func:`curate.ingest.records.record_id` on the expected fields. Garbage comes in kinds that are bad by construction
(broken JSON, wrong types, huge numbers, deep nesting, NUL bytes, invalid UTF-8, overlong lines, unbalanced
quotes, ragged rows ...), each tagged so a failure says which kind broke.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from curate.ingest.formats import TARGET_FIELDS
from curate.ingest.records import normalise_value, record_id

BOM = "\ufeff"
CLASSES = ("billing", "bug", "praise")

# Text that curate must keep: any characters but unpaired surrogates, with something that is not whitespace.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24).filter(lambda t: t.strip())
ODD_TEXT = st.sampled_from([
    "caf\u00e9", "cafe\u0301", "\u202eevil\u202c", "\u200b\u200d", "\U0001f600 emoji", "\u2028line\u2029sep",
    "tab\there", "nul\x00byte", "crlf\r\nend", "\ufeffbom", "\u0000", "\ud7ff\ue000", "\U0010ffff",
])
ANY_TEXT = st.one_of(st.text(max_size=30), ODD_TEXT, st.text(st.characters(), max_size=10))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=12))
JSONISH = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                       max_leaves=8)
META_KEY = st.text(min_size=1, max_size=10).filter(lambda k: k not in TARGET_FIELDS and k.strip() == k and k)
LABEL = st.one_of(st.none(), st.sampled_from(CLASSES), st.integers(-5, 5), st.booleans())


@dataclass(frozen=True)
class ValidRow:
    """A row curate must store, and the id of the record it must become."""

    row: dict[str, Any]
    kind: str
    fields: dict[str, Any]

    @property
    def id(self) -> str:
        return record_id(self.kind, normalise_value(self.fields))


@dataclass(frozen=True)
class Bad:
    """A malformed line or element, tagged with the kind of damage."""

    kind: str
    data: bytes


@st.composite
def valid_rows(draw: st.DrawFn, *, meta: bool = True) -> ValidRow:
    """A row of one of the shapes curate reads, with an optional label and extra columns."""
    shape = draw(st.sampled_from(["text", "example", "preference", "candidates", "messages", "alpaca"]))
    text = TEXT if draw(st.booleans()) else st.one_of(TEXT, ODD_TEXT.filter(lambda t: t.strip()))
    if shape == "text":
        t = draw(text)
        row, kind, fields = {"text": t}, "text", {"text": t}
    elif shape == "example":
        p, c = draw(text), draw(text)
        row, kind, fields = {"prompt": p, "completion": c}, "example", {"prompt": p, "completion": c}
    elif shape == "preference":
        p, a, b = draw(text), draw(text), draw(text)
        row = {"prompt": p, "chosen": "A: " + a, "rejected": "B: " + b}
        kind, fields = "preference", dict(row)
    elif shape == "candidates":
        p, cs = draw(text), draw(st.lists(text, min_size=2, max_size=4))
        row, kind, fields = {"prompt": p, "completions": cs}, "candidates", {"prompt": p, "completions": cs}
    elif shape == "messages":
        msgs = [{"role": "user", "content": draw(text)}, {"role": "assistant", "content": draw(text)}]
        row, kind, fields = {"messages": msgs}, "example", {"messages": msgs}
    else:
        i, o, extra = draw(text), draw(text), draw(st.one_of(st.just(""), text))
        row = {"instruction": i, "output": o, **({"input": extra} if extra else {})}
        kind, fields = "example", {"prompt": f"{i}\n\n{extra}" if extra.strip() else i, "completion": o}
    label = draw(LABEL)
    if label is not None:
        row["label"] = label
    if meta:
        row.update(draw(st.dictionaries(META_KEY, JSONISH, max_size=3)))
    return ValidRow(row, kind, fields)


def json_line(row: dict[str, Any], *, ascii_only: bool = True) -> bytes:
    """One row as a line of JSON (big integers kept: the stdlib writes them, orjson would refuse)."""
    return json.dumps(row, ensure_ascii=ascii_only).encode()


# ----------------------------------------------------------------------------------------------- bad JSON rows

BAD_VALUE = st.one_of(st.integers(), st.integers(min_value=2**64, max_value=2**200), st.booleans(),
                      st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(), max_size=3),
                      st.dictionaries(st.sampled_from(["x", "rolle", "contents"]), st.integers(), max_size=2),
                      st.just(""), st.just("   \t"), st.none())


@st.composite
def wrong_type_rows(draw: st.DrawFn) -> dict[str, Any]:
    """An object of a known shape with one field of the wrong type (or empty): never a valid record."""
    bad = draw(BAD_VALUE)
    ok = draw(TEXT)
    return draw(st.sampled_from([
        {"text": bad if bad is not None else ""},
        {"prompt": bad, "completion": ok} if bad not in (None,) else {"prompt": "", "completion": ok},
        {"prompt": ok, "completion": bad if not isinstance(bad, str) else 5},
        {"messages": bad if bad is not None else []},
        {"messages": [{"role": "wizard", "content": ok}]},
        {"messages": [{"role": "user"}]},
        {"chosen": bad if bad is not None else "", "rejected": ok},
        {"prompt": ok, "chosen": ok, "rejected": ok},
        {"prompt": ok, "completions": [ok]},
        {"prompt": ok, "completions": bad if not isinstance(bad, list) or len(bad) < 2 else [1, 2]},
        {"text": ok, "label": draw(st.sampled_from([1.5, [1], {"a": 1}, 10**30, -(10**25)]))},
        {"label": "x"},
        {"unrelated": ok},
        {},
    ]))


def _nested(depth: int, *, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


@st.composite
def bad_json_values(draw: st.DrawFn, max_row_bytes: int) -> Bad:
    """A JSON line or array element that must not become a record (bytes, no newline)."""
    kind = draw(st.sampled_from(["truncated", "wrong_type", "non_object", "huge_number", "deep", "deep_content",
                                 "nul", "invalid_utf8", "overlong", "surrogate_escape", "words", "random", "many"]))
    if kind == "many":  # many broken elements on one line
        return Bad(kind, draw(st.sampled_from([b"nul,", b"}, ", b"[[[,", b'"x,', b"], "])) * draw(st.integers(2, 3000)))
    if kind == "truncated":
        text = json_line(draw(valid_rows()).row)
        cut = draw(st.integers(1, len(text) - 1))
        return Bad(kind, text[:cut])
    if kind == "wrong_type":
        return Bad(kind, json_line(draw(wrong_type_rows())))
    if kind == "non_object":
        value = draw(st.one_of(st.integers(), st.text(max_size=10), st.lists(st.integers(), max_size=3),
                               st.booleans(), st.none(), st.lists(st.just({"text": "x"}), min_size=1, max_size=2)))
        return Bad(kind, json.dumps(value).encode())
    if kind == "huge_number":
        return Bad(kind, draw(st.sampled_from([
            b"1e999", b'{"text": 1e999}', b'{"text": "ok", "label": -1e400}',
            b'{"text": 123456789012345678901234567890}',
            b'{"text": "ok", "label": 99999999999999999999999999}', b"-" + b"9" * 5000,
            b'{"text": "ok", "n": ' + b"7" * 5000 + b"}",
        ])))
    if kind == "deep":
        depth = draw(st.integers(1100, 4000))
        return Bad(kind, draw(st.sampled_from([
            _nested(depth).encode(), b'{"text": "ok", "m": ' + _nested(depth).encode() + b"}",
            ('{"a":' * depth + "1" + "}" * depth).encode(),
        ])))
    if kind == "deep_content":  # a message content nested deeper than JSON storage allows
        depth = draw(st.integers(300, 900))
        return Bad(kind, b'{"messages": [{"role": "user", "content": ' + _nested(depth).encode() + b"}]}")
    if kind == "nul":
        return Bad(kind, draw(st.sampled_from([b'{"text": "a\x00b"}', b"\x00" * 5, b'{"text"\x00: "x"}',
                                              b'\x00{"text": "x"}'])))
    if kind == "invalid_utf8":
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80",
                                     b"\xe2\x82"]))
        return Bad(kind, b'{"text": "caf' + junk + b'"}')
    if kind == "overlong":
        return Bad(kind, b'{"text": "' + b"x" * (max_row_bytes + draw(st.integers(1, 5000))) + b'"}')
    if kind == "surrogate_escape":
        return Bad(kind, draw(st.sampled_from([b'{"text": "\\ud800"}', b'{"text": "a\\udfffb"}',
                                              b'{"prompt": "\\udc80", "completion": "x"}'])))
    if kind == "words":
        return Bad(kind, draw(st.sampled_from([b"nul", b"tru", b"{text: \"a\"}", b"{'text': 'a'}", b"// comment",
                                              b"/* c */", b"NaN", b'{"text": NaN}', b"Infinity", b"undefined",
                                              b'{"text": "a",}', b'{"text" "a"}', b"}", b"]", b"[1, 2}",
                                              b'{"a": [1, 2}', b"[[[", b"{{{", b'"unterminated', b"{\"text\": \"ab"])))
    data = draw(st.binary(min_size=1, max_size=120)).replace(b"\n", b" ")
    return Bad(kind, b"#" + data)  # '#' never starts JSON


# ------------------------------------------------------------------------------------------------ CSV rows


def csv_line(cells: list[str], delimiter: str) -> bytes:
    """One CSV record as csv.writer writes it (may span lines when a cell holds a line break)."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerow(cells)
    return out.getvalue().encode()


# A cell csv.writer writes and csv reads back: no unpaired surrogates. It does not start with a line break, a
# quote or a delimiter: written, such a cell starts with '"' followed by that character, which is exactly how a
# quote left open by a bad line above would end cleanly; no reader could tell the two apart.
CSV_TEXT = st.one_of(TEXT, ODD_TEXT).filter(lambda t: t.strip() and t[0] not in '\r\n",\t')
OPENS_QUOTE = ("unbalanced_quote", "quote_at_end")
PLAIN_CELL = st.text(st.characters(exclude_categories=("Cs",), exclude_characters='"\r\n,\t'), max_size=12)


@st.composite
def bad_csv_lines(draw: st.DrawFn, delimiter: str, width: int, max_row_bytes: int) -> Bad:
    """A CSV line that must be quarantined (one physical line, no newline)."""
    kind = draw(st.sampled_from(["ragged", "unbalanced_quote", "wrong_delimiter", "invalid_utf8", "overlong",
                                 "empty_text", "blank_text", "quote_at_end"]))
    nonblank = PLAIN_CELL.filter(lambda c: c.strip())
    if kind == "ragged":
        n = draw(st.integers(1, width + 4).filter(lambda k: k != width))
        cells = [draw(nonblank)] + [draw(PLAIN_CELL) for _ in range(n - 1)]
        return Bad(kind, delimiter.join(cells).encode())
    if kind in OPENS_QUOTE and delimiter == "\t":
        # TSV fields are not quoted: a line with the right number of tab-separated cells is a row whatever its
        # quotes; an open quote is bad here only in a line that is ragged too
        return Bad(kind, ('"' + draw(nonblank)).encode())
    if kind == "unbalanced_quote":
        head = draw(st.lists(nonblank, max_size=width - 1))
        return Bad(kind, delimiter.join([*head, '"' + draw(nonblank)]).encode())
    if kind == "quote_at_end":
        return Bad(kind, (draw(nonblank) + delimiter + '"').encode())
    if kind == "wrong_delimiter":
        other = ";" if delimiter != ";" else "|"
        return Bad(kind, other.join(draw(st.lists(nonblank, min_size=width, max_size=width))).encode())
    if kind == "invalid_utf8":
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xfe\xfe"]))
        return Bad(kind, b"caf" + junk + (delimiter * (width - 1)).encode() + b"x")
    if kind == "overlong":
        return Bad(kind, b"y" * (max_row_bytes + draw(st.integers(1, 3000))) + (delimiter * (width - 1)).encode())
    if kind == "empty_text":
        return Bad(kind, (delimiter + draw(nonblank)).encode() + (delimiter * (width - 2)).encode())
    return Bad(kind, ("  \t " if delimiter != "\t" else "   ").encode() + delimiter.encode() + b"lab" +
               (delimiter * (width - 2)).encode())


# --------------------------------------------------------------------------------------------- mutations


@st.composite
def mutated(draw: st.DrawFn, data: bytes, *, max_ops: int = 4) -> bytes:
    """``data`` with a few random byte-level edits: cut, flip, insert, delete, duplicate, splice garbage."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "overwrite", "duplicate"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "truncate":
            del out[at:]
        elif op == "flip" and out:
            out[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            out[at:at] = draw(st.one_of(st.binary(min_size=1, max_size=40), st.sampled_from(
                [b"\n", b"\r\n", b'"', b",", b"\t", b"\x00", b"\xff", b"[", b"]", b"{", b"}", b"\xef\xbb\xbf"])))
        elif op == "delete":
            del out[at : at + draw(st.integers(1, 64))]
        elif op == "overwrite":
            junk = draw(st.binary(min_size=1, max_size=64))
            out[at : at + len(junk)] = junk
        elif op == "duplicate":
            out[at:at] = out[at : at + draw(st.integers(1, 200))]
    return bytes(out)


# ------------------------------------------------------------------------------------- annotation values


HUGE = st.sampled_from([10_000, 100_001, 250_000]).map(lambda n: "w" * n)
UNICODE_ODD = st.sampled_from(["\ud800", "a\udfffb", "\x00", "\ufeff", "\u202e", "e\u0301", "\U0001f4a9", "\u2028",
                               "\uffff", "\U000e0001"])
STRINGY = st.one_of(st.text(max_size=20), UNICODE_ODD, HUGE, st.sampled_from(CLASSES), st.sampled_from(
    ["A", "B", "tie", "both_bad", "a", "C", " A", "A\n", "tie ", "BOTH_BAD"]))
ANSWER_VALUE = st.one_of(STRINGY, st.integers(), st.integers(min_value=2**64, max_value=2**80), st.floats(),
                         st.booleans(), st.none(), st.lists(st.integers(-2, 4), max_size=5),
                         st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


def deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def answer_values(draw: st.DrawFn) -> Any:
    """An answer value as the service receives it (decoded JSON): right and wrong shapes for every task type."""
    shape = draw(st.sampled_from(["pair", "order", "rewrite", "label", "mixed", "json", "deep", "not_object"]))
    if shape == "pair":
        value = {"choice": draw(ANSWER_VALUE)}
        if draw(st.booleans()):
            value["note"] = draw(ANSWER_VALUE)
        return value
    if shape == "order":
        return {"order": draw(st.one_of(st.permutations([0, 1, 2]), st.lists(ANSWER_VALUE, max_size=4),
                                        st.sampled_from([[True, 0, 2], [0.0, 1, 2], ["0", "1", "2"], [0, 0, 1],
                                                         [0, 1, 2, 3], [2, 1], [-1, 0, 1], [0, 1, 2**70]]),
                                        ANSWER_VALUE))}
    if shape == "rewrite":
        value = {"completion": draw(ANSWER_VALUE)}
        if draw(st.booleans()):
            value["accepted_as_is"] = draw(st.one_of(st.booleans(), ANSWER_VALUE))
        return value
    if shape == "label":
        return {"label": draw(ANSWER_VALUE)}
    if shape == "mixed":
        return draw(st.dictionaries(st.sampled_from(["choice", "note", "order", "completion", "accepted_as_is",
                                                     "label", "extra"]), ANSWER_VALUE, max_size=4))
    if shape == "json":
        return draw(JSONISH)
    if shape == "deep":
        return {"choice": "A", "note": "", "extra": deep_list(draw(st.integers(250, 400)))}
    return draw(st.one_of(st.lists(ANSWER_VALUE, max_size=3), ANSWER_VALUE))


RAW_VALUE = st.one_of(
    answer_values().map(lambda v: json.dumps(v, ensure_ascii=False) if _dumpable(v) else "{}"),
    st.sampled_from(["", " ", "{", "}", "[", "null", "true", "0", '"A"', '{"choice": "A"', '{"choice": A}',
                     "{'choice': 'A'}", '{"choice": "A"}}', "\ufeff{\"choice\": \"A\"}", '{"label": NaN}',
                     '{"choice": "A", "note": "\\ud800"}', "[" * 5000 + "]" * 5000, "1" * 5000, "\x00",
                     '{"order": [0, 1, 2]}', '{"label": "bug"}', '{"completion": "ok", "accepted_as_is": "no"}']),
    st.text(max_size=40), HUGE.map(lambda s: '{"completion": "' + s + '"}'),
)
RAW_ID = st.one_of(st.integers(-3, 40), st.integers(2**62, 2**70), st.floats(), st.sampled_from(
    ["1", " 2 ", "abc", "", "1e3", "\u0663", "-1", "9" * 40]), st.none(), st.booleans(), st.lists(st.integers(),
                                                                                                  max_size=2))
RAW_SECONDS = st.one_of(st.none(), st.floats(), st.integers(-5, 10**6), st.sampled_from(["12", "abc", ""]),
                        st.booleans(), st.lists(st.integers(), max_size=1))


def _dumpable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except (ValueError, RecursionError, UnicodeEncodeError):
        return False
    return True
