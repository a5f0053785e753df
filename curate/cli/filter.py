"""``curate filter``: keep duplicates and test-set leaks (and, later, PII) out of what experts see."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli.main import DbOpt, JsonOpt, WorkspaceOpt, app, console, write_json
from curate.cli.select import AddressOpt, EngineOpt
from curate.store.workspace import Workspace

filter_app = typer.Typer(help="Filter the pool: PII and secrets, duplicates, test-set leaks.", no_args_is_help=True)
app.add_typer(filter_app, name="filter")


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


def _names(value: str, option: str, count: int | None = None) -> list[str]:
    from curate.errors import InputError

    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names or (count is not None and len(names) != count):
        want = f"{count} comma-separated names" if count else "comma-separated names"
        raise InputError(f"{option} needs {want}; got {value!r}.")
    return names


@bench_app.command("dedup")
def bench_dedup_cmd(
    exact: Annotated[Path | None, typer.Option(help="Text file, one row per line (e.g. SMS Spam: label<TAB>text): "
                                                    "exact duplicates found vs a raw-text count.")] = None,
    exact_column: Annotated[int, typer.Option(help="Tab-separated column of --exact holding the text (0-based; "
                                                   "-1 = last).")] = -1,
    minhash: Annotated[Path | None, typer.Option(help="JSON array or JSONL of records: MinHash recall / precision "
                                                      "on synthetic near-copies of them.")] = None,
    minhash_fields: Annotated[str, typer.Option(help="Fields of --minhash joined (by newlines) into one text.")]
    = "instruction,input,output",
    semantic: Annotated[Path | None, typer.Option(help="JSONL sentence pairs with a 0-5 similarity score (e.g. STS): "
                                                       "MiniLM ROC AUC and a recommended cosine threshold.")] = None,
    semantic_fields: Annotated[str, typer.Option(help="Fields of --semantic: first sentence, second, score.")]
    = "sentence1,sentence2,score",
    seed: Annotated[int, typer.Option(help="Seed of the near-copy sampling.")] = 20240601,
    n_originals: Annotated[int, typer.Option(help="Originals in the MinHash evaluation split (tuning split: half "
                                                  "as many).")] = 1000,
    n_unrelated: Annotated[int, typer.Option(help="Unrelated rows in the MinHash evaluation split.")] = 2000,
    semantic_limit: Annotated[int | None, typer.Option(help="Use only the first N usable pairs of --semantic.")]
    = None,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", help="Keep MiniLM embeddings in this "
                                                   "workspace's cache (default: not cached).")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Exact, MinHash and semantic dedup measured on your data (give any of --exact, --minhash, --semantic)."""
    from curate.bench.dedup import run, summary_rows

    cache_dir = Workspace.open(workspace).cache_dir if workspace is not None else None
    with console.status("dedup benchmark") as status:
        results = run(exact=exact, minhash=minhash, semantic=semantic, exact_column=exact_column,
                      minhash_fields=_names(minhash_fields, "--minhash-fields"),
                      semantic_fields=_names(semantic_fields, "--semantic-fields", 3), seed=seed,
                      n_originals=n_originals, n_unrelated=n_unrelated, semantic_limit=semantic_limit,
                      cache_dir=cache_dir, missing="error", say=lambda line: status.update(f"dedup benchmark {line}"))
    table = Table("method", "result", "settings", "docs/s")
    for row in summary_rows(results):
        table.add_row(*row)
    console.print(table)
    write_json(json_out, results)
