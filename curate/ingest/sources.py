"""Ingest: stream a source into the pool, quarantining rows that cannot be read.

The whole ingest is one transaction, recorded by one audit event: it happens completely or not at all, and
running it again is harmless (records are keyed by content, so nothing is stored twice).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
from sqlalchemy import insert, update

from curate.errors import InputError, RecordError
from curate.ingest.formats import row_to_record
from curate.ingest.readers import DEFAULT_MAX_ROW_BYTES, RawRow, detect_format, read_rows
from curate.ingest.records import Record
from curate.ingest.split_moves import SplitMoves
from curate.store import audit
from curate.store.schema import Source
from curate.store.workspace import Workspace

if TYPE_CHECKING:
    from curate.filters.pii_preview import PiiPreview
    from curate.filters.pii_workspace import PiiOptions

DEFAULT_BATCH = 5000
SPLITS = ("pool", "test", "calibration")


@dataclass
class IngestReport:
    """What one ingest did. Counts are rows of the source; ``new`` + ``moved`` + ``duplicates`` = ``valid`` (minus
    rows dropped for PII).

    ``moved``: pool records this ingest into ``test``/``calibration`` moved to that split (``moved_with_tasks`` of
    them had tasks); ``already_in``: rows whose record was already in another split, by split (left there).
    """

    source: str
    format: str
    rows: int = 0
    valid: int = 0
    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    first_bad_lines: list[int] = field(default_factory=list)
    first_bad_rows: list[int] = field(default_factory=list)
    quarantine_path: str | None = None
    seconds: float = 0.0
    ids_digest: str = ""
    pii: dict[str, Any] = field(default_factory=dict)
    split: str = "pool"
    moved: int = 0
    moved_with_tasks: int = 0
    already_in: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Rows read per second of wall time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


class _Quarantine:
    """Writes unreadable rows, lazily, to ``quarantine/<stem>-<time>.jsonl`` with their line and reason."""

    def __init__(self, folder: Path, source: Path, *, redact: Callable[[Any], Any] | None = None) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.path = folder / f"{source.name}-{stamp}.jsonl"
        self._fh: IO[bytes] | None = None
        self.reasons: Counter[str] = Counter()
        self.redact = redact
        self.lines: list[int] = []
        self.rows: list[int] = []

    def add(self, source: str, line: int, row: int, reason: str, raw: Any) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("wb")
        if self.redact is not None:
            raw = self.redact(raw)
        entry = {"source": source, "line": line, "row": row, "reason": reason, "raw": raw}
        self._fh.write(orjson.dumps(entry, default=str) + b"\n")
        self.reasons[reason.split(":")[0][:80]] += 1
        self.lines.append(line)
        self.rows.append(row)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _raw_excerpt(row: RawRow) -> Any:
    if row.raw is not None:
        return row.raw
    try:
        text = orjson.dumps(row.data, default=str).decode()
    except TypeError:
        text = repr(row.data)
    return text[:2000]


def ingest(
    workspace: Workspace,
    source: Path | str,
    *,
    kind: str | None = None,
    mapping: Mapping[str, str] | None = None,
    fmt: str | None = None,
    split: str = "pool",
    hf_split: str | None = None,
    strict: bool = False,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    batch_size: int = DEFAULT_BATCH,
    actor: str | None = None,
    pii: str | None = None,
    pii_allow: tuple[str, ...] = (),
    pii_options: PiiOptions | None = None,
    on_progress: Callable[[int], None] | None = None,
    move_selected: bool = False,
) -> IngestReport:
    """Read ``source`` into the workspace pool.

    Args:
        workspace: where to store records, quarantine and audit.
        source: a JSONL, JSON, CSV/TSV or Parquet file (optionally .gz), or a saved Hugging Face dataset folder.
        kind: force one record kind instead of detecting it per row.
        mapping: ``{"target": "source.path"}`` column renames applied before detection.
        fmt: force a reader (see :data:`curate.ingest.readers.FORMATS`).
        split: ``pool`` (selectable), ``test`` (frozen test set) or ``calibration`` (random calibration slice).
        hf_split: for a saved ``DatasetDict``, read only this split.
        strict: stop at the first unreadable row and store nothing (raises :class:`InputError`).
        max_row_bytes: a line (or element) longer than this is quarantined unread.
        batch_size: records per database insert.
        actor: who ingests (default: :func:`curate.store.audit.default_actor`).
        pii: ``redact``, ``drop`` or ``flag`` every detected PII/secret value before anything is stored
            (quarantined rows are redacted too); ``None`` to skip detection.
        pii_allow: strings never treated as PII (public names, your own product names).
        pii_options: types, minimum scores, more allowed strings, and the key that keeps the originals of
            redacted texts (encrypted; without a key a redaction cannot be undone). See :func:`preview_pii` to see
            what a policy would change first.
        on_progress: called with the number of rows read so far, every batch.
        move_selected: with ``split`` test/calibration, also move pool records that already have tasks (else such
            rows stop the ingest with :class:`InputError`; see :mod:`curate.ingest.split_moves`).

    Returns:
        An :class:`IngestReport`. Rows that cannot be read are in ``report.quarantine_path``.
    """
    path = Path(source)
    fmt = fmt or detect_format(path)
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
    rows = read_rows(path, fmt=fmt, max_row_bytes=max_row_bytes, split=hf_split)
    report = IngestReport(source=str(path), format=fmt, split=split)
    guard = None
    if pii is not None:
        from curate.filters.pii_workspace import ACTIONS, PiiGuard, PiiOptions, workspace_salt

        if pii == "preview":
            raise InputError("--pii preview stores nothing: it is curate.ingest.sources.preview_pii (the CLI runs it "
                             "for `curate ingest --pii preview`).")
        if pii not in ACTIONS:
            raise InputError(f"--pii must be one of {', '.join(ACTIONS)} or preview; got {pii!r}.")
        guard = PiiGuard(pii, workspace_salt(workspace), pii_allow, pii_options or PiiOptions())
    quarantine = _Quarantine(workspace.quarantine_dir, path, redact=guard.redact_text if guard else None)
    started = time.perf_counter()
    store = workspace.store
    who = actor or audit.default_actor()
    digest = hashlib.blake2b(digest_size=16)
    kinds: Counter[str] = Counter()
    moves = SplitMoves(split, allow_selected=move_selected)
    try:
        with store.write() as conn:
            if guard is not None and guard.options.key is not None:
                from curate.filters.pii_vault import check_key

                check_key(conn, guard.options.key)  # before anything is read
            source_id = conn.execute(
                insert(Source).values(path=str(path), format=fmt, actor=who).returning(Source.id)
            ).scalar_one()
            for batch in _batches(rows, report, quarantine, kind, mapping, strict, batch_size, guard):
                new = store.insert_records(conn, batch, source_id, split=split)
                moves.check(conn, batch, {rec.id for rec in new})
                if guard is not None:
                    _store_findings(conn, guard, {rec.id for rec in new})
                report.new += len(new)
                for rec in new:
                    digest.update(rec.id.encode())
                    kinds[rec.kind] += 1
                if on_progress:
                    on_progress(report.rows)
            moves.raise_if_blocked(str(path))
            dropped = guard.counts["dropped"] if guard is not None else 0
            report.moved, report.moved_with_tasks = len(moves.moved), len(moves.moved_selected)
            report.already_in = dict(moves.already_in)
            report.duplicates = report.valid - report.new - report.moved - dropped
            report.quarantined = len(quarantine.lines)
            report.ids_digest = digest.hexdigest()
            report.by_kind = dict(kinds)
            quarantine.close()
            if report.quarantined:
                report.quarantine_path = str(quarantine.path)
                report.reasons = dict(quarantine.reasons.most_common())
                report.first_bad_lines = quarantine.lines[:20]
                report.first_bad_rows = quarantine.rows[:20]
            conn.execute(
                update(Source).where(Source.id == source_id).values(
                    n_rows=report.rows, n_new=report.new, n_duplicates=report.duplicates,
                    n_quarantined=report.quarantined, quarantine_path=report.quarantine_path,
                )
            )
            if guard is not None:
                report.pii = {**guard.summary(), "originals_stored": guard.stored_originals}
            audit.append(conn, "ingest", {
                **({"pii": report.pii} if report.pii else {}),
                "source": path.name, "source_id": source_id, "format": fmt, "split": split,
                "rows": report.rows, "new": report.new, "duplicates": report.duplicates,
                "quarantined": report.quarantined, "new_ids_digest": report.ids_digest,
                "by_kind": report.by_kind, **({"moved": report.moved} if report.moved else {}),
                **({"already_in": report.already_in} if report.already_in else {}),
            }, actor=who)
            if moves.moved:
                audit.append(conn, "ingest.move_split", {"source": path.name, "source_id": source_id,
                                                         **moves.audit_payload()}, actor=who)
    finally:
        quarantine.close()
    report.seconds = time.perf_counter() - started
    return report


def _store_findings(conn: Any, guard: Any, new_ids: set[str]) -> None:
    """The findings (and with a key, the encrypted originals) of the records just inserted; the rest are dropped
    or duplicates of stored records."""
    from curate.filters.pii_vault import store_originals
    from curate.store.schema import PiiFinding

    rows = [f for f in guard.findings if f["record_id"] in new_ids]
    guard.findings.clear()
    if rows:
        conn.execute(insert(PiiFinding), rows)
    if guard.options.key is not None:
        originals = [o for o in guard.originals if o[0] in new_ids]
        guard.stored_originals += store_originals(conn, guard.options.key, originals)
    guard.originals.clear()


def preview_pii(
    source: Path | str,
    *,
    kind: str | None = None,
    mapping: Mapping[str, str] | None = None,
    fmt: str | None = None,
    hf_split: str | None = None,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    pii_allow: tuple[str, ...] = (),
    pii_options: PiiOptions | None = None,
    samples: int | None = None,
    limit: int | None = None,
) -> PiiPreview:
    """What ``ingest(..., pii="redact")`` would change in the first rows of ``source``; nothing is stored or written.

    Rows that cannot be read are skipped (ingest would quarantine them). Arguments as :func:`ingest`; ``samples``
    records with findings are kept for display, of at most ``limit`` read (defaults in
    :mod:`curate.filters.pii_preview`).
    """
    from curate.filters.pii_preview import PREVIEW_LIMIT, PREVIEW_SAMPLES, preview_records

    path = Path(source)
    fmt = fmt or detect_format(path)
    rows = read_rows(path, fmt=fmt, max_row_bytes=max_row_bytes, split=hf_split)

    def records() -> Iterator[Record]:
        for number, row in enumerate(rows, 1):
            if row.error is None:
                try:
                    yield row_to_record(row.data, source=str(path), line=row.line, row_number=number, kind=kind,
                                        mapping=mapping)
                except RecordError:
                    continue

    return preview_records(records(), allow_list=pii_allow, options=pii_options,
                           samples=PREVIEW_SAMPLES if samples is None else samples,
                           limit=PREVIEW_LIMIT if limit is None else limit)


def _batches(
    rows: Iterator[RawRow],
    report: IngestReport,
    quarantine: _Quarantine,
    kind: str | None,
    mapping: Mapping[str, str] | None,
    strict: bool,
    batch_size: int,
    guard: Any = None,
) -> Iterator[list[Record]]:
    source = report.source
    batch: list[Record] = []
    for row in rows:
        report.rows += 1
        if row.error is None:
            try:
                rec = row_to_record(row.data, source=source, line=row.line, row_number=report.rows,
                                    kind=kind, mapping=mapping)
                report.valid += 1
                processed = guard.process(rec) if guard is not None else rec
                if processed is not None:
                    batch.append(processed)
            except RecordError as exc:
                row.error, row.raw = str(exc), _raw_excerpt(row)
        if row.error is not None:
            quarantine.add(source, row.line, report.rows, row.error, row.raw)
            if strict:
                raise InputError(
                    f"{source}, line {row.line}: {row.error}. Nothing was stored (--strict). Fix the row, or "
                    "run without --strict to quarantine bad rows and keep the rest."
                )
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
