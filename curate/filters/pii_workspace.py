"""PII in the workspace: applied at ingest (so clear values are never stored) or afterwards (``filter pii``).

Findings are stored as types, fields, offsets and keyed hashes of the values (salt in ``<workspace>/.pii-salt``,
created once, readable by its owner only); never the values. Quarantined rows are redacted too.

With a key (:mod:`curate.filters.pii_vault`), the original of every text a redaction changes is stored encrypted
in ``pii_originals``, so ``filter pii --revise`` can run detection again on the originals with other settings
(types, minimum scores, allow-list). Without a key nothing is kept: a redaction cannot be undone.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from sqlalchemy import delete, insert, select, update

from curate.errors import InputError
from curate.filters.pii_vault import PiiKey
from curate.filters.policy import RecordPlan
from curate.ingest.records import Record
from curate.store import audit
from curate.store.workspace import Workspace

SALT_FILE = ".pii-salt"
ACTIONS = ("redact", "drop", "flag")
#: Share of records changed by redaction above which ingest warns loudly (``--pii-warn-share``).
DEFAULT_WARN_SHARE: Final = 0.2


def workspace_salt(ws: Workspace) -> bytes:
    """The workspace's secret salt for value hashes (32 random bytes, created on first use)."""
    path = ws.root / SALT_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
    return path.read_bytes()


@dataclass(frozen=True)
class PiiOptions:
    """What to detect and how sure to be, beyond the action; and the key that keeps originals.

    Attributes:
        types: entity types to detect (``--pii-types``); None: :data:`curate.filters.pii.DEFAULT_ENTITIES`.
        min_scores: entity type -> minimum score (``--pii-min-score PERSON=0.85``).
        threshold: minimum score of the other types (``--pii-min-score 0.5``); None: the detector's default.
        allow_list: strings never treated as PII (``--pii-allow``, ``--pii-allow-file``).
        key: encrypts the originals of redacted texts; None: redaction cannot be undone.
    """

    types: tuple[str, ...] | None = None
    min_scores: Mapping[str, float] = field(default_factory=dict)
    threshold: float | None = None
    allow_list: tuple[str, ...] = ()
    key: PiiKey | None = None

    def describe(self) -> dict[str, Any]:
        """The settings for reports and the audit log: the allow-list by size and digest, the key by id."""
        allowed = sorted({a.strip().lower() for a in self.allow_list})
        return {"types": list(self.types) if self.types else "default", "min_scores": dict(self.min_scores),
                "threshold": self.threshold, "allow_list": {"size": len(allowed), "digest": hashlib.sha256(
                    "\n".join(allowed).encode()).hexdigest()[:16]},
                "reversible": self.key is not None, "key_id": self.key.key_id if self.key else None}


#: Named groups of entity types for ``--pii-types`` (besides single types): ``default`` is what is detected
#: without the option, ``contact`` the pattern-and-checksum types that rarely fire on ordinary text, ``secrets``
#: the credentials.
TYPE_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "contact": ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"),
}


def type_groups() -> dict[str, tuple[str, ...]]:
    """:data:`TYPE_GROUPS` plus ``default`` (:data:`curate.filters.pii.DEFAULT_ENTITIES`) and ``secrets``."""
    from curate.filters.pii import DEFAULT_ENTITIES
    from curate.filters.secrets import SECRET_TYPES

    return {"default": DEFAULT_ENTITIES, **TYPE_GROUPS,
            "secrets": tuple(t for t in DEFAULT_ENTITIES if t in SECRET_TYPES)}


