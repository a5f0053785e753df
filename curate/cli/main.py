"""The ``curate`` command line: thin commands over curate's library functions.

Every command that reports figures takes ``--json PATH`` and writes them there as well. A
:class:`~curate.errors.CurateError` is printed as a one-line message (exit code 2); any other error prints a
short notice, with the traceback only when ``CURATE_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from curate import __version__
from curate.errors import CurateError
from curate.store.workspace import Workspace

app = typer.Typer(
    name="curate",
    help="Curate LLM fine-tuning and preference data with active learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
audit_app = typer.Typer(help="Check the hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

console = Console()
err_console = Console(stderr=True)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder [env CURATE_WORKSPACE; default ./curate-workspace]."),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Database URL, e.g. postgresql://user@host/curate [env CURATE_DB; default SQLite "
                              "in the workspace]."),
]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write the figures to this JSON file ('-': "
                                                          "print them to stdout).")]


def write_json(path: Path | None, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically; ``-`` prints it to stdout; None does nothing."""
    if path is None:
        return
    if str(path) == "-":
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str).decode()
                         + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str))
    os.replace(tmp, path)


def _version(value: bool) -> None:
    if value:
        console.print(f"curate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Curate LLM fine-tuning and preference data with active learning."""


@app.command()
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Files (JSONL, JSON, CSV, TSV, Parquet; .gz ok) or saved "
                                                       "Hugging Face dataset folders.")],
    kind: Annotated[str | None, typer.Option(help="Force one kind: example, preference, candidates, text.")] = None,
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="Rename a column: TARGET=SOURCE (repeatable), e.g. --map text=sentence --map label=intent."
    )] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="Force a reader: jsonl, json, csv, tsv, parquet, hf."
    )] = None,
    split: Annotated[str, typer.Option(help="pool (selectable), test (frozen test set) or calibration.")] = "pool",
    hf_split: Annotated[str | None, typer.Option(help="For a saved DatasetDict: read only this split.")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on the first bad row and store nothing.")] = False,
    max_row_bytes: Annotated[int, typer.Option(help="Quarantine lines longer than this.")] = 4 * 1024 * 1024,
    pii: Annotated[str | None, typer.Option(help="redact, drop or flag personal data and secrets before anything "
                                                 "is stored (needs the pii extra; ~140 records/s).")] = None,
    pii_allow: Annotated[list[str] | None, typer.Option(help="A string never treated as PII (repeatable).")]
    = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Read sources into the pool; unreadable rows go to the workspace quarantine with their line numbers."""
    from curate.ingest.formats import parse_mapping
    from curate.ingest.sources import ingest as run_ingest

    mapping = parse_mapping(map_)
    ws = Workspace.open(workspace, db)
    reports = []
    for source in sources:
        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TextColumn("{task.completed:,} rows"),
                      TimeElapsedColumn(), console=err_console, transient=True) as progress:
            task = progress.add_task(f"ingest {source.name}", total=None)
            def show(n: int, progress: Progress = progress, task: TaskID = task) -> None:
                progress.update(task, completed=n)

            report = run_ingest(ws, source, kind=kind, mapping=mapping, fmt=fmt, split=split, hf_split=hf_split,
                                strict=strict, max_row_bytes=max_row_bytes, pii=pii,
                                pii_allow=tuple(pii_allow or ()), on_progress=show)
        reports.append(report)
        _print_ingest(report)
    write_json(json_out, {"sources": [r.as_dict() for r in reports],
                           "totals": {k: sum(getattr(r, k) for r in reports)
                                      for k in ("rows", "valid", "new", "duplicates", "quarantined")}})
    if sum(r.valid for r in reports) == 0:
        err_console.print("[red]No valid rows were read[/]: nothing was added. See the quarantine file(s) above.")
        raise typer.Exit(1)


def _print_ingest(report: Any) -> None:
    table = Table(title=f"ingest {report.source} ({report.format})", show_header=False, title_justify="left")
    table.add_row("rows read", f"{report.rows:,}")
    table.add_row("new records", f"{report.new:,}  " + ", ".join(f"{k}: {v:,}" for k, v in report.by_kind.items()))
    table.add_row("duplicates collapsed", f"{report.duplicates:,}")
    table.add_row("quarantined", f"{report.quarantined:,}")
    if report.pii:
        outcome = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.pii["records"].items()))
        types = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.pii["by_type"].items()))
        table.add_row(f"PII ({report.pii['action']})", f"{outcome}; {types or 'nothing found'}")
    table.add_row("time", f"{report.seconds:.2f} s ({report.rows_per_second:,.0f} rows/s)")
    console.print(table)
    if report.quarantined:
        for reason, n in list(report.reasons.items())[:5]:
            console.print(f"  [yellow]{n:,} x[/] {reason}")
        where = ", ".join(f"line {line} (row {row})" if line != row else f"line {line}"
                          for line, row in zip(report.first_bad_lines[:8], report.first_bad_rows, strict=False))
        console.print(f"  first bad rows: {where}\n  quarantine: {report.quarantine_path}")


@app.command()
def stats(workspace: WorkspaceOpt = None, db: DbOpt = None, json_out: JsonOpt = None) -> None:
    """Counts of the pool by kind, source, status and split."""
    ws = Workspace.open(workspace, db)
    figures = ws.store.stats()
    table = Table(title=f"workspace {ws.root}", title_justify="left")
    table.add_column("group")
    table.add_column("value")
    table.add_column("records", justify="right")
    table.add_row("total", "", f"{figures['records']:,}")
    for group in ("by_kind", "by_split", "by_status", "by_source"):
        for key, n in figures[group].items():
            table.add_row(group[3:], key, f"{n:,}")
    console.print(table)
    console.print(f"{figures['duplicates_collapsed']:,} duplicates collapsed, {figures['quarantined']:,} rows "
                  f"quarantined, {figures['audit_events']:,} audit events")
    write_json(json_out, figures)


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[str | None, typer.Option(help="A head hash recorded earlier that must still be in "
                                                         "the log.")] = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Recompute the audit chain (name the first event edited, deleted, inserted or reordered) and check every
    annotation against the event that recorded it (edited, deleted or forged rows)."""
    from curate.store.audit import verify

    ws = Workspace.open(workspace, db)
    report = verify(ws.store, expect_head=expect_head)
    write_json(json_out, report.as_dict())
    if report.ok:
        console.print(f"[green]audit log intact[/]: {report.n_events:,} events, head #{report.head_seq} "
                      f"{report.head_hash}; every annotation matches its event")
        return
    if report.finding is not None:
        err_console.print(f"[red]audit log broken[/] ({report.finding.problem}): "
                          f"{escape(report.finding.message)}. {report.broken_links} broken link(s); edited events: "
                          f"{report.edited_events[:10]}")
    else:
        err_console.print(f"audit chain intact: {report.n_events:,} events, head #{report.head_seq}")
    problems = report.annotation_problems
    if problems:
        err_console.print(f"[red]annotations do not match the audit log[/]: {len(problems)} problem(s)")
        for p in problems[:20]:
            err_console.print(f"  ({p.problem}) {escape(p.message)}")
        if len(problems) > 20:
            err_console.print(f"  ... and {len(problems) - 20} more (--json PATH lists them all)")
    raise typer.Exit(1)


@audit_app.command("log")
def audit_log(
    limit: Annotated[int, typer.Option(help="Show the last N events.")] = 20,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
) -> None:
    """Show the latest audit events."""
    from sqlalchemy import select

    from curate.store.schema import AuditEvent

    ws = Workspace.open(workspace, db)
    with ws.store.read() as conn:
        events = conn.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)).all()
    table = Table("seq", "time", "actor", "action", "payload", "hash")
    for ev in reversed(events):
        table.add_row(str(ev.seq), ev.ts[:19], ev.actor, ev.action, ev.payload[:80], ev.hash[:12])
    console.print(table)


