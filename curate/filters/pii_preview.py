"""What a PII policy would change, without changing anything: counts per type and sample records.

Used by ``curate ingest --pii preview`` (records read from a file, nothing stored) and ``curate filter pii
--preview N`` (the stored records, nothing written). The samples hold clear values: they are shown to the person
who runs the command (who holds the file, or the workspace's key for ``--revise``), never stored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from curate.filters.pii_workspace import PiiGuard, PiiOptions
from curate.filters.policy import RecordPlan
from curate.ingest.records import Record
from curate.store.workspace import Workspace

#: Records a preview reads at most (detection runs at ~100-150 records/s).
PREVIEW_LIMIT: Final = 1000
#: Sample records a preview shows by default.
PREVIEW_SAMPLES: Final = 5
#: Types the NER model finds: on ordinary text, often public names or common words (narrowing can help).
NER_TYPES: Final = ("PERSON", "LOCATION", "NRP", "DATE_TIME")


@dataclass
class PiiPreview:
    """What the policy would do to the first :data:`PREVIEW_LIMIT` records.

    Attributes:
        scanned: records read.
        more: whether records were left unread past the limit.
        summary: :meth:`PiiGuard.summary` of the records read (outcomes, findings and records per type, share
            changed).
        samples: plans of the first records with findings, in input order.
        seconds: wall time.
    """

    scanned: int = 0
    more: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    samples: list[RecordPlan] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (sample record ids and the paths and types found; no text)."""
        return {"scanned": self.scanned, "more": self.more, "summary": self.summary, "seconds": round(self.seconds, 2),
                "samples": [{"record_id": p.record.id, "findings": [
                    {"field": t.path, "entity_type": f.entity_type, "start": f.start, "end": f.end,
                     "score": round(f.score, 4)} for t in p.texts for f in t.findings]} for p in self.samples]}


def preview_records(records: Iterable[Record], *, action: str = "redact", allow_list: tuple[str, ...] = (),
                    options: PiiOptions | None = None, samples: int = PREVIEW_SAMPLES,
                    limit: int = PREVIEW_LIMIT) -> PiiPreview:
    """Run the policy on up to ``limit`` records and keep the first ``samples`` that it would change or flag."""
    started = time.perf_counter()
    guard = PiiGuard(action, os.urandom(32), allow_list, replace(options or PiiOptions(), key=None))
    out = PiiPreview()
    for rec in records:
        if out.scanned >= limit:
            out.more = True
            break
        out.scanned += 1
        guard.process(rec)
        plan = guard.last_plan
        if plan is not None and len(out.samples) < samples and any(t.findings for t in plan.texts):
            out.samples.append(plan)
    guard.findings.clear()
    out.summary = {**guard.summary(), "reversible": options is not None and options.key is not None}
    out.seconds = time.perf_counter() - started
    return out


def preview_workspace(ws: Workspace, *, action: str = "redact", allow_list: tuple[str, ...] = (),
                      options: PiiOptions | None = None, revise: bool = False, samples: int = PREVIEW_SAMPLES,
                      limit: int = PREVIEW_LIMIT) -> PiiPreview:
    """:func:`preview_records` of the stored records that ``filter pii`` would process; nothing is written.

    With ``revise`` the records start from their decrypted originals (needs ``options.key``), as ``--revise`` would.

    Raises:
        InputError: ``revise`` without a key.
        AccessError: the key is not the workspace's.
    """
    from curate.errors import InputError
    from curate.filters.pii_vault import check_key, load_originals
    from curate.filters.pii_workspace import restored

    options = options or PiiOptions()
    if revise and options.key is None:
        raise InputError("--preview with --revise shows the decrypted originals: pass the workspace's key with "
                         "--key-file (or set $CURATE_PII_KEY_FILE).")
    if options.key is not None:
        with ws.store.read() as conn:
            check_key(conn, options.key)
    key = options.key if revise else None

    def originals(ids: list[str]) -> dict[str, dict[str, str]]:
        if key is None:
            return {}
        with ws.store.read() as conn:
            return load_originals(conn, key, ids)

    stored = ws.store.iter_records(split=None, status=None) if revise else ws.store.iter_records()
    records = (source for _, source in restored(stored, originals, batch=100))
    return preview_records(records, action=action, allow_list=allow_list, options=options, samples=samples,
                           limit=limit)


def share_advice(summary: dict[str, Any], *, preview: bool = False) -> str:
    """What to do about a high share of changed records (the end of the share warning), fitted to the types found.

    Narrowing ``--pii-types`` is advised only for an NER type other than PERSON (dropping PERSON would leave names
    in clear); when only pattern types were found (``contact``, ``secrets``), the records likely hold real personal
    data, so the advice is to check samples, allow the values that are not private, or raise a minimum score.

    >>> share_advice({"records_by_type": {"EMAIL_ADDRESS": 9}, "types": ["EMAIL_ADDRESS"]}, preview=True)[:40]
    'The types found (EMAIL_ADDRESS) are patt'
    """
    found = [t for t, _ in sorted(summary.get("records_by_type", {}).items(), key=lambda kv: -kv[1])]
    ner = [t for t in found if t in NER_TYPES]
    droppable = [t for t in ner if t != "PERSON"]
    check = ("Check the sample records, then " if preview else
             "See what changes with --pii preview (or `curate filter pii --preview 10`), then ")
    tail = "." if preview else " (with --key-file, `curate filter pii --revise` applies them to the originals)."
    if not ner:
        return (f"The types found ({', '.join(found) or 'none'}) are patterns with checks that rarely match ordinary "
                "text: the records most likely hold real personal data, and narrowing --pii-types would leave it "
                f"in clear. {check}add values that are not private (a support address, your company's number) to "
                f"--pii-allow / --pii-allow-file, or raise --pii-min-score (e.g. "
                f"{found[0] if found else 'PHONE_NUMBER'}=0.9)" + tail)
    narrow = ""
    if droppable:
        example = (f"default,-{droppable[0]}" if summary.get("types", "default") == "default"
                   else f"leave out {droppable[0]}")
        narrow = f"narrow --pii-types (e.g. {example}), "
    return (f"Ordinary words and public names may be redacted. {check}{narrow}raise --pii-min-score (e.g. "
            f"{ner[0]}=0.85) or add --pii-allow / --pii-allow-file" + tail)
