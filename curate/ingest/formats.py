"""Turn a source row (a dict) into a :class:`~curate.ingest.records.Record`.

Understood row shapes, tried in this order unless ``kind`` is forced:

* ``prompt`` + ``chosen`` + ``rejected``: preference with an explicit prompt.
* ``chosen`` + ``rejected``: preference with an implicit prompt. The shared prefix is split off with TRL's
  ``extract_prompt``; "\\n\\nHuman: ... \\n\\nAssistant: ..." transcripts (HH-RLHF) are first parsed into
  messages so the split falls on a turn boundary.
* ``prompt`` + ``completions`` (a list): candidates to rank.
* ``messages``: a conversation (example); ShareGPT's ``conversations`` of ``{"from", "value"}`` turns too.
* Dolly's ``instruction`` + ``context`` + ``response`` and ``prompt`` + ``response`` are read as the shapes
  below (see :func:`_common_aliases`).
* ``prompt`` + ``completion``: an example (a KTO ``label`` is kept as the record's label).
* ``instruction`` + ``output`` (+ ``input``): Alpaca, an example.
* ``text`` (+ ``label``): a text to label.

Column names can be remapped first with ``mapping`` (``{"target": "source.path"}``; see
:mod:`curate.ingest.mapping`, which also builds a pair from two response columns).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from curate.errors import RecordError
from curate.ingest.chats import (
    check_messages,
    parse_transcript,
    repeated_prompt,
    split_implicit_prompt,
)
from curate.ingest.mapping import CONTENT_TARGETS, TARGET_FIELDS, apply_mapping, parse_mapping
from curate.ingest.records import KINDS, Record, is_conversational, normalise_value, record_id

__all__ = ["EXPECTED_SHAPES", "TARGET_FIELDS", "apply_mapping", "parse_mapping", "parse_transcript", "row_to_record",
           "split_implicit_prompt"]

_INT64 = (-(2**63), 2**64 - 1)  # the integers JSON storage (orjson) keeps exactly
MAX_DEPTH = 200  # nesting levels a stored value may have (orjson stores at most 254)

EXPECTED_SHAPES = (
    "prompt+completion, messages, prompt+chosen+rejected, chosen+rejected (implicit prompt), "
    "prompt+completions, instruction+output (Alpaca) or text(+label)"
)


def _present(row: Mapping[str, Any], key: str) -> bool:
    value = row.get(key)
    return value is not None and not (isinstance(value, str) and value == "" and key in {"input", "label"})


def _check_text(name: str, value: Any, *, allow_messages: bool = True) -> Any:
    if value is None:
        raise RecordError(f"field {name!r} is missing")
    if isinstance(value, str):
        if not value.strip():
            raise RecordError(f"field {name!r} is empty; expected non-empty text")
        return value
    if allow_messages and isinstance(value, list):
        return check_messages(name, value)
    expected = "a string or a list of messages" if allow_messages else "a string"
    raise RecordError(f"field {name!r} must be {expected}; got {type(value).__name__}")


def _detect_kind(row: Mapping[str, Any]) -> str:
    if _present(row, "chosen") and _present(row, "rejected"):
        return "preference"
    if _present(row, "completions"):
        return "candidates"
    if _present(row, "messages") or (_present(row, "prompt") and "completion" in row):
        return "example"
    if _present(row, "instruction") and "output" in row:
        return "example"
    if _present(row, "text"):
        return "text"
    blank = [k for k in ("text", "prompt", "instruction", "messages", "chosen", "rejected", "completion", "output")
             if k in row and (row[k] is None or (isinstance(row[k], str | list) and not row[k]))]
    if blank:
        raise RecordError(f"field {blank[0]!r} is empty; expected non-empty text")
    present = sorted(str(k)[:40] for k in row if row[k] is not None)
    raise RecordError(
        f"row has fields {present[:12]} but no known shape; expected {EXPECTED_SHAPES}. "
        f"Name your columns with --map target=source{_pair_hint(row)}{header_hint(present)}"
    )


def header_hint(columns: list[str]) -> str:
    """When the "column names" read look like text (long, or several words), the file probably has no header."""
    if not any(len(c) >= 40 or len(c.split()) >= 4 for c in columns):
        return ""
    return ("; these column names look like text: if the file has no header line, name its columns with "
            "--columns (e.g. --columns label,text)")


_RESPONSE_COLUMN = re.compile(
    r"(?i).*(response|answer|completion|output|generation|conversation|model)[ _-]?([ab12])")
_WINNER_COLUMN = re.compile(r"(?i)(winner|preferred|preference|choice|chosen|better|label)")


def _text_like(value: Any) -> bool:
    """A response's value: a chat (list) or text with a space, not a name such as ``vicuna-13b``."""
    return isinstance(value, list) or (isinstance(value, str) and " " in value.strip())


