"""Apply a PII policy to a record: redact, drop or flag, with a report that never holds the values.

>>> policy = PiiPolicy(actions={"EMAIL_ADDRESS": "drop"})
>>> policy.action("EMAIL_ADDRESS"), policy.action("PERSON")
('drop', 'redact')
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from curate.errors import InputError
from curate.filters.pii import DEFAULT_ENTITIES, DEFAULT_THRESHOLD, Finding, Placeholders, detect, redact
from curate.ingest.records import Record, record_id

Action = Literal["redact", "drop", "flag"]
ACTIONS: Final[tuple[str, ...]] = ("redact", "drop", "flag")
_SKIP_KEYS: Final = frozenset({"role", "type", "tool_call_id"})


@dataclass(frozen=True)
class PiiPolicy:
    """What to do per entity type.

    Attributes:
        actions: entity type -> ``"redact"`` (replace by a typed placeholder), ``"drop"`` (remove the whole
            record) or ``"flag"`` (keep the text, report the finding).
        default: the action for types not in ``actions``.
        entities: the entity types detected.
        allow_list: exact strings (case-insensitive) never reported.
        threshold: minimum score of a finding.
    """

    actions: dict[str, str] = field(default_factory=dict)
    default: str = "redact"
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    allow_list: tuple[str, ...] = ()
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        for entity, action in {**self.actions, "(default)": self.default}.items():
            if action not in ACTIONS:
                raise InputError(
                    f"The PII action for {entity} must be one of {', '.join(ACTIONS)}; got {action!r}. "
                    "Fix the policy's actions."
                )

    def action(self, entity_type: str) -> str:
        """The action for ``entity_type``."""
        return self.actions.get(entity_type, self.default)


@dataclass(frozen=True, slots=True)
class ReportedFinding:
    """A finding as reported: where and what type, never the value itself.

    Attributes:
        field: the record field, with the message index for lists (``messages[2]``).
        entity_type: e.g. ``PERSON``.
        start: offset in the original field text.
        end: offset after the value.
        score: detection confidence.
        recognizer: the recognizer's name.
        action: ``redact``, ``drop`` or ``flag``.
        value_hash: keyed BLAKE2b of the value (hex), to count repeats without keeping the value.
    """

    field: str
    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str
    action: str
    value_hash: str


@dataclass(frozen=True, slots=True)
class PiiReport:
    """What :func:`apply_policy` found and did to one record.

    Attributes:
        record_id: the id of the input record.
        action: ``"kept"`` (nothing found), ``"redacted"``, ``"flagged"`` or ``"dropped"``.
        findings: one entry per finding.
    """

    record_id: str
    action: str
    findings: tuple[ReportedFinding, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"record_id": self.record_id, "action": self.action,
                "findings": [{k: getattr(f, k) for k in ReportedFinding.__slots__} for f in self.findings]}


def hash_value(value: str, salt: bytes) -> str:
    """Keyed BLAKE2b-128 of ``value`` as hex; equal values under one salt give equal hashes.

    >>> hash_value("a", b"k") == hash_value("a", b"k") != hash_value("a", b"other")
    True
    """
    return hashlib.blake2b(value.encode("utf-8"), key=salt, digest_size=16).hexdigest()


def _walk(value: Any, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, str):
        out.append((path, value))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(v, f"{path}[{i}]", out)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in _SKIP_KEYS:
                _walk(v, f"{path}.{k}", out)


def _rebuild(value: Any, path: str, new: dict[str, str]) -> Any:
    if isinstance(value, str):
        return new.get(path, value)
    if isinstance(value, list):
        return [_rebuild(v, f"{path}[{i}]", new) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: v if k in _SKIP_KEYS else _rebuild(v, f"{path}.{k}", new) for k, v in value.items()}
    return value


def apply_policy(record: Record, policy: PiiPolicy, *, salt: bytes) -> tuple[Record | None, PiiReport]:
    """Detect PII in every text field of ``record`` (messages included) and apply ``policy``.

    Placeholders are consistent across the record's fields: one value gives one placeholder everywhere.

    Args:
        record: the record.
        policy: actions per entity type.
        salt: 16-64 bytes keying the value hashes in the report; keep it secret and fixed per project.

    Returns:
        The new record (redacted text, new content id, ``meta["pii_source_id"]``; ``meta["pii_flags"]`` lists
        flagged types) or None when a ``drop`` type was found, and the report.

    Raises:
        InputError: the salt is not 16 to 64 bytes.
    """
    if not isinstance(salt, bytes) or not 16 <= len(salt) <= 64:
        raise InputError(f"The report salt must be 16 to 64 bytes; got {salt!r:.20}. Pass e.g. os.urandom(32), "
                         "stored with the project.")
    texts: list[tuple[str, str]] = []
    for name, value in record.fields.items():
        _walk(value, name, texts)
    found: list[tuple[str, str, Sequence[Finding]]] = [
        (path, text, detect(text, entities=policy.entities, allow_list=policy.allow_list, threshold=policy.threshold))
        for path, text in texts
    ]
    reported = tuple(
        ReportedFinding(path, f.entity_type, f.start, f.end, round(f.score, 4), f.recognizer,
                        policy.action(f.entity_type), hash_value(text[f.start : f.end], salt))
        for path, text, findings in found for f in findings
    )
    actions = {r.action for r in reported}
    if "drop" in actions:
        return None, PiiReport(record.id, "dropped", reported)
    placeholders = Placeholders()
    new = {path: redact(text, [f for f in fs if policy.action(f.entity_type) == "redact"], placeholders=placeholders)
           for path, text, fs in found}
    fields = {k: _rebuild(v, k, new) for k, v in record.fields.items()}
    meta = dict(record.meta)
    flags = sorted({r.entity_type for r in reported if r.action == "flag"})
    if flags:
        meta["pii_flags"] = flags
    if "redact" in actions:
        meta["pii_source_id"] = record.id
        out = replace(record, id=record_id(record.kind, fields), fields=fields, meta=meta)
        return out, PiiReport(record.id, "redacted", reported)
    return replace(record, meta=meta), PiiReport(record.id, "flagged" if flags else "kept", reported)
