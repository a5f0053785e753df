"""``curate filter dedup|pii``: keep duplicates, test-set leaks and personal data out of what experts see."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from curate.cli.options import AddressOpt, DbOpt, EngineOpt, JsonOpt, WorkspaceOpt
from curate.cli.output import console, write_json
from curate.store.workspace import Workspace

filter_app = typer.Typer(help="Filter the pool: PII and secrets, duplicates, test-set leaks.", no_args_is_help=True)


@filter_app.command("dedup")
def dedup_cmd(
    method: Annotated[str, typer.Option(help="exact (normalised hash), minhash (near-copies) or semantic "
                                             "(embedding cosine).")] = "minhash",
    keep: Annotated[str, typer.Option(help="Which record of a cluster stays: first (ingest order), longest or "
                                           "highest-score (cached scores of `curate score`; see --score-key).")]
    = "first",
    score_key: Annotated[str | None, typer.Option(help="With --keep highest-score: the scorer key (or scorer "
                                                       "name) whose cached scores decide; default: the only one.")]
    = None,
    threshold: Annotated[float, typer.Option(help="Cosine similarity for --method semantic.")] = 0.9,
    cross_set: Annotated[bool, typer.Option(help="Also flag pool records that copy a test or calibration "
                                                 "record.")] = True,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Mark duplicates (status duplicate) and copies of test/calibration records (status leak) in the pool."""
    from curate.runtime.engine import get_engine

    runner = get_engine(engine, address=address)  # ray: MinHash signatures / embeddings computed on Ray
    ws = Workspace.open(workspace, db)
    with console.status(f"dedup ({method})"):
        report = runner.filter_dedup(ws, method=method, keep=keep, score_key=score_key, threshold=threshold,
                                     cross_set=cross_set)
    table = Table("kind", "records", "removed", "duplicate clusters")
    for kind, counts in report.by_kind.items():
        table.add_row(kind, f"{counts['records']:,}", f"{counts['removed']:,}", f"{counts['duplicate_clusters']:,}")
    console.print(table)
    console.print(f"{report.removed:,} duplicate(s) marked; {report.leaks:,} leak(s) of {report.reference:,} "
                  f"test/calibration records; {report.seconds:.2f} s")
    if report.score_key:
        console.print(f"kept the highest score under {report.score_key}", highlight=False)
    write_json(json_out, vars(report))


@filter_app.command("pii")
def pii_cmd(
    action: Annotated[str, typer.Option(help="redact (typed placeholders), drop (status pii) or flag.")] = "redact",
    allow: Annotated[list[str] | None, typer.Option(help="A string never treated as PII (repeatable).")] = None,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Find personal data and secrets in the stored pool and redact, drop or flag them; summary by type.

    To keep clear values out of the database from the start, ingest with ``--pii redact`` instead.
    """
    from curate.runtime.engine import get_engine

    runner = get_engine(engine, address=address)  # ray: every stored text's PII detected on Ray
    ws = Workspace.open(workspace, db)
    with console.status(f"PII ({action})"):
        report = runner.filter_pii(ws, action=action, allow_list=tuple(allow or ()))
    table = Table("entity type", "findings")
    for entity, n in sorted(report.summary["by_type"].items(), key=lambda kv: -kv[1]):
        table.add_row(entity, f"{n:,}")
    console.print(table)
    outcome = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.summary["records"].items()))
    console.print(f"{report.records:,} records ({outcome}) in {report.seconds:.1f} s")
    write_json(json_out, vars(report))


def register(app: typer.Typer) -> None:
    """Add ``curate filter`` to ``app``."""
    app.add_typer(filter_app, name="filter")
