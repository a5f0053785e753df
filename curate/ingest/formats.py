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
from functools import cache
from typing import Any

import orjson

from curate.errors import RecordError
from curate.ingest.mapping import CONTENT_TARGETS, TARGET_FIELDS, apply_mapping, parse_mapping
from curate.ingest.records import KINDS, Record, is_conversational, normalise_value, record_id

__all__ = ["EXPECTED_SHAPES", "TARGET_FIELDS", "apply_mapping", "parse_mapping", "parse_transcript", "row_to_record",
           "split_implicit_prompt"]

ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
#: ShareGPT speakers (``"from"``) and the roles they become.
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "model": "assistant",
                  "system": "system", "tool": "tool", "function": "tool", "observation": "tool"}
#: Other sets' names of the chat roles (OpenAssistant's ``prompter``, Gemini's ``model``), matched case-insensitively.
ROLE_ALIASES = {"prompter": "user", "human": "user", "model": "assistant", "gpt": "assistant", "bot": "assistant",
                **{r: r for r in ROLES}}
_TRANSCRIPT_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
_HASH_TRANSCRIPT_TURN = re.compile(r"###[ ]?(Human|Assistant):[ ]?")  # openassistant-guanaco's single text column
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}

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
        return _check_messages(name, value)
    expected = "a string or a list of messages" if allow_messages else "a string"
    raise RecordError(f"field {name!r} must be {expected}; got {type(value).__name__}")


def _sharegpt_turn(name: str, i: int, message: Any) -> Any:
    """A ShareGPT turn (``{"from": "human", "value": ...}``) as a message (``{"role": "user", "content": ...}``);
    anything else unchanged."""
    if not isinstance(message, Mapping) or "role" in message or not {"from", "value"} <= set(message):
        return message
    speaker = str(message["from"]).strip().lower()
    if speaker not in SHAREGPT_ROLES:
        raise RecordError(f"{name}[{i}].from must be one of {', '.join(sorted(SHAREGPT_ROLES))} (ShareGPT turns); "
                          f"got {message['from']!r:.40}")
    rest = {k: v for k, v in message.items() if k not in ("from", "value")}
    return {"role": SHAREGPT_ROLES[speaker], "content": message["value"], **rest}


def _check_messages(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str) and (parsed := parse_transcript(value)) is not None:
        value = parsed  # a transcript in one text column (--map messages=text)
    if not isinstance(value, list):
        raise RecordError(f"field {name!r} must be a list of messages (objects with 'role' and 'content') or a "
                          f"Human:/Assistant: transcript; got {type(value).__name__}")
    if not value:
        raise RecordError(f"field {name!r} is an empty list; expected at least one message")
    value = [_sharegpt_turn(name, i, m) for i, m in enumerate(value)]
    for i, message in enumerate(value):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise RecordError(f"{name}[{i}] must be an object with 'role' and 'content'; got {message!r:.80}")
        if message["role"] not in ROLES:
            alias = ROLE_ALIASES.get(str(message["role"]).strip().lower())
            if alias is None:
                others = ", ".join(k for k, v in ROLE_ALIASES.items() if k != v)
                raise RecordError(f"{name}[{i}].role must be one of {sorted(ROLES)} (or {others}, read as "
                                  f"those); got {message['role']!r:.40}")
            value[i] = message = {**message, "role": alias}
        content = message["content"]
        if not isinstance(content, str | list):
            raise RecordError(f"{name}[{i}].content must be text; got {type(content).__name__}")
    if all(isinstance(m["content"], str) and not m["content"].strip() for m in value):
        raise RecordError(f"field {name!r} has only empty messages")
    return [dict(m) for m in value]


@cache
def _trl_extract_prompt() -> Callable[[dict[str, Any]], dict[str, Any]]:
    from trl.data_utils import extract_prompt

    return extract_prompt  # type: ignore[no-any-return]


def parse_transcript(text: str) -> list[dict[str, str]] | None:
    """Parse a "\\n\\nHuman: ... \\n\\nAssistant: ..." transcript (HH-RLHF's; or "### Human: ... ### Assistant:
    ...", openassistant-guanaco's) into messages; ``None`` if it is not one.

    >>> parse_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    >>> parse_transcript("### Human: Hi### Assistant: Hello!")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    """
    for pattern in (_TRANSCRIPT_TURN, _HASH_TRANSCRIPT_TURN):
        parts = pattern.split(text)
        if len(parts) >= 3 and not parts[0].strip():
            turns = zip(parts[1::2], parts[2::2], strict=True)
            return [{"role": _HH_ROLES[role], "content": content.strip() if pattern is _HASH_TRANSCRIPT_TURN
                     else content} for role, content in turns]
    return None


def split_implicit_prompt(chosen: Any, rejected: Any) -> dict[str, Any]:
    """Split the prompt shared by ``chosen`` and ``rejected`` off both, with TRL's ``extract_prompt``.

    Transcripts are parsed into messages first, so the prompt ends on a user turn rather than mid-word.
    Raises :class:`RecordError` when the two do not share a prompt that ends before the final assistant turn.
    """
    if isinstance(chosen, str) and isinstance(rejected, str):
        chosen_msgs, rejected_msgs = parse_transcript(chosen), parse_transcript(rejected)
        if chosen_msgs is not None and rejected_msgs is not None:
            chosen, rejected = chosen_msgs, rejected_msgs
    if type(chosen) is not type(rejected):
        raise RecordError("'chosen' and 'rejected' must both be text or both be message lists")
    if chosen == rejected:
        raise RecordError("'chosen' and 'rejected' are identical; a preference needs two different responses")
    split = _trl_extract_prompt()({"chosen": chosen, "rejected": rejected})
    prompt, chosen, rejected = split["prompt"], split["chosen"], split["rejected"]
    if not prompt or (isinstance(prompt, str) and not prompt.strip()):
        raise RecordError("'chosen' and 'rejected' share no prompt; give the prompt explicitly in a 'prompt' column")
    if isinstance(prompt, list):
        if prompt[-1].get("role") != "user":
            raise RecordError(
                f"'chosen' and 'rejected' diverge before their final assistant turn (after message {len(prompt)}); "
                "a preference pair must share the whole conversation except the last response"
            )
        for name, side in (("chosen", chosen), ("rejected", rejected)):
            roles = [m.get("role") for m in side]
            if roles == ["assistant"]:
                continue
            if roles and all(r == "assistant" for r in roles):
                raise RecordError(
                    f"'{name}' has {len(roles)} assistant turns in a row after the shared prompt (a malformed "
                    "transcript); expected one response"
                )
            raise RecordError(
                f"'{name}' continues for {len(side)} messages ({', '.join(map(str, roles))}) after the shared "
                "prompt; expected one assistant response (the pair diverges before its final turn)"
            )
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


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
        return {"messages": _check_messages("messages", row["messages"])}
    if _present(row, "prompt") or _present(row, "completion"):
        prompt = _check_text("prompt", row.get("prompt"))
        return {"prompt": prompt, "completion": _check_completion("completion", row.get("completion"))}
    instruction = _check_text("instruction", row.get("instruction"), allow_messages=False)
    extra = row.get("input")
    if extra is not None and not isinstance(extra, str):
        raise RecordError(f"field 'input' must be a string; got {type(extra).__name__}")
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    return {"prompt": prompt, "completion": _check_completion("output", row.get("output"))}


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
