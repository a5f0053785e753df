"""Apply a PII policy to a record: redact, drop or flag, with a report that never holds the values.

:func:`plan_record` finds what a policy would change in a record (text paths, findings, new texts) without
changing it; :func:`apply_plan` turns the plan into the new record and its report; :func:`apply_policy` does both.

>>> policy = PiiPolicy(actions={"EMAIL_ADDRESS": "drop"}, min_scores={"PERSON": 0.85})
>>> policy.action("EMAIL_ADDRESS"), policy.action("PERSON"), policy.min_score("PERSON"), policy.min_score("IBAN_CODE")
('drop', 'redact', 0.85, 0.4)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from curate.errors import InputError
from curate.filters.pii import (
    DEFAULT_ENTITIES,
    DEFAULT_THRESHOLD,
    Finding,
    detect,
    propagate_names,
    record_placeholders,
    redact,
)
from curate.ingest.records import Record, record_id

Action = Literal["redact", "drop", "flag"]
ACTIONS: Final[tuple[str, ...]] = ("redact", "drop", "flag")
_SKIP_KEYS: Final = frozenset({"role", "type", "tool_call_id"})
#: Path prefix of ``record.meta`` values in plans, reports and stored originals (``@meta.customer_email``).
META_ROOT: Final = "@meta"
#: Meta keys curate writes itself, never scanned.
_OWN_META: Final = frozenset({"pii_source_id", "pii_flags"})


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
        min_scores: entity type -> its own minimum score (``--pii-min-score PERSON=0.85``), instead of
            ``threshold``.
    """

    actions: dict[str, str] = field(default_factory=dict)
    default: str = "redact"
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    allow_list: tuple[str, ...] = ()
    threshold: float = DEFAULT_THRESHOLD
    min_scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entity, action in {**self.actions, "(default)": self.default}.items():
            if action not in ACTIONS:
                raise InputError(
                    f"The PII action for {entity} must be one of {', '.join(ACTIONS)}; got {action!r}. "
                    "Fix the policy's actions."
                )
        for entity, score in {**self.min_scores, "(default)": self.threshold}.items():
            if not 0.0 <= score <= 1.0:
                raise InputError(f"--pii-min-score {entity}={score!r}: a minimum score must be in [0, 1], e.g. "
                                 "PERSON=0.85.")
        unused = sorted(set(self.min_scores) - set(self.entities))
        if unused:
            raise InputError(f"--pii-min-score names {', '.join(unused)}, which is not among the types detected "
                             f"({', '.join(self.entities)}). Add it to --pii-types or drop its minimum score.")

    def action(self, entity_type: str) -> str:
        """The action for ``entity_type``."""
        return self.actions.get(entity_type, self.default)

    def min_score(self, entity_type: str) -> float:
        """The minimum score a finding of ``entity_type`` needs."""
        return float(self.min_scores.get(entity_type, self.threshold))

    @property
    def detect_threshold(self) -> float:
        """The lowest minimum score of any type: what detection is asked for before the per-type cut."""
        return min([self.threshold, *self.min_scores.values()])


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


def _check_salt(salt: bytes) -> None:
    if not isinstance(salt, bytes) or not 16 <= len(salt) <= 64:
        raise InputError(f"The report salt must be 16 to 64 bytes; got {salt!r:.20}. Pass e.g. os.urandom(32), "
                         "stored with the project.")


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


@dataclass(frozen=True, slots=True)
class TextPlan:
    """One text of a record under a policy.

    Attributes:
        path: where it is: a field path (``prompt``, ``messages[2].content``) or ``@meta.<key>``.
        text: the text as given.
        findings: what was found (after the per-type minimum scores), sorted by start.
        new_text: the text after the policy's ``redact`` actions.
    """

    path: str
    text: str
    findings: tuple[Finding, ...]
    new_text: str


@dataclass(frozen=True, slots=True)
class RecordPlan:
    """What a policy would do to one record, computed once: the input of :func:`apply_plan` and of previews.

    Attributes:
        record: the record as given.
        policy: the policy.
        texts: one entry per string of the record (fields, and meta if asked), in record order.
    """

    record: Record
    policy: PiiPolicy
    texts: tuple[TextPlan, ...]

    def changed(self) -> dict[str, str]:
        """Path -> original text of every text the policy changes (what reversible redaction encrypts)."""
        return {t.path: t.text for t in self.texts if t.new_text != t.text}


def record_texts(record: Record, *, meta: bool = False) -> list[tuple[str, str]]:
    """``(path, text)`` of every text :func:`plan_record` looks at: fields (messages included), and meta values if
    asked."""
    texts: list[tuple[str, str]] = []
    for name, value in record.fields.items():
        _walk(value, name, texts)
    if meta:
        for name, value in record.meta.items():
            if name not in _OWN_META:
                _walk(value, f"{META_ROOT}.{name}", texts)
    return texts


