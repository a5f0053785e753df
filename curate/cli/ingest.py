"""``curate ingest`` and ``curate stats``: read sources into the pool, and count what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from curate.cli.options import (
    ColumnsOpt,
    DbOpt,
    EncodingOpt,
    JsonOpt,
    KeyFileOpt,
    PiiAllowFileOpt,
    PiiAllowOpt,
    PiiMinScoreOpt,
    PiiTypesOpt,
    WorkspaceOpt,
    pii_options,
)
from curate.cli.output import (
    console,
    err_console,
    note_pii_reversibility,
    print_pii_preview,
    warn_pii_share,
    write_json,
)
from curate.cli.progress import bar_progress
from curate.store.workspace import Workspace


def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Files (JSONL, JSON, CSV, TSV, Parquet; .gz ok) or saved "
                                                       "Hugging Face dataset folders.")],
    kind: Annotated[str | None, typer.Option(help="Force one kind: example, preference, candidates, text.")] = None,
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="Rename a column: TARGET=SOURCE (repeatable), e.g. --map text=sentence --map label=intent; "
                      "a pair from two response columns: --map responses=response_a,response_b --map preferred=winner."
    )] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="Force a reader: jsonl, json, csv, tsv, parquet, hf."
    )] = None,
    encoding: EncodingOpt = "utf-8",
    split: Annotated[str, typer.Option(help="pool (selectable), test (frozen test set) or calibration.")] = "pool",
    hf_split: Annotated[str | None, typer.Option(help="For a saved DatasetDict: read only this split.")] = None,
    columns: ColumnsOpt = None,
    strict: Annotated[bool, typer.Option(help="Fail on the first bad row and store nothing.")] = False,
    max_row_bytes: Annotated[int, typer.Option(help="Quarantine lines longer than this.")] = 4 * 1024 * 1024,
    pii: Annotated[str | None, typer.Option(help="redact, drop or flag personal data and secrets before anything "
                                                 "is stored (needs the pii extra; about 20,000 characters/s per "
                                                 "core); preview: store nothing, show sample records with their "
                                                 "redactions highlighted and the counts per type; off (the "
                                                 "default): no PII detection.")] = None,
    pii_types: PiiTypesOpt = None,
    pii_min_score: PiiMinScoreOpt = None,
    pii_allow: PiiAllowOpt = None,
    pii_allow_file: PiiAllowFileOpt = None,
    key_file: KeyFileOpt = None,
    pii_samples: Annotated[int, typer.Option(help="With --pii preview: how many records with findings to show (of "
                                                  "the first 1,000 rows).", min=0)] = 5,
    pii_warn_share: Annotated[float, typer.Option(help="Warn loudly when PII redaction changes more than this share "
                                                       "of the records.")] = 0.2,
    move_selected: Annotated[bool, typer.Option("--move-selected", help="With --split test/calibration: also move "
                                                "rows that are pool records already selected for annotation "
                                                "(default: stop and list them).")] = False,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Read sources into the pool; unreadable rows go to the workspace quarantine with their line numbers.

    With --split test or calibration, a row that is already a pool record moves to that split (it can never be
    selected again); the summary counts the moves.
    """
    from curate.errors import InputError
    from curate.ingest.formats import parse_mapping
    from curate.ingest.sources import check_options, check_source
    from curate.ingest.sources import ingest as run_ingest

    check_options(kind=kind, split=split, fmt=fmt, encoding=encoding, pii=pii, max_row_bytes=max_row_bytes)
    pii = None if pii == "off" else pii  # as the recipes' --pii off
    mapping = parse_mapping(map_)
    names = None if columns is None else columns.split(",")
    for source in sources:  # every source and its columns, before the first row is stored
        check_source(source, fmt=fmt, mapping=mapping, encoding=encoding, hf_split=hf_split,
                     max_row_bytes=max_row_bytes, columns=names)
    if pii == "preview":
        _preview(sources, kind=kind, mapping=mapping, fmt=fmt, hf_split=hf_split, max_row_bytes=max_row_bytes,
                 encoding=encoding, columns=names,
                 options=pii_options(types=pii_types, min_scores=pii_min_score, allow=pii_allow,
                                     allow_files=pii_allow_file, key_file=None, workspace_root=None, load_key=False),
                 samples=pii_samples, warn_share=pii_warn_share, json_out=json_out)
        return
    if pii is None and (pii_types or pii_min_score or pii_allow or pii_allow_file or key_file):
        raise InputError("--pii-types, --pii-min-score, --pii-allow(-file) and --key-file tune PII detection: add "
                         "--pii redact (or drop, flag, preview).")
    ws = Workspace.open(workspace, db)
    options = None
    if pii is not None:
        from curate.filters.pii_vault import workspace_key_id

        options = pii_options(types=pii_types, min_scores=pii_min_score, allow=pii_allow,
                              allow_files=pii_allow_file, key_file=key_file, workspace_root=ws.root)
        with ws.store.read() as conn:
            note_pii_reversibility(options, pii, workspace_key_id(conn))
    reports = []
    for source in sources:
        with bar_progress() as progress:
            task = progress.add_task(f"ingest {source.name}" + (" (PII detection)" if pii else ""), total=None,
                                     unit="rows")

            def show(n: int, progress: Any = progress, task: Any = task) -> None:
                progress.update(task, completed=n)

            report = run_ingest(ws, source, kind=kind, mapping=mapping, fmt=fmt, split=split, hf_split=hf_split,
                                strict=strict, max_row_bytes=max_row_bytes, pii=pii, pii_options=options,
                                on_progress=show, move_selected=move_selected, encoding=encoding,
                                columns=names)
        reports.append(report)
        _print_ingest(report)
        if report.pii:
            warn_pii_share(report.pii, pii_warn_share)
    write_json(json_out, {"sources": [r.as_dict() for r in reports],
                           "totals": {k: sum(getattr(r, k) for r in reports)
                                      for k in ("rows", "valid", "new", "moved", "duplicates", "quarantined")}})
    if sum(r.valid for r in reports) == 0:
        if sum(r.rows for r in reports) == 0:
            err_console.print("[red]No rows were read[/]: the source is empty. Nothing was added.")
        else:
            err_console.print("[red]No valid rows were read[/]: nothing was added. See the reasons above.")
        raise typer.Exit(1)


