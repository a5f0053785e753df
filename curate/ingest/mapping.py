"""``--map TARGET=SOURCE``: rename a source's columns to the fields curate reads, checked against the file first.

Besides plain renames (``--map text=sentence``, ``--map label=meta.intent``), two targets build a preference
pair from responses kept in separate columns:

* ``--map chosen=response_a --map rejected=response_b``: the better response is always in the same column.
* ``--map responses=response_a,response_b --map preferred=winner``: a column says which one won (``a``/``b``,
  ``0``/``1`` counted from the first, or the column's name, e.g. ``response_b`` or ``model_b``), or two one-hot
  columns do (``--map preferred=winner_model_a,winner_model_b``: the one that is 1 won; both 0 is a tie). Without
  ``preferred``, ``responses`` (two or more columns) become candidates to rank, like ``completions``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from itertools import chain, islice
from typing import Any

from curate.errors import ColumnMappingError, RecordError, did_you_mean
from curate.ingest.raw_rows import RawRow

#: The fields a record is built from (a row's other columns are kept as metadata).
CONTENT_TARGETS = frozenset(
    {"prompt", "completion", "chosen", "rejected", "messages", "completions", "text", "label",
     "instruction", "input", "output"}
)
#: Every name ``--map`` accepts as a target.
TARGET_FIELDS = CONTENT_TARGETS | {"responses", "preferred"}
LIST_TARGETS = frozenset({"completions", "responses"})  # may take several columns: a,b
ONE_HOT_TARGETS = frozenset({"preferred"})  # may take two one-hot columns: the winner's flag is 1
PEEK_ROWS = 200  # rows read to check that mapped columns exist
_TIES = frozenset({"tie", "both", "equal", "same", "neither", "none", "draw"})


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    """Parse ``["target=source", ...]`` into ``{"target": "source"}``.

    >>> parse_mapping(["text=sentence", "label=meta.category"])
    {'text': 'sentence', 'label': 'meta.category'}
    """
    mapping: dict[str, str] = {}
    for item in items or []:
        target, sep, source = item.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise ColumnMappingError(
                f"--map expects TARGET=SOURCE, for example --map text=sentence; got {item!r}."
            )
        if target not in TARGET_FIELDS:
            raise ColumnMappingError(
                f"--map target {target!r} is not a field curate knows. "
                f"Use one of: {', '.join(sorted(TARGET_FIELDS))}.{did_you_mean(target, TARGET_FIELDS)}"
            )
        if "," in source and target not in LIST_TARGETS | ONE_HOT_TARGETS:
            raise ColumnMappingError(f"--map {item}: only {' and '.join(sorted(LIST_TARGETS))} take several columns "
                                     "(a,b), and preferred two one-hot ones; map one column to each other field.")
        if target in ONE_HOT_TARGETS and "," in source and len([c for c in source.split(",") if c.strip()]) != 2:
            raise ColumnMappingError(f"--map {item}: preferred takes one column saying which response won, or two "
                                     "one-hot columns (the first response's flag, then the second's).")
        mapping[target] = source
    if "preferred" in mapping and not LIST_TARGETS & set(mapping):
        raise ColumnMappingError("--map preferred=COLUMN says which of two responses won: also name the two "
                                 "response columns, e.g. --map responses=response_a,response_b.")
    return mapping


def source_paths(target: str, source: str) -> list[str]:
    """The column paths ``source`` names: several for a list target (``a,b``), else one."""
    if target in LIST_TARGETS | ONE_HOT_TARGETS and "," in source:
        return [p.strip() for p in source.split(",") if p.strip()]
    return [source]


_INDEX = re.compile(r"-?\d+")


def lookup(row: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path``; a number picks an item of a list (``instances.0.output``, ``-1`` the last).

    >>> lookup({"instances": [{"output": "yes"}, {"output": "no"}]}, "instances.-1.output")
    'no'
    """
    value: Any = row
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and _INDEX.fullmatch(part) and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            raise RecordError(f"the mapped column {path!r} is missing from this row")
    return value


