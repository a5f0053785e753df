"""Turn final annotations (and held-out records) into rows in TRL's column vocabulary.

Pure functions over plain data: a record's ``fields``, the task type and the stored answer value (see
:mod:`curate.annotate.answers`). Each returns a list of rows (dicts), possibly empty (a tie dropped, "both bad").

==============  =============================================  ==========================================
format          columns                                        from
==============  =============================================  ==========================================
sft             ``prompt``, ``completion``                     rewrites (the expert's completion)
dpo / reward    ``prompt``, ``chosen``, ``rejected``           rankings; rewrites (rewrite over original)
kto             ``prompt``, ``completion``, ``label`` (bool)   accept/reject judgements in either
classification  ``text``, ``label``                            label tasks
==============  =============================================  ==========================================

Conversational records stay conversational: the prompt is the list of messages before the answer and each
response a one-message list ``[{"role": "assistant", "content": ...}]`` (TRL's conversational format).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Final

from curate.ingest.records import as_text, is_conversational

FORMATS: Final[tuple[str, ...]] = ("sft", "dpo", "reward", "kto", "classification")
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "sft": ("prompt", "completion"), "dpo": ("prompt", "chosen", "rejected"),
    "reward": ("prompt", "chosen", "rejected"), "kto": ("prompt", "completion", "label"),
    "classification": ("text", "label"),
}


@dataclass(frozen=True, slots=True)
class RowOptions:
    """``ties``: ``drop`` or ``keep`` (a tie becomes a row in the data's own order); ``pairs``: ``all`` pairs of
    an ordering of candidates, or ``best-worst`` only."""

    ties: str = "drop"
    pairs: str = "all"


def _split_example(fields: dict[str, Any]) -> tuple[Any, Any]:
    """``(prompt, completion)`` of an example record, conversational when it is."""
    messages: Any = fields.get("messages")
    if is_conversational(messages) and messages[-1].get("role") == "assistant":
        return messages[:-1], messages[-1].get("content", "")
    return fields.get("prompt", ""), fields.get("completion", "")


def _response(prompt: Any, text: Any) -> Any:
    """A response in the prompt's format: a string, or a one-message assistant list for a conversation."""
    if is_conversational(prompt):
        return text if is_conversational(text) else [{"role": "assistant", "content": as_text(text)}]
    return as_text(text) if is_conversational(text) else text


def _pair(prompt: Any, chosen: Any, rejected: Any) -> dict[str, Any]:
    return {"prompt": prompt, "chosen": _response(prompt, chosen), "rejected": _response(prompt, rejected)}


def _kto(prompt: Any, completion: Any, label: bool) -> dict[str, Any]:
    return {"prompt": prompt, "completion": _response(prompt, completion), "label": label}


def _ranked(fields: dict[str, Any], value: dict[str, Any], options: RowOptions) -> list[tuple[Any, Any, bool]]:
    """``(winner, loser, is_tie)`` pairs of a rank answer, in the data's terms."""
    if "preferred" in value:
        preferred = value["preferred"]
        if "chosen" in fields:
            chosen, rejected = fields["chosen"], fields["rejected"]
        else:  # two generated candidates, "completion 0" / "completion 1"
            chosen, rejected = (fields.get("completions") or ["", ""])[:2]
            if preferred in ("completion 0", "completion 1"):
                preferred = "chosen" if preferred == "completion 0" else "rejected"
        if preferred == "chosen":
            return [(chosen, rejected, False)]
        if preferred == "rejected":
            return [(rejected, chosen, False)]
        if preferred == "tie" and options.ties == "keep":
            return [(chosen, rejected, True)]
        return []
    completions = fields.get("completions") or []
    order = [completions[i] for i in value.get("order", [])]
    if len(order) < 2:
        return []
    if options.pairs == "best-worst":
        return [(order[0], order[-1], False)]
    return [(order[i], order[j], False) for i, j in combinations(range(len(order)), 2)]


def training_rows(fmt: str, task_type: str, fields: dict[str, Any], value: dict[str, Any],
                  options: RowOptions = RowOptions()) -> list[dict[str, Any]]:
    """Rows of format ``fmt`` from one final answer to a task on a record with ``fields``."""
    if task_type == "label":
        return [{"text": _label_text(fields), "label": value["label"]}] if fmt == "classification" else []
    if task_type == "rewrite":
        prompt, original = _split_example(fields)
        rewrite, accepted = value["completion"], bool(value.get("accepted_as_is"))
        if fmt == "sft":  # accepted as is: the record's own answer (the annotator may have seen it redacted)
            return [{"prompt": prompt, "completion": _response(prompt, original if accepted else rewrite)}]
        if fmt in ("dpo", "reward"):
            return [] if accepted or not as_text(original).strip() else [_pair(prompt, rewrite, original)]
        if fmt == "kto":
            if accepted:
                return [_kto(prompt, original, True)]
            rows = [_kto(prompt, rewrite, True)]
            return rows + ([_kto(prompt, original, False)] if as_text(original).strip() else [])
        return []
    if task_type == "rank":
        prompt = fields.get("prompt", "")
        if fmt in ("dpo", "reward"):
            return [_pair(prompt, w, loser) for w, loser, _ in _ranked(fields, value, options)]
        if fmt == "kto":
            if value.get("preferred") == "both_bad":
                pair = [fields["chosen"], fields["rejected"]] if "chosen" in fields else fields["completions"][:2]
                return [_kto(prompt, text, False) for text in pair]
            ranked = _ranked(fields, value, RowOptions(ties="drop", pairs="best-worst"))
            return [r for w, loser, _ in ranked for r in (_kto(prompt, w, True), _kto(prompt, loser, False))]
    return []


def _label_text(fields: dict[str, Any]) -> str:
    if "text" in fields:
        return as_text(fields["text"])
    prompt, completion = _split_example(fields)
    return "\n\n".join(t for t in (as_text(prompt), as_text(completion)) if t)


def heldout_rows(fmt: str, kind: str, fields: dict[str, Any], label: Any) -> list[dict[str, Any]]:
    """Rows of format ``fmt`` from a test or calibration record as given (its own columns and gold label)."""
    if fmt == "classification":
        return [{"text": _label_text(fields), "label": str(label)}] if label is not None else []
    if kind == "preference":
        prompt = fields.get("prompt", "")
        if fmt in ("dpo", "reward"):
            return [_pair(prompt, fields["chosen"], fields["rejected"])]
        if fmt == "kto":
            return [_kto(prompt, fields["chosen"], True), _kto(prompt, fields["rejected"], False)]
        return [{"prompt": prompt, "completion": _response(prompt, fields["chosen"])}] if fmt == "sft" else []
    if kind == "example":
        prompt, completion = _split_example(fields)
        if fmt == "sft":
            return [{"prompt": prompt, "completion": _response(prompt, completion)}]
        if fmt == "kto" and isinstance(label, bool):
            return [_kto(prompt, completion, label)]
    return []
