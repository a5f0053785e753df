"""``curate filter``: keep duplicates and test-set leaks (and, later, PII) out of what experts see."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli import DbOpt, JsonOpt, WorkspaceOpt, app, console, write_json
from curate.workspace import Workspace

filter_app = typer.Typer(help="Filter the pool: PII and secrets, duplicates, test-set leaks.", no_args_is_help=True)
app.add_typer(filter_app, name="filter")


@filter_app.command("dedup")
def dedup_cmd(
    method: Annotated[str, typer.Option(help="exact (normalised hash), minhash (near-copies) or semantic "
                                             "(embedding cosine).")] = "minhash",
    keep: Annotated[str, typer.Option(help="Which record of a cluster stays: first (ingest order) or longest.")]
    = "first",
    threshold: Annotated[float, typer.Option(help="Cosine similarity for --method semantic.")] = 0.9,
    cross_set: Annotated[bool, typer.Option(help="Also flag pool records that copy a test or calibration "
                                                 "record.")] = True,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Mark duplicates (status duplicate) and copies of test/calibration records (status leak) in the pool."""
    from curate.filtering import run_dedup

    ws = Workspace.open(workspace, db)
    with console.status(f"dedup ({method})"):
        report = run_dedup(ws, method=method, keep=keep, threshold=threshold, cross_set=cross_set)
    table = Table("kind", "records", "removed", "duplicate clusters")
    for kind, counts in report.by_kind.items():
        table.add_row(kind, f"{counts['records']:,}", f"{counts['removed']:,}", f"{counts['duplicate_clusters']:,}")
    console.print(table)
    console.print(f"{report.removed:,} duplicate(s) marked; {report.leaks:,} leak(s) of {report.reference:,} "
                  f"test/calibration records; {report.seconds:.2f} s")
    write_json(json_out, vars(report))


@filter_app.command("pii")
def pii_cmd(
    action: Annotated[str, typer.Option(help="redact (typed placeholders), drop (status pii) or flag.")] = "redact",
    allow: Annotated[list[str] | None, typer.Option(help="A string never treated as PII (repeatable).")] = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Find personal data and secrets in the stored pool and redact, drop or flag them; summary by type.

    To keep clear values out of the database from the start, ingest with ``--pii redact`` instead.
    """
    from curate.filtering import run_pii

    ws = Workspace.open(workspace, db)
    with console.status(f"PII ({action})"):
        report = run_pii(ws, action=action, allow_list=tuple(allow or ()))
    table = Table("entity type", "findings")
    for entity, n in sorted(report.summary["by_type"].items(), key=lambda kv: -kv[1]):
        table.add_row(entity, f"{n:,}")
    console.print(table)
    outcome = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.summary["records"].items()))
    console.print(f"{report.records:,} records ({outcome}) in {report.seconds:.1f} s")
    write_json(json_out, vars(report))


bench_app = typer.Typer(help="Benchmarks on your own data.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("pii")
def bench_pii_cmd(
    data: Annotated[Path, typer.Option(help="Labelled PII data (Presidio-research JSON: full_text + spans).")],
    fmt: Annotated[str, typer.Option("--format", help="presidio")] = "presidio",
    limit: Annotated[int | None, typer.Option(help="Use only the first N records.")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Precision, recall and F1 per entity type of curate's PII detection vs stock Presidio, side by side."""
    from curate.bench.pii import run, table_rows

    with console.status("PII benchmark"):
        results = run(data, fmt=fmt, limit=limit)
    table = Table("type", "curate P / R / F1", "stock Presidio P / R / F1", "gold")
    for entity, cur, base, gold in table_rows(results):
        table.add_row(entity, cur, base, str(gold))
    console.print(table)
    for name in ("curate", "baseline_presidio_stock"):
        m = results[name]["micro"]
        console.print(f"micro {name}: P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f}, "
                      f"{results[name]['records_per_s']} records/s")
    write_json(json_out, results)