def _print_ingest(report: Any) -> None:
    table = Table(title=f"ingest {report.source} ({report.format})", show_header=False, title_justify="left")
    table.add_row("rows read", f"{report.rows:,}")
    table.add_row("new records", f"{report.new:,}  " + ", ".join(f"{k}: {v:,}" for k, v in report.by_kind.items()))
    if report.moved:
        table.add_row(f"[bold yellow]moved from pool to {report.split}[/]", f"[bold yellow]{report.moved:,}[/]" +
                      (f" ({report.moved_with_tasks:,} had tasks)" if report.moved_with_tasks else ""))
    for split, n in report.already_in.items():
        table.add_row(f"already in {split}", f"{n:,} (left there)")
    table.add_row("duplicates collapsed", f"{report.duplicates:,}")
    table.add_row("quarantined", f"{report.quarantined:,}")
    if report.pii:
        outcome = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.pii["records"].items()))
        types = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.pii["by_type"].items()))
        table.add_row(f"PII ({report.pii['action']})", f"{outcome}; {types or 'nothing found'}")
        detection = report.pii.get("detection")
        if detection:
            table.add_row("PII detection", f"{detection['texts_detected']:,} texts detected "
                          f"({detection['chars_per_second']:,.0f} characters/s), "
                          f"{detection['texts_from_cache']:,} from the cache")
        share = report.pii["changed_share"]
        table.add_row("PII changed", f"{share:.1%} of records"
                      + (f"; {report.pii['originals_stored']:,} original text(s) stored encrypted (key "
                         f"{report.pii['key_id']})" if report.pii["reversible"] else "; cannot be undone (no key)"))
    table.add_row("time", f"{report.seconds:.2f} s ({report.rows_per_second:,.0f} rows/s)")
    console.print(table)
    if report.moved:
        console.print(f"  [yellow]{report.moved:,} record(s) were in the pool and are now in the {report.split} split: "
                      "they can no longer be selected. `curate filter dedup` flags their near-copies left in the "
                      "pool.[/]", highlight=False)
    if report.label_conflicts:
        shown = "; ".join(f"line {line}: {new!r} here, {old!r} stored" for line, old, new in
                          report.label_conflict_examples[:5])
        console.print(f"  [bold yellow]{report.label_conflicts:,} moved record(s) have another label in this file "
                      f"than the one stored, which is kept[/] ({shown}); counted in the ingest.move_split audit "
                      "event. Check which is right before using this split to evaluate.", highlight=False)
    if not report.rows:
        header = " or has only its header line" if report.format in ("csv", "tsv") else ""
        console.print(f"  [yellow]{escape(report.source)} has no rows[/]: the file is empty{header}.",
                      highlight=False)
    if report.quarantined:
        _print_reasons(report)