def _pair_hint(row: Mapping[str, Any]) -> str:
    """How to map two response columns (``response_a``, ``response_b``) to a pair, when a row has them. Columns
    named like responses whose values are not text (Chatbot Arena's ``model_a`` holds a model's name) are passed
    over when two others hold text (``conversation_a``)."""
    responses = [str(c) for c in row if _RESPONSE_COLUMN.fullmatch(str(c))]
    if len(responses) > 2:
        responses = [c for c in responses if _text_like(row[c])]
    if len(responses) != 2:
        return ""
    a, b = responses
    winner = next((str(c) for c in row if _WINNER_COLUMN.fullmatch(str(c))), None)
    if winner is not None:
        return f"; for a pair with the winner in {winner!r}: --map responses={a},{b} --map preferred={winner}"
    return f"; for a pair: --map chosen={a} --map rejected={b} (when {a!r} is always the better one)"


def _example_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    if _present(row, "messages"):
        return {"messages": check_messages("messages", row["messages"])}
    if _present(row, "prompt") or _present(row, "completion"):
        prompt = _check_text("prompt", row.get("prompt"))
        if isinstance(prompt, str):  # Alpaca's input with --map prompt=instruction: part of the prompt, not lost
            prompt = _with_input(prompt, row)
        return {"prompt": prompt, "completion": _check_completion("completion", row.get("completion"))}
    instruction = _check_text("instruction", row.get("instruction"), allow_messages=False)
    return {"prompt": _with_input(instruction, row), "completion": _check_completion("output", row.get("output"))}


def _with_input(prompt: str, row: Mapping[str, Any]) -> str:
    """``prompt``, then Alpaca's ``input`` (the text the instruction is about) after a blank line when there is one."""
    extra = row.get("input")
    if extra is not None and not isinstance(extra, str):
        raise RecordError(f"field 'input' must be a string; got {type(extra).__name__}")
    return f"{prompt}\n\n{extra}" if extra and extra.strip() else prompt


def _check_completion(name: str, value: Any) -> Any:
    # An empty completion is allowed: the prompt is still worth curating (an expert can write the answer).
    if value is None:
        raise RecordError(f"field {name!r} is missing; expected the completion text (it may be empty)")
    if isinstance(value, str) and not value.strip():
        return ""
    return _check_text(name, value)


def _preference_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    chosen = _check_text("chosen", row.get("chosen"))
    rejected = _check_text("rejected", row.get("rejected"))
    if _present(row, "prompt"):
        fields = {"prompt": _check_text("prompt", row["prompt"]), "chosen": chosen, "rejected": rejected}
        repeated = repeated_prompt(fields["prompt"], chosen, rejected)
        if repeated is not None:  # UltraFeedback-binarized: the prompt, and again as the chats' first turn
            return repeated
        if chosen == rejected:
            raise RecordError("'chosen' and 'rejected' are identical; a preference needs two different responses")
        return fields
    return split_implicit_prompt(chosen, rejected)


def _candidates_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    completions = row.get("completions")
    if not isinstance(completions, list) or len(completions) < 2:
        raise RecordError("field 'completions' must be a list of at least two responses")
    checked = [_check_text(f"completions[{i}]", c) for i, c in enumerate(completions)]
    return {"prompt": _check_text("prompt", row.get("prompt")), "completions": checked}


def _text_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"text": _check_text("text", row.get("text"), allow_messages=False)}


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "example": _example_fields,
    "preference": _preference_fields,
    "candidates": _candidates_fields,
    "text": _text_fields,
}
_CONSUMED = CONTENT_TARGETS


