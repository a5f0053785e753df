"""Records: the unit of data curate works on, with a stable content-hash id.

A record has a ``kind`` and TRL-named ``fields``:

=============  ================================================  ==========================
kind           fields                                            TRL dataset type
=============  ================================================  ==========================
``example``    ``prompt`` + ``completion``, or ``messages``      (prompt-)completion / LM
``preference`` ``prompt`` + ``chosen`` + ``rejected``            preference
``candidates`` ``prompt`` + ``completions`` (two or more)        several completions to rank
``text``       ``text``                                          text to label
=============  ================================================  ==========================

Text values are plain strings (standard format) or lists of ``{"role", "content"}`` messages (conversational
format). A gold or given ``label`` is kept apart from the content: it does not change the record's id.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from curate.errors import check_choice

Kind = Literal["example", "preference", "candidates", "text"]
KINDS: Final[tuple[str, ...]] = ("example", "preference", "candidates", "text")


def check_kind(kind: str | None) -> str | None:
    """``kind`` if it is ``None`` or one of :data:`KINDS`; else an :class:`~curate.errors.InputError` that lists
    them and suggests the closest. Also the callback of ``--kind`` options: checked before anything is read."""
    return None if kind is None else check_choice(kind, KINDS, "--kind")


#: Fields that make up a record's content (and so its id), per kind.
CONTENT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "example": ("prompt", "completion", "messages"),
    "preference": ("prompt", "chosen", "rejected"),
    "candidates": ("prompt", "completions"),
    "text": ("text",),
}


@dataclass(frozen=True, slots=True)
class Record:
    """One unit of data.

    Attributes:
        id: 32 hex characters, a hash of the normalised kind and content (see :func:`record_id`).
        kind: one of :data:`KINDS`.
        fields: the content, keyed by TRL column names.
        label: a gold or given label (class name, bool for KTO-style data), or ``None``.
        meta: any other columns of the source row, kept for quotas and provenance.
        source: the file (or dataset folder and split) the record came from.
        line: 1-based line in ``source`` where the row starts (for Parquet and dataset folders: the row number).
        row: 1-based ordinal of the row in ``source`` (the element number of a JSON array).
    """

    id: str
    kind: str
    fields: dict[str, Any]
    label: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    line: int = 0
    row: int = 0


def normalise_text(text: str) -> str:
    """Unicode NFC and ``\\n`` line ends; what curate stores.

    >>> normalise_text("cafe\\u0301\\r\\n")
    'café\\n'
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text


def normalise_value(value: Any) -> Any:
    """Apply :func:`normalise_text` to every string inside ``value`` (lists and dicts recursively)."""
    if type(value) is str:
        return normalise_text(value) if "\r" in value or not value.isascii() else value
    if isinstance(value, list):
        return [normalise_value(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise_value(v) for k, v in value.items()}
    return value


def _hash_form(value: Any) -> Any:
    # Surrounding whitespace never makes two records different.
    if type(value) is str:
        return value.strip()
    if isinstance(value, list):
        return [_hash_form(v) for v in value]
    if isinstance(value, dict):
        return {k: _hash_form(v) for k, v in value.items()}
    return value


def record_id(kind: str, fields: dict[str, Any]) -> str:
    """Stable id of a record: BLAKE2b-128 of its kind and normalised content fields, as 32 hex characters.

    Only the content fields of the kind count (see :data:`CONTENT_FIELDS`), so a label or metadata does not
    change the id, and records equal up to surrounding whitespace, line ends and Unicode composition share it.

    >>> record_id("text", {"text": "hello"}) == record_id("text", {"text": "  hello\\r\\n"})
    True
    """
    content = {k: _hash_form(fields[k]) for k in CONTENT_FIELDS[kind] if k in fields}
    payload = orjson.dumps([kind, content], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def is_conversational(value: Any) -> bool:
    """Whether a field value is a list of chat messages (TRL's conversational format).

    >>> is_conversational([{"role": "user", "content": "Hi"}])
    True
    >>> is_conversational("Hi")
    False
    """
    return isinstance(value, list) and len(value) > 0 and isinstance(value[0], dict) and "role" in value[0]


def as_text(value: Any) -> str:
    """Plain text of a field value: the string itself, or the messages' contents joined by blank lines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(as_text(m.get("content", "")) if isinstance(m, dict) else as_text(m) for m in value)
    return "" if value is None else str(value)