def apply_mapping(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """Rename columns: each target takes the value at its source path; the source column is dropped.

    ``responses`` + ``preferred`` become ``chosen`` + ``rejected``; ``responses`` alone become ``completions``.
    """
    if not mapping:
        return dict(row)
    out = dict(row)
    for target, source in mapping.items():
        paths = source_paths(target, source)
        value = [lookup(row, p) for p in paths] if len(paths) > 1 else lookup(row, paths[0])
        for path in paths:
            out.pop(path.split(".")[0], None)
        out[target] = value
    if "preferred" in mapping:
        listed = "responses" if "responses" in out else "completions"
        names = [n for n in source_paths(listed, mapping.get(listed, "")) if n]
        out["chosen"], out["rejected"] = pick_pair(out.pop(listed, None), out.pop("preferred"), names)
    elif "responses" in mapping:
        if "completions" in out:
            raise RecordError("both 'responses' and 'completions' are given; map the responses to one of them")
        out["completions"] = out.pop("responses")
    return out


def pick_pair(responses: Any, preferred: Any, names: list[str]) -> tuple[Any, Any]:
    """``(chosen, rejected)`` of two ``responses``, ``preferred`` saying which won (see the module docstring)."""
    if not isinstance(responses, list) or len(responses) != 2:
        n = len(responses) if isinstance(responses, list) else 1 if responses is not None else 0
        raise RecordError(f"--map preferred picks the better of two responses, but this row has {n}; map two "
                          "response columns: --map responses=COLUMN_A,COLUMN_B")
    index = _preferred_index(preferred, names)
    return responses[index], responses[1 - index]


_TRUE, _FALSE = frozenset({"1", "true", "yes", "y"}), frozenset({"0", "false", "no", "n", ""})


def _one_hot_index(flags: list[Any]) -> int:
    """The index of the one set flag of two one-hot columns (1/0, true/false, yes/no)."""
    parsed = [str(int(f) if isinstance(f, float) and f.is_integer() else f).strip().lower() if f is not None else ""
              for f in flags]
    if any(p not in _TRUE | _FALSE for p in parsed):
        raise RecordError(f"'preferred' one-hot columns hold {flags!r:.60}; expected 1 for the winner and 0 for the "
                          "other")
    on = [i for i, p in enumerate(parsed) if p in _TRUE]
    if not on:
        raise RecordError("'preferred' one-hot columns are both 0: no response won (a tie), and a preference pair "
                          "needs a winner")
    if len(on) > 1:
        raise RecordError("'preferred' one-hot columns are both 1: say which one response won")
    return on[0]


def _preferred_index(value: Any, names: list[str]) -> int:
    if isinstance(value, list):  # two one-hot columns (--map preferred=winner_a,winner_b)
        return _one_hot_index(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordError("field 'preferred' is empty; say which response won (a or b)")
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text is not None:
        lowered = [n.lower() for n in names]
        if text in lowered[:2]:
            return lowered.index(text)
        letter = re.fullmatch(r"(?:.*[_\s-])?([ab])", text) or re.fullmatch(r"([01])", text)
        if letter:
            return "ab01".index(letter.group(1)) % 2
        if text.split(" ")[0].strip("()") in _TIES:
            raise RecordError(f"'preferred' is {value!r:.40}: no response won, and a preference pair needs a winner")
    named = f", or a response column name ({', '.join(names[:2])})" if names else ""
    raise RecordError(f"'preferred' is {value!r:.40}; expected a or b, 0 or 1 (0 = the first response){named}")


def check_columns(rows: Iterator[RawRow], mapping: Mapping[str, str] | None, name: str,
                  peek: int = PEEK_ROWS) -> Iterator[RawRow]:
    """``rows`` unchanged, after checking that every mapped column is in at least one of the first ``peek`` rows.

    Raises :class:`ColumnMappingError` listing the columns the file has (and the closest to the one asked for),
    before any row is quarantined for the missing column. A column found in some rows but not others is left to
    the rows (they are quarantined one by one).
    """
    if not mapping:
        return rows
    head = list(islice(rows, peek))
    objects = [r.data for r in head if r.error is None and isinstance(r.data, Mapping)]
    if objects:
        for target, source in mapping.items():
            for path in source_paths(target, source):
                if not any(_resolves(row, path) for row in objects):
                    raise ColumnMappingError(_missing(path, f"{target}={source}", name, objects))
    encoded = _json_list_columns(objects, mapping)
    if encoded:
        return (_decoded(r, encoded) for r in chain(head, rows))
    return chain(head, rows)


def _json_list(value: Any) -> list[str] | None:
    if not (isinstance(value, str) and value.startswith("[") and value.rstrip().endswith("]")):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) and parsed and all(isinstance(x, str) for x in parsed) else None


def _json_list_columns(rows: list[Mapping[str, Any]], mapping: Mapping[str, str]) -> list[str]:
    """Text columns (mapped, or named as a content field) whose every value in ``rows`` is a JSON-encoded list of
    strings, as lmsys arena-human-preference-55k's CSV keeps its prompt and responses
    (``'["How many fins does a cow have?"]'``)."""
    columns = [p for t, s in mapping.items() if t in CONTENT_TARGETS | LIST_TARGETS for p in source_paths(t, s)
               if "." not in p]
    columns += sorted(c for c in CONTENT_TARGETS if c not in mapping and any(c in row for row in rows))
    out = []
    for column in columns:
        values = [row[column] for row in rows if row.get(column) not in (None, "")]
        if values and all(_json_list(v) is not None for v in values):
            out.append(column)
    return out


def _decoded(row: RawRow, columns: list[str]) -> RawRow:
    """``row`` with each JSON-list cell of ``columns`` as its text (the turns joined by a blank line)."""
    if row.error is not None or not isinstance(row.data, Mapping):
        return row
    data = dict(row.data)
    for column in columns:
        items = _json_list(data.get(column))
        if items is not None:
            data[column] = "\n\n".join(items)
    return dataclasses.replace(row, data=data)


def _resolves(row: Mapping[str, Any], path: str) -> bool:
    try:
        lookup(row, path)
    except RecordError:
        return False
    return True


def _missing(path: str, item: str, name: str, rows: list[Mapping[str, Any]]) -> str:
    """The message for a mapped column no row has: the columns there are, and the closest."""
    parent, _, leaf = path.rpartition(".")
    holders = [row for row in rows if parent and _resolves(row, parent) and isinstance(lookup(row, parent), Mapping)]
    lists = [lookup(row, parent) for row in rows if parent and _resolves(row, parent)
             and isinstance(lookup(row, parent), list)]
    if holders:
        keys = list(dict.fromkeys(str(k) for row in holders for k in lookup(row, parent)))
        where, asked = f"{parent!r} holds", leaf
    elif lists:
        inner = list(dict.fromkeys(str(k) for items in lists for item in items[:1] if isinstance(item, Mapping)
                                   for k in item))
        example = f"{parent}.0.{leaf if leaf in inner else inner[0]}" if inner else f"{parent}.0"
        most = max(len(x) for x in lists)
        return (f"column {path!r} (from --map {item}) is not in {name}: {parent!r} is a list (of up to "
                f"{most} item{'' if most == 1 else 's'}); name an item by its position, e.g. {example} (the first) or "
                f"{parent}.-1 (the last){'; an item holds ' + ', '.join(inner[:20]) if inner else ''}. Nothing was "
                "read.")
    else:
        keys = list(dict.fromkeys(str(k) for row in rows for k in row))
        where, asked = "its columns are:", path
    shown = ", ".join(k[:60] for k in keys[:40]) + (f", ... ({len(keys) - 40} more)" if len(keys) > 40 else "")
    prefix = f"{parent}." if holders else ""  # suggest the whole path: --map text=data.text, not text=text
    return (f"column {path!r} (from --map {item}) is not in {name}; {where} {shown or '(none)'}."
            f"{did_you_mean(prefix + asked, [prefix + k for k in keys])} Nothing was read.")
