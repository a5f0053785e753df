"""PII in the workspace: applied at ingest (so clear values are never stored) or afterwards (``filter pii``).

Findings are stored as types, fields, offsets and keyed hashes of the values (salt in ``<workspace>/.pii-salt``,
created once, readable by its owner only); never the values. Quarantined rows are redacted too.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from curate.ingest.records import Record
from curate.store.workspace import Workspace

SALT_FILE = ".pii-salt"
ACTIONS = ("redact", "drop", "flag")


def workspace_salt(ws: Workspace) -> bytes:
    """The workspace's secret salt for value hashes (32 random bytes, created on first use)."""
    path = ws.root / SALT_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
    return path.read_bytes()


@dataclass
class PiiGuard:
    """Applies a PII policy to records as they are ingested or re-filtered, and counts what it did.

    Attributes:
        action: the action for every detected type: ``redact``, ``drop`` or ``flag``.
        allow_list: strings never reported (public names, your own product names).
        salt: key of the value hashes.
    """

    action: str
    salt: bytes
    allow_list: tuple[str, ...] = ()
    counts: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    findings: list[dict[str, Any]] = field(default_factory=list)
    _policy: Any = None

    def __post_init__(self) -> None:
        from curate.filters.policy import PiiPolicy

        self._policy = PiiPolicy(default=self.action, allow_list=self.allow_list)

    def _redact_string(self, text: str) -> str:
        from curate.filters.pii import detect, redact

        return redact(text, detect(text, entities=self._policy.entities, allow_list=self.allow_list))

    def redact_text(self, value: Any) -> Any:
        """``value`` with every detected entity replaced by a typed placeholder (strings inside lists/dicts too)."""
        if isinstance(value, str):
            return self._redact_string(value)
        if isinstance(value, list):
            return [self.redact_text(v) for v in value]
        if isinstance(value, dict):
            return {k: self.redact_text(v) for k, v in value.items()}
        return value

    def process(self, record: Record, *, keep_id: bool = False) -> Record | None:
        """The record after the policy (``None`` when dropped); findings are kept for :meth:`finding_rows`."""
        from curate.filters.policy import apply_policy

        out, report = apply_policy(record, self._policy, salt=self.salt)
        self.counts[report.action] += 1
        for f in report.findings:
            self.by_type[f.entity_type] += 1
        if out is None:
            return None
        if self.action == "redact" and out.meta:
            out = replace(out, meta={k: (v if k == "pii_source_id" else self.redact_text(v))
                                     for k, v in out.meta.items()})
        if keep_id:
            out = replace(out, id=record.id)
        self.findings.extend({"record_id": out.id, "field": f.field, "entity_type": f.entity_type, "start": f.start,
                              "end": f.end, "action": f.action, "value_hash": f.value_hash}
                             for f in report.findings)
        return out

    def summary(self) -> dict[str, Any]:
        """Counts by outcome (kept, redacted, flagged, dropped) and by entity type."""
        return {"action": self.action, "records": dict(self.counts), "by_type": dict(self.by_type)}
