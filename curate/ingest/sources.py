"""Ingest: stream a source into the pool, quarantining rows that cannot be read.

The whole ingest is one transaction, recorded by one audit event: it happens completely or not at all, and
running it again is harmless (records are keyed by content, so nothing is stored twice).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import insert, update

from curate.errors import InputError, RecordError, check_choice
from curate.ingest.formats import row_to_record
from curate.ingest.mapping import check_columns
from curate.ingest.raw_rows import UTF8
from curate.ingest.readers import DEFAULT_MAX_ROW_BYTES, FORMATS, RawRow, check_encoding, detect_format, read_rows
from curate.ingest.records import Record, check_kind
from curate.ingest.report import IngestReport, Quarantine
from curate.ingest.split_moves import SplitMoves
from curate.store import audit
from curate.store.schema import Source
from curate.store.workspace import Workspace

if TYPE_CHECKING:
    from curate.filters.pii_preview import PiiPreview
    from curate.filters.pii_workspace import PiiOptions

DEFAULT_BATCH = 5000
#: Records whose texts are detected for PII together (then progress is reported).
PII_CHUNK = 32
SPLITS = ("pool", "test", "calibration")

__all__ = ["IngestReport", "check_options", "check_source", "ingest", "preview_pii"]


def check_options(*, kind: str | None = None, split: str = "pool", fmt: str | None = None, encoding: str = UTF8,
                  pii: str | None = None, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> None:
    """Raise :class:`InputError` for an ingest option that cannot be used, listing the valid values and the
    closest one; called before anything is read."""
    check_kind(kind)
    check_choice(split, SPLITS, "--split")
    if fmt is not None:
        check_choice(fmt, FORMATS, "--format")
    check_encoding(encoding, fmt)
    if pii is not None:
        from curate.filters.pii_workspace import ACTIONS

        check_choice(pii, (*ACTIONS, "preview", "off"), "--pii")
    if isinstance(max_row_bytes, bool) or not isinstance(max_row_bytes, int) or max_row_bytes < 1:
        raise InputError(f"--max-row-bytes must be a positive number of bytes; got {max_row_bytes!r:.40}.")


def _open(path: Path, *, fmt: str | None, mapping: Mapping[str, str] | None, encoding: str, hf_split: str | None,
          max_row_bytes: int, columns: Sequence[str] | None = None) -> tuple[str, Iterator[RawRow]]:
    """The format and rows of ``path``, after checking that the mapped columns exist (see
    :func:`~curate.ingest.mapping.check_columns`)."""
    fmt = fmt or detect_format(path)
    check_encoding(encoding, fmt)
    rows = read_rows(path, fmt=fmt, max_row_bytes=max_row_bytes, split=hf_split, encoding=encoding, columns=columns)
    return fmt, check_columns(rows, mapping, path.name)


def check_source(source: Path | str, *, fmt: str | None = None, mapping: Mapping[str, str] | None = None,
                 encoding: str = UTF8, hf_split: str | None = None,
                 max_row_bytes: int = DEFAULT_MAX_ROW_BYTES, columns: Sequence[str] | None = None) -> str:
    """The format of ``source``, after the checks :func:`ingest` makes before it stores anything (the file exists,
    its format, encoding and header, the mapped columns); lets a command check every source before the first."""
    fmt, rows = _open(Path(source), fmt=fmt, mapping=mapping, encoding=encoding, hf_split=hf_split,
                      max_row_bytes=max_row_bytes, columns=columns)
    next(rows, None)  # the header (CSV), the first element (JSON), the file's metadata (Parquet)
    return fmt


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
    encoding: str = UTF8,
    columns: Sequence[str] | None = None,
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
        on_progress: called with the number of rows read so far, every batch (with ``pii``, every
            :data:`PII_CHUNK` records).
        move_selected: with ``split`` test/calibration, also move pool records that already have tasks (else such
            rows stop the ingest with :class:`InputError`; see :mod:`curate.ingest.split_moves`).
        encoding: of a text source (``utf-8``, ``utf-8-sig``, ``cp1252``, ...).
        columns: the column names of a CSV/TSV source without a header line (its first line is a row).

    Returns:
        An :class:`IngestReport`. Rows that cannot be read are in ``report.quarantine_path``.
    """
    path = Path(source)
    check_options(kind=kind, split=split, fmt=fmt, encoding=encoding, pii=pii, max_row_bytes=max_row_bytes)
    pii = None if pii == "off" else pii
    if pii == "preview":
        raise InputError("--pii preview stores nothing: it is curate.ingest.sources.preview_pii (the CLI runs it "
                         "for `curate ingest --pii preview`).")
    fmt, rows = _open(path, fmt=fmt, mapping=mapping, encoding=encoding, hf_split=hf_split,
                      max_row_bytes=max_row_bytes, columns=columns)
    report = IngestReport(source=str(path), format=fmt, split=split)
    guard = None
    if pii is not None:
        from curate.filters.pii_workspace import PiiGuard, PiiOptions, workspace_salt

        guard = PiiGuard(pii, workspace_salt(workspace), pii_allow, pii_options or PiiOptions())
        guard.use_cache(workspace.cache_dir / "pii")  # batched detection; an interrupted ingest keeps its findings
    quarantine = Quarantine(workspace.quarantine_dir, path, redact=guard.redact_text if guard else None)
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
            for batch in _batches(rows, report, quarantine, kind, mapping, strict, batch_size, guard, on_progress):
                batch = moves.twins(conn, batch)
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
            report.label_conflicts, report.label_conflict_examples = moves.n_label_conflicts, moves.label_conflicts
            report.duplicates = report.valid - report.new - report.moved - dropped
            report.ids_digest = digest.hexdigest()
            report.by_kind = dict(kinds)
            quarantine.close()
            quarantine.fill(report)
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
    encoding: str = UTF8,
    columns: Sequence[str] | None = None,
) -> PiiPreview:
    """What ``ingest(..., pii="redact")`` would change in the first rows of ``source``; nothing is stored or written.

    Rows that cannot be read are skipped (ingest would quarantine them). Arguments as :func:`ingest`; ``samples``
    records with findings are kept for display, of at most ``limit`` read (defaults in
    :mod:`curate.filters.pii_preview`).
    """
    from curate.filters.pii_preview import PREVIEW_LIMIT, PREVIEW_SAMPLES, preview_records

    path = Path(source)
    check_options(kind=kind, fmt=fmt, encoding=encoding, max_row_bytes=max_row_bytes)
    _, rows = _open(path, fmt=fmt, mapping=mapping, encoding=encoding, hf_split=hf_split,
                    max_row_bytes=max_row_bytes, columns=columns)

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
    quarantine: Quarantine,
    kind: str | None,
    mapping: Mapping[str, str] | None,
    strict: bool,
    batch_size: int,
    guard: Any = None,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[list[Record]]:
    """Records to insert, ``batch_size`` at a time. With a PII guard, records wait in groups of
    :data:`PII_CHUNK` whose texts are detected together (batched, cached: see :meth:`PiiGuard.prefetch`);
    ``on_progress(rows read)`` follows each group."""
    source = report.source
    batch: list[Record] = []
    waiting: list[Record] = []

    def release() -> None:
        guard.prefetch(waiting)
        for rec in waiting:
            processed = guard.process(rec)
            if processed is not None:
                batch.append(processed)
        waiting.clear()
        if on_progress:
            on_progress(report.rows)

    for row in rows:
        report.rows += 1
        if row.error is None:
            try:
                rec = row_to_record(row.data, source=source, line=row.line, row_number=report.rows,
                                    kind=kind, mapping=mapping)
                report.valid += 1
                if guard is None:
                    batch.append(rec)
                else:
                    waiting.append(rec)
                    if len(waiting) >= PII_CHUNK:
                        release()
            except RecordError as exc:
                row.error, row.raw = str(exc), _raw_excerpt(row)
        if row.error is not None:
            quarantine.add(source, row.line, report.rows, row.error, row.raw, element=row.element)
            if strict:
                raise InputError(
                    f"{source}, {row.where}: {row.error}. Nothing was stored (--strict). Fix the row, or "
                    "run without --strict to quarantine bad rows and keep the rest."
                )
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if waiting:
        release()
    if batch:
        yield batch