@app.command()
def models(
    load: Annotated[bool, typer.Option(help="Load each model and run it once (use --no-load to only list).")] = True,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Show the default models, where they load from, and (by default) check that they load offline."""
    from curate.runtime import models as m

    ws = Workspace.open(workspace, db)
    infos = m.describe(ws.cache_dir)
    checks: dict[str, Any] = {}
    if load:
        with console.status("loading the causal LM (first time: converting the GGUF, ~30 s)"):
            started = time.perf_counter()
            model, tokenizer = m.load_lm(cache_dir=ws.cache_dir)
            ppl = m.completion_perplexity(model, tokenizer, "The capital of France is", " Paris.")
            checks["lm"] = {"parameters": sum(p.numel() for p in model.parameters()),
                            "perplexity_check": round(ppl, 3), "seconds": round(time.perf_counter() - started, 2)}
        with console.status("loading the embedder"):
            started = time.perf_counter()
            embedder = m.load_embedder()
            vector = embedder.encode(["curate checks its embedder"])
            checks["embedder"] = {"dimensions": int(vector.shape[1]),
                                  "seconds": round(time.perf_counter() - started, 2)}
        infos = m.describe(ws.cache_dir)
    table = Table("role", "name", "from", "loads from", "status")
    for info in infos:
        table.add_row(info.role, info.name, info.origin, info.load_path,
                      ("[green]ok[/] " if info.ready else "[red]missing[/] ") + info.note)
    console.print(table)
    if checks:
        console.print(f"causal LM: {checks['lm']['parameters']:,} parameters, perplexity of ' Paris.' after "
                      f"'The capital of France is' = {checks['lm']['perplexity_check']}, loaded in "
                      f"{checks['lm']['seconds']} s")
        console.print(f"embedder: {checks['embedder']['dimensions']} dimensions, loaded in "
                      f"{checks['embedder']['seconds']} s")
    write_json(json_out, {"models": [vars(i) for i in infos], "checks": checks})


def main() -> None:
    """Console entry point: run the app, turning errors into messages instead of tracebacks."""
    try:
        app()
    except CurateError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing half-written was committed.")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback reaches a user
        if os.environ.get("CURATE_DEBUG"):
            raise
        err_console.print(f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
                          "This is a bug in curate. Run again with CURATE_DEBUG=1 to see the traceback, and report it.")
        sys.exit(70)


import curate.cli.annotate  # noqa: E402, F401  (adds `users`, `schema`, `assign`, `round`, `agreement`, `app`)
import curate.cli.bench  # noqa: E402, F401  (adds `bench label-efficiency`)
import curate.cli.export  # noqa: E402, F401  (adds `export`)
import curate.cli.filter  # noqa: E402, F401  (adds `filter`; it imports this module)
import curate.cli.loop  # noqa: E402, F401  (adds `loop` and `stream`)
import curate.cli.recipes  # noqa: E402, F401  (adds `recipes` and `run`)
import curate.cli.select  # noqa: E402, F401  (adds `score`, `select` and `seed`; it imports this module)
import curate.cli.train  # noqa: E402, F401  (adds `train`)

if __name__ == "__main__":
    main()