def plan_record(record: Record, policy: PiiPolicy, *, meta: bool = False,
                detector: Callable[..., list[Finding]] | None = None) -> RecordPlan:
    """Detect PII in every text field of ``record`` (messages included; ``meta`` values too if asked) with
    ``detector`` (default :func:`curate.filters.pii.detect`; a warmed :class:`curate.filters.pii_batch.Detector`).

    Placeholders are consistent across the record's texts: one value gives one placeholder everywhere. The other
    occurrences of a PERSON finding's value and name parts, in any text of the record, are PERSON findings too,
    with the same placeholder (:func:`curate.filters.pii.propagate_names`): "Hi Siobhan," in a reply to "Siobhan
    O'Connor" gives ``<PERSON_1>`` in both.
    """
    find = detector or detect
    texts = record_texts(record, meta=meta)
    strings = [text for _, text in texts]
    kept = [[f for f in find(text, entities=policy.entities, allow_list=policy.allow_list,
                             threshold=policy.detect_threshold) if f.score >= policy.min_score(f.entity_type)]
            for text in strings]
    kept = propagate_names(strings, kept, allow_list=policy.allow_list)
    placeholders = record_placeholders(strings, kept, allow_list=policy.allow_list)
    plans = []
    for (path, text), found in zip(texts, kept, strict=True):
        redacted = redact(text, [f for f in found if policy.action(f.entity_type) == "redact"],
                          placeholders=placeholders)
        plans.append(TextPlan(path, text, tuple(found), redacted))
    return RecordPlan(record, policy, tuple(plans))


def apply_plan(plan: RecordPlan, *, salt: bytes) -> tuple[Record | None, PiiReport]:
    """The record after ``plan``'s policy (see :func:`apply_policy`) and its report."""
    _check_salt(salt)
    record, policy = plan.record, plan.policy
    reported = tuple(
        ReportedFinding(t.path, f.entity_type, f.start, f.end, round(f.score, 4), f.recognizer,
                        policy.action(f.entity_type), hash_value(t.text[f.start : f.end], salt))
        for t in plan.texts for f in t.findings
    )
    actions = {r.action for r in reported}
    if "drop" in actions:
        return None, PiiReport(record.id, "dropped", reported)
    rebuilt = with_texts(record, {t.path: t.new_text for t in plan.texts})
    fields, meta = rebuilt.fields, dict(rebuilt.meta)
    flags = sorted({r.entity_type for r in reported if r.action == "flag"})
    if flags:
        meta["pii_flags"] = flags
    if "redact" in actions:
        meta.setdefault("pii_source_id", record.id)
        out = replace(record, id=record_id(record.kind, fields), fields=fields, meta=meta)
        return out, PiiReport(record.id, "redacted", reported)
    return replace(record, meta=meta), PiiReport(record.id, "flagged" if flags else "kept", reported)


def apply_policy(record: Record, policy: PiiPolicy, *, salt: bytes,
                 meta: bool = False) -> tuple[Record | None, PiiReport]:
    """Detect PII in every text field of ``record`` (messages included) and apply ``policy``.

    Placeholders are consistent across the record's fields: one value gives one placeholder everywhere.

    Args:
        record: the record.
        policy: actions per entity type.
        salt: 16-64 bytes keying the value hashes in the report; keep it secret and fixed per project.
        meta: also scan and redact the string values of ``record.meta`` (reported as ``@meta.<key>``).

    Returns:
        The new record (redacted text, new content id, ``meta["pii_source_id"]``; ``meta["pii_flags"]`` lists
        flagged types) or None when a ``drop`` type was found, and the report.

    Raises:
        InputError: the salt is not 16 to 64 bytes.
    """
    _check_salt(salt)
    return apply_plan(plan_record(record, policy, meta=meta), salt=salt)


def redacted_copy(plan: RecordPlan) -> Record:
    """``plan``'s record with every finding replaced by a placeholder, whatever its action (same id).

    What is stored of a record dropped in place (status ``pii``), so no value stays in clear.
    """
    placeholders = record_placeholders([t.text for t in plan.texts], [t.findings for t in plan.texts],
                                       allow_list=plan.policy.allow_list)
    new = {t.path: redact(t.text, t.findings, placeholders=placeholders) for t in plan.texts}
    return with_texts(plan.record, new)


def with_texts(record: Record, texts: Mapping[str, str]) -> Record:
    """``record`` (same id) with the texts at the given paths (as :class:`TextPlan` names them) replaced.

    >>> rec = Record(id="r", kind="text", fields={"text": "<PERSON_1> called"}, meta={"by": "<PERSON_1>"})
    >>> out = with_texts(rec, {"text": "Ann called", "@meta.by": "Ann"})
    >>> out.fields, out.meta
    ({'text': 'Ann called'}, {'by': 'Ann'})
    """
    fields = {k: _rebuild(v, k, dict(texts)) for k, v in record.fields.items()}
    meta = {k: v if k in _OWN_META else _rebuild(v, f"{META_ROOT}.{k}", dict(texts)) for k, v in record.meta.items()}
    return replace(record, fields=fields, meta=meta)
