"""Chats: message lists checked and normalised (ShareGPT turns, other sets' role names), "Human:/Assistant:"
transcripts parsed into messages, and the prompt shared by two chats split off (TRL's ``extract_prompt``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from curate.errors import RecordError

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


def check_messages(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str) and (parsed := parse_transcript(value)) is not None:
        value = parsed  # a transcript in one text column (--map messages=text)
    if not isinstance(value, list):
        raise RecordError(f"field {name!r} must be a list of messages (objects with 'role' and 'content') or a "
                          f"Human:/Assistant: transcript; got {type(value).__name__}")
    if not value:
        raise RecordError(f"field {name!r} is an empty list; expected at least one message")
    value = [_sharegpt_turn(name, i, m) for i, m in enumerate(value)]
    value = [{**{k: v for k, v in m.items() if k != "text"}, "content": m["text"]}  # OpenAssistant's text key
             if isinstance(m, Mapping) and "role" in m and "content" not in m and "text" in m else m for m in value]
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


def repeated_prompt(prompt: Any, chosen: Any, rejected: Any) -> dict[str, Any] | None:
    """The pair with the shared turns cut off the two chats, when those turns repeat ``prompt`` (a prompt column
    plus chats that start with it, as in HuggingFaceH4/ultrafeedback_binarized); else None."""
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        return None
    try:
        split = split_implicit_prompt(chosen, rejected)
    except RecordError:
        return None
    shared = split["prompt"]
    if shared == prompt:
        return split
    users = [str(m.get("content", "")).strip() for m in shared if m.get("role") == "user"]
    whole = "\n\n".join(str(m.get("content", "")).strip() for m in shared)
    if isinstance(prompt, str) and users and prompt.strip() in (users[-1], whole):
        return split
    return None