def resolve_types(spec: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Entity types from ``--pii-types`` values: types and group names, comma-separated or repeated; ``-TYPE``
    (or ``-group``) removes, starting from ``default`` when the first item is a removal.

    >>> resolve_types(["contact,-IP_ADDRESS", "PERSON"])
    ('EMAIL_ADDRESS', 'PHONE_NUMBER', 'CREDIT_CARD', 'IBAN_CODE', 'US_SSN', 'PERSON')
    >>> "LOCATION" in resolve_types(["-LOCATION"]), "PERSON" in resolve_types(["-LOCATION"])
    (False, True)
    """
    groups = type_groups()
    items = [i.strip() for value in spec for i in value.split(",") if i.strip()]
    chosen: list[str] = list(groups["default"]) if items and items[0].startswith("-") else []
    for item in items:
        name = item.lstrip("-").strip()
        types = groups.get(name.lower(), (name.upper(),))
        if item.startswith("-"):
            if not set(types) & set(chosen):  # removes nothing: a known type not chosen, or a typo (-LOCATON)
                check_types(types, removed=True)
            chosen = [t for t in chosen if t not in types]
        else:
            chosen += [t for t in types if t not in chosen]
    return tuple(chosen)


def check_types(types: tuple[str, ...], *, removed: bool = False) -> None:
    """Raise :class:`InputError` naming ``--pii-types`` (``removed``: written after a minus) when a type is not one
    the analyzer detects, with the valid names and the closest."""
    from curate.errors import did_you_mean
    from curate.filters.pii import build_analyzer

    known = set(build_analyzer().get_supported_entities(language="en"))
    unknown = [t for t in types if t not in known]
    if unknown or not types:
        names = ", ".join(("-" if removed else "") + t for t in unknown) or "no type is left"
        closest = did_you_mean(unknown[0], sorted(known)) if unknown else ""
        raise InputError(f"--pii-types: {names}: not a type curate detects. Choose among {', '.join(sorted(known))}, "
                         f"or the groups {', '.join(type_groups())}.{closest}")


@dataclass
class PiiGuard:
    """Applies a PII policy to records as they are ingested or re-filtered, and counts what it did.

    Attributes:
        action: the action for every detected type: ``redact``, ``drop`` or ``flag``.
        salt: key of the value hashes.
        allow_list: strings never reported (public names, your own product names), besides ``options``'.
        options: types, minimum scores, allow-list and key.
    """

    action: str
    salt: bytes
    allow_list: tuple[str, ...] = ()
    options: PiiOptions = field(default_factory=PiiOptions)
    counts: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    records_by_type: Counter[str] = field(default_factory=Counter)
    findings: list[dict[str, Any]] = field(default_factory=list)
    originals: list[tuple[str, str, str]] = field(default_factory=list)
    stored_originals: int = 0
    dropped_copy: Record | None = None
    last_plan: RecordPlan | None = None
    detector: Any = None
    _policy: Any = None

    def __post_init__(self) -> None:
        from curate.filters.pii import DEFAULT_ENTITIES, DEFAULT_THRESHOLD
        from curate.filters.policy import PiiPolicy

        if self.action not in ACTIONS:
            raise InputError(f"--pii / --action must be one of {', '.join(ACTIONS)}; got {self.action!r}.")
        opts = self.options
        if opts.types is not None:
            check_types(opts.types)
        self.allow_list = tuple(dict.fromkeys((*self.allow_list, *opts.allow_list)))
        self._policy = PiiPolicy(default=self.action, allow_list=self.allow_list, min_scores=dict(opts.min_scores),
                                 entities=opts.types or DEFAULT_ENTITIES,
                                 threshold=DEFAULT_THRESHOLD if opts.threshold is None else opts.threshold)

    @property
    def policy(self) -> Any:
        """The :class:`curate.filters.policy.PiiPolicy` applied."""
        return self._policy

    def use_cache(self, folder: Path | None) -> None:
        """Detect through a :class:`curate.filters.pii_batch.Detector` (batched ``nlp.pipe``), with its findings
        cached in ``folder/findings.sqlite`` (``None``: in memory only) so an interrupted pass resumes."""
        from curate.filters.pii_batch import Detector, FindingsCache

        p = self._policy
        cache = FindingsCache(folder / "findings.sqlite") if folder is not None else None
        self.detector = Detector(cache, entities=p.entities, allow_list=p.allow_list, threshold=p.detect_threshold)

    def prefetch(self, records: Iterable[Record], on_progress: Callable[[int, int], None] | None = None) -> None:
        """Detect the texts of ``records`` in batches now (a no-op without :meth:`use_cache`)."""
        from curate.filters.policy import record_texts

        if self.detector is not None:
            self.detector.warm((t for r in records for _, t in record_texts(r, meta=True)), on_progress)

    def redact_text(self, value: Any) -> Any:
        """``value`` with every detected entity replaced by a typed placeholder (strings inside lists/dicts too, as
        the texts of one record: shared placeholders, names propagated; ``role``/``type`` values are kept)."""
        from curate.filters.policy import plan_record, redacted_copy

        plan = plan_record(Record(id="", kind="text", fields={"value": value}), self._policy, detector=self.detector)
        return redacted_copy(plan).fields["value"]

    def process(self, record: Record, *, keep_id: bool = False) -> Record | None:
        """The record after the policy (``None`` when dropped; then :attr:`dropped_copy` is its redacted copy).

        Findings are kept for the caller to store, and with a key the originals of the changed texts as
        ``(stored record id, path, text)`` in :attr:`originals`.
        """
        from curate.filters.policy import apply_plan, plan_record, redacted_copy

        plan = self.last_plan = plan_record(record, self._policy, meta=True, detector=self.detector)
        out, report = apply_plan(plan, salt=self.salt)
        self.counts[report.action] += 1
        for f in report.findings:
            self.by_type[f.entity_type] += 1
        self.records_by_type.update({f.entity_type for f in report.findings})
        if out is None:
            self.dropped_copy = redacted_copy(plan)
            changed = {t.path: t.text for t in plan.texts if t.findings}
        else:
            changed = plan.changed()
        stored_id = record.id if keep_id or out is None else out.id
        self.findings.extend({"record_id": stored_id, "field": f.field, "entity_type": f.entity_type, "start": f.start,
                              "end": f.end, "action": f.action, "value_hash": f.value_hash}
                             for f in report.findings)
        if self.options.key is not None:
            self.originals.extend((stored_id, path, text) for path, text in changed.items())
        if out is None:
            return None
        return replace(out, id=record.id) if keep_id else out

    def summary(self) -> dict[str, Any]:
        """Counts by outcome (kept, redacted, flagged, dropped), findings and records by entity type, the share
        of records changed, and the settings (never a value)."""
        total = sum(self.counts.values())
        changed = self.counts["redacted"] + self.counts["dropped"]
        speed = {"detection": self.detector.stats()} if self.detector is not None else {}
        return {**speed, "action": self.action, "records": dict(self.counts), "by_type": dict(self.by_type),
                "records_by_type": dict(self.records_by_type), "changed": changed,
                "changed_share": round(changed / total, 4) if total else 0.0,
                **replace(self.options, allow_list=self.allow_list).describe()}


@dataclass
class PiiFilterReport:
    """What ``filter pii`` did to the stored records."""

    action: str
    records: int
    summary: dict[str, Any]
    seconds: float
    updated: int = 0
    revised: bool = False
    originals_stored: int = 0


def run_pii(ws: Workspace, *, action: str = "redact", allow_list: tuple[str, ...] = (),
            options: PiiOptions | None = None, revise: bool = False, actor: str | None = None,
            on_progress: Callable[[int, int], None] | None = None) -> PiiFilterReport:
    """Apply a PII action to every active pool record already stored (ids are kept, so tasks still point at them).

    Redacted text replaces the stored text; dropped records get status ``pii`` (their stored text is redacted
    too); flagged ones keep their text and list the types in ``meta.pii_flags``. With ``options.key`` the
    originals of the changed texts are stored encrypted. Detection runs first, batched and cached by text in
    ``<workspace>/cache/pii`` (``on_progress(records done, records)``), so an interrupted run detects only the
    rest next time; the changes are then one transaction. On SQLite the database is then checkpointed and
    vacuumed so the old pages holding clear values are not left in the file.

    With ``revise`` (needs the workspace's key), every stored record of every split and status starts again
    from its decrypted originals: values the new settings no longer report are restored, new ones redacted, and
    the record's findings replaced. A record dropped earlier (status ``pii``) returns to ``active`` only under
    ``action="drop"`` when it no longer holds PII.

    Raises:
        InputError: bad action or types, or ``revise`` without a key.
        AccessError: the key is not the one this workspace's originals were encrypted with.
    """
    import orjson

    from curate.filters.pii_vault import check_key, load_originals, store_originals
    from curate.store.schema import PiiFinding, RecordRow

    options = options or PiiOptions()
    if revise and options.key is None:
        raise InputError("--revise decrypts the stored originals: pass the workspace's key with --key-file (or set "
                         "$CURATE_PII_KEY_FILE).")
    started = time.perf_counter()
    guard = PiiGuard(action, workspace_salt(ws), allow_list, options)
    with ws.store.read() as conn:
        if options.key is not None:
            check_key(conn, options.key)
        statuses: dict[str, str] = dict(conn.execute(select(RecordRow.id, RecordRow.status)).all())
    # revise: every record of every split and status; else the active pool
    records = list(ws.store.iter_records(split=None, status=None) if revise else ws.store.iter_records())
    key = options.key if revise else None
    guard.use_cache(ws.cache_dir / "pii")
    with ws.store.read() as conn:  # detect first, checkpointed: an interrupted run keeps its findings
        pairs = restored(records, lambda ids: load_originals(conn, key, ids) if key else {})
        done = 0
        while chunk := list(itertools.islice(pairs, 32)):
            guard.prefetch([source for _, source in chunk])
            done += len(chunk)
            if on_progress:
                on_progress(done, len(records))
    updated = 0
    with ws.store.write() as conn:
        for rec, source in restored(records, lambda ids: load_originals(conn, key, ids) if key else {}):
            out = guard.process(source, keep_id=True)
            status = statuses.get(rec.id, "active")
            if out is None:
                out, status = guard.dropped_copy or rec, "pii"
            elif status == "pii" and action == "drop":
                status = "active"  # revised: no PII left under the drop policy
            if out.fields != rec.fields or out.meta != rec.meta or status != statuses.get(rec.id, "active"):
                updated += 1
                conn.execute(update(RecordRow).where(RecordRow.id == rec.id).values(
                    status=status, data=orjson.dumps(out.fields).decode(),
                    meta=orjson.dumps(out.meta).decode() if out.meta else None))
        if revise:
            ids = [rec.id for rec in records]
            for i in range(0, len(ids), 500):
                conn.execute(delete(PiiFinding).where(PiiFinding.record_id.in_(ids[i : i + 500])))
        if guard.findings:
            conn.execute(insert(PiiFinding), guard.findings)
        stored = store_originals(conn, options.key, guard.originals) if options.key is not None else 0
        audit.append(conn, "filter.pii", {"records": len(records), "revise": revise, "updated": updated,
                                          "originals_stored": stored, **guard.summary()}, actor=actor)
    _purge_free_pages(ws)
    return PiiFilterReport(action, len(records), guard.summary(), time.perf_counter() - started, updated, revise,
                           stored)


def restored(records: Iterable[Record], originals: Callable[[list[str]], dict[str, dict[str, str]]], *,
             batch: int = 500) -> Iterator[tuple[Record, Record]]:
    """``(stored record, record with its originals put back)`` pairs; ``originals(ids)`` is asked per batch, so
    the decrypted texts of a large workspace are never all in memory."""
    from curate.filters.policy import with_texts

    it = iter(records)
    while chunk := list(itertools.islice(it, batch)):
        found = originals([r.id for r in chunk])
        yield from ((r, with_texts(r, found[r.id]) if r.id in found else r) for r in chunk)


def reveal(ws: Workspace, record_id: str, key: PiiKey, *, actor: str | None = None) -> tuple[Record, list[str]]:
    """The stored record with its redacted texts restored from their encrypted originals, and the paths restored.

    ``record_id`` may be a unique prefix (8+ characters). Every call is audited (``pii.reveal``: record, paths,
    key id; never a value).

    Raises:
        InputError: no such record, or the workspace keeps no originals.
        AccessError: ``key`` is not the workspace's key.
    """
    from curate.filters.pii_vault import load_originals, workspace_key_id
    from curate.filters.policy import with_texts
    from curate.store.schema import RecordRow

    with ws.store.read() as conn:
        ids = list(conn.scalars(select(RecordRow.id).where(RecordRow.id.startswith(record_id, autoescape=True))
                                .limit(2))) if len(record_id) >= 8 else []
        if workspace_key_id(conn) is None:
            raise InputError("this workspace keeps no encrypted originals (it was redacted without a key), so nothing "
                             "can be revealed. Redactions made with --key-file can be.")
    if len(ids) != 1:
        raise InputError(f"record {record_id!r}: " + ("several records start so; give more characters." if ids else
                         "no such record (give its id, or 8+ first characters of it)."))
    record = ws.store.get_record(ids[0])
    if record is None:  # deleted meanwhile
        raise InputError(f"record {ids[0]} is no longer stored.")
    with ws.store.write() as conn:
        originals = load_originals(conn, key, ids).get(ids[0], {})
        audit.append(conn, "pii.reveal", {"record_id": ids[0], "fields": sorted(originals), "key_id": key.key_id},
                     actor=actor)
    return with_texts(record, originals), sorted(originals)


def _purge_free_pages(ws: Workspace) -> None:
    """On SQLite: checkpoint and vacuum, so pages that held clear values are not left in the files."""
    if ws.store.dialect != "sqlite":
        return
    raw = ws.store.engine.raw_connection()  # outside any transaction: VACUUM cannot run inside one
    try:
        cursor = raw.cursor()
        for sql in ("PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"):
            cursor.execute(sql)
        cursor.close()
    finally:
        raw.close()