def _check_label(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        raise RecordError("field 'label' is an integer too large to store; expected a class name, a small "
                          "integer or a boolean")
    if isinstance(value, str | bool | int):
        return value.strip() if isinstance(value, str) else value
    raise RecordError(f"field 'label' must be a class name, an integer or a boolean; got {type(value).__name__}")


def _common_aliases(data: dict[str, Any]) -> dict[str, Any]:
    """Column names of widely used sets, read as curate's: ShareGPT's ``conversations`` as ``messages``; Dolly's
    ``instruction`` + ``context`` + ``response`` as Alpaca's ``instruction`` + ``input`` + ``output``; a
    ``prompt`` + ``response`` row (HelpSteer and many SFT sets) as ``prompt`` + ``completion``. Only when the row
    has none of the names they would become."""
    renames: dict[str, str] = {}
    if "messages" not in data and isinstance(data.get("conversations"), list):
        renames["conversations"] = "messages"
    if "response" in data and not {"chosen", "rejected", "completions", "messages"} & set(data):
        if "instruction" in data and "output" not in data:
            renames["response"] = "output"
            if "context" in data and "input" not in data:
                renames["context"] = "input"
        elif "prompt" in data and "completion" not in data:
            renames["response"] = "completion"
    return {renames.get(k, k): v for k, v in data.items()} if renames else data


def row_to_record(
    row: Mapping[str, Any],
    *,
    source: str = "",
    line: int = 0,
    row_number: int = 0,
    kind: str | None = None,
    mapping: Mapping[str, str] | None = None,
) -> Record:
    """Convert one source row into a :class:`Record`, or raise :class:`RecordError` saying why not."""
    if not isinstance(row, Mapping):
        raise RecordError(f"expected a JSON object (a row with named fields, such as {{\"text\": \"...\"}}); got "
                          f"{type(row).__name__}")
    data = apply_mapping(row, mapping or {})
    data = _common_aliases(data)
    if kind is None:
        kind = _detect_kind(data)
    elif kind not in KINDS:
        raise RecordError(f"kind must be one of {list(KINDS)}; got {kind!r}")
    try:
        fields = normalise_value(_BUILDERS[kind](data))
    except RecursionError:
        raise RecordError("the row is nested too deeply; expected text or a list of messages") from None
    if not isinstance(fields.get("prompt", ""), str | list):
        raise RecordError("field 'prompt' must be a string or a list of messages")
    if is_conversational(fields.get("prompt")) and isinstance(fields.get("completion"), str):
        raise RecordError("'prompt' is a list of messages but 'completion' is text; use the same format for both")
    label = _check_label(data.get("label"))
    meta = {k: v for k, v in data.items() if k not in _CONSUMED and v is not None}
    try:
        rid = record_id(kind, fields)
    except (TypeError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        raise RecordError(_unstorable(fields)) from None
    if meta:
        meta = _storable_meta(meta)
    return Record(rid, kind, fields, label, meta, source, line, row_number)


def _unstorable(fields: Mapping[str, Any]) -> str:
    """Why the content ``fields`` cannot be stored as JSON (a message with odd extra values, say)."""
    for name, value in fields.items():
        try:
            orjson.dumps(value)
        except (TypeError, RecursionError) as exc:
            return (f"field {name!r} holds a value that cannot be stored as JSON ({exc}); expected text or "
                    "messages with text content")
    return "the row's content cannot be stored as JSON"


def _storable_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The extra columns, with values JSON cannot hold (huge integers, bytes, decimals, durations) as text."""
    try:
        orjson.dumps(meta)
        return meta
    except (TypeError, RecursionError):
        pass
    out = {}
    for key, value in meta.items():
        try:
            out[str(key)] = _as_storable(value, 0)
        except RecursionError:
            raise RecordError(f"column {str(key)[:80]!r} is nested more than {MAX_DEPTH} levels deep; it cannot be "
                              "stored") from None
    return out


def _as_storable(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise RecursionError
    if isinstance(value, dict):
        return {str(k): _as_storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_storable(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")  # no unpaired surrogates
    try:
        orjson.dumps(value)
        return value
    except TypeError:
        return str(value)