def _print_reasons(report: Any, shown: int = 8) -> None:
    """Every quarantine reason in full (wrapped, not cut), with its count and first lines; the most frequent
    ``shown`` of them when there are more."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True, style="yellow")
    grid.add_column(overflow="fold")
    reasons = list(report.reasons.items())
    for reason, n in reasons[:shown]:
        where = report.reason_where.get(reason, "")
        more = ", ..." if n > len(report.reason_lines.get(reason, [])) else ""
        grid.add_row(f"  {n:,} x", escape(reason) + (f" [dim]({where}{more})[/]" if where else ""))
    if len(reasons) > shown:
        rest = sum(n for _, n in reasons[shown:])
        grid.add_row("", f"... and {len(reasons) - shown:,} other reasons ({rest:,} rows)")
    console.print(grid, highlight=False)
    console.print(f"  quarantine: {escape(str(report.quarantine_path))}", highlight=False, soft_wrap=True)


def _preview(sources: list[Path], *, options: Any, samples: int, warn_share: float, json_out: Path | None,
             **read: Any) -> None:
    """``--pii preview``: nothing stored, no workspace touched; sample records highlighted, counts per type."""
    from curate.ingest.sources import preview_pii

    out = []
    for source in sources:
        with err_console.status(f"PII preview of {source.name}"):
            preview = preview_pii(source, pii_options=options, samples=samples, **read)
        print_pii_preview(preview, title=f"PII redact preview of {source.name}")
        warn_pii_share(preview.summary, warn_share, preview=True)
        out.append({"source": str(source), **preview.as_dict()})
    write_json(json_out, {"preview": out})


LABELS_SHOWN = 20  # the most frequent labels in the stats table


def stats(workspace: WorkspaceOpt = None, db: DbOpt = None, json_out: JsonOpt = None) -> None:
    """Counts of the pool by kind, source, status and split."""
    ws = Workspace.open(workspace, db, must_exist=True)
    figures = ws.store.stats()
    table = Table(title=f"workspace {ws.root}", title_justify="left")
    table.add_column("group")
    table.add_column("value")
    table.add_column("records", justify="right")
    table.add_row("total", "", f"{figures['records']:,}")
    for group in ("by_kind", "by_split", "by_status", "by_source"):
        for key, n in figures[group].items():
            table.add_row(group[3:], key, f"{n:,}")
    labels = list(figures["by_label"].items())
    for key, n in labels[:LABELS_SHOWN]:
        table.add_row("label", key, f"{n:,}")
    if len(labels) > LABELS_SHOWN:
        rest = sum(n for _, n in labels[LABELS_SHOWN:])
        table.add_row("label", f"... {len(labels) - LABELS_SHOWN:,} more labels (--json has them all)", f"{rest:,}")
    console.print(table)
    console.print(f"{figures['duplicates_collapsed']:,} duplicates collapsed, {figures['quarantined']:,} rows "
                  f"quarantined, {figures['audit_events']:,} audit events")
    write_json(json_out, figures)


def register(app: typer.Typer) -> None:
    """Add ``curate ingest`` and ``curate stats`` to ``app``."""
    app.command()(ingest)
    app.command()(stats)
