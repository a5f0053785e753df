"""``curate filter dedup|pii``: keep duplicates, test-set leaks and personal data out of what experts see."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from curate.cli.options import (
    PII_ALLOW_FILE_HELP,
    PII_ALLOW_HELP,
    PII_MIN_SCORE_HELP,
    PII_TYPES_HELP,
    AddressOpt,
    DbOpt,
    EngineOpt,
    JsonOpt,
    KeyFileOpt,
    WorkspaceOpt,
)
from curate.cli.output import actor, console, write_json
from curate.cli.progress import bar_progress
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
    pair_threshold: Annotated[float | None, typer.Option(help="Preference/candidates records: the similarity at "
                                                              "and above which two prompts or two responses are "
                                                              "near-copies (MinHash Jaccard, default 0.8; with "
                                                              "--method semantic cosine, default 0.97). A pair is a "
                                                              "duplicate only if its prompt and every response "
                                                              "are.")] = None,
    cross_set: Annotated[bool, typer.Option(help="Also flag pool records that copy a test or calibration "
                                                 "record.")] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Change nothing: print the clusters that would be "
                                                            "removed (all of them in a report file).")] = False,
    undo: Annotated[bool, typer.Option("--undo", help="Undo the latest dedup run that removed records (or --run "
                                                      "ID): its records get their previous status back. Repeat to "
                                                      "step further back.")] = False,
    run: Annotated[str | None, typer.Option(help="With --undo: the run to undo (its id is printed by the run and "
                                                 "names its report file).")] = None,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Mark duplicates (status duplicate) and copies of test/calibration records (status leak) in the pool.

    Preference and candidates records are duplicates only when they make the same comparison: same prompt and
    the same responses as a set (near-copies allowed). Every run lists its removals in a report file under the
    workspace's reports/ folder and can be undone with --undo.
    """
    from curate.errors import InputError
    from curate.runtime.engine import get_engine

    if run is not None and not undo:
        raise InputError("--run names the run to undo; use it with --undo.")
    ws = Workspace.open(workspace, db, must_exist=True)
    if undo:
        if dry_run:
            raise InputError("--undo cannot be combined with --dry-run; the report file of the run (named by "
                             "--run) lists what --undo would restore.")
        _undo(ws, run, json_out)
        return
    runner = get_engine(engine, address=address)  # ray: MinHash signatures / embeddings computed on Ray
    with bar_progress() as progress:
        progress.add_task(f"dedup ({method})", total=None)  # no count: the elapsed time shows it is alive
        report = runner.filter_dedup(ws, method=method, keep=keep, score_key=score_key, threshold=threshold,
                                     pair_threshold=pair_threshold, cross_set=cross_set, dry_run=dry_run)
    table = Table("kind", "records", "removed" if not dry_run else "would remove", "duplicate clusters")
    for kind, counts in report.by_kind.items():
        table.add_row(kind, f"{counts['records']:,}", f"{counts['removed']:,}", f"{counts['duplicate_clusters']:,}")
    console.print(table)
    if dry_run:
        _print_clusters(report.clusters)
        console.print(f"[bold]dry run[/]: nothing changed. {report.removed:,} duplicate(s) and {report.leaks:,} "
                      f"leak(s) of {report.reference:,} test/calibration records would be marked; {report.seconds:.2f} "
                      f"s\nevery cluster: {report.report_path}", highlight=False)
    else:
        console.print(f"{report.removed:,} duplicate(s) marked; {report.leaks:,} leak(s) of {report.reference:,} "
                      f"test/calibration records; {report.seconds:.2f} s\nrun {report.run}; every removal is "
                      f"listed in {report.report_path}; undo with `curate filter dedup --undo`", highlight=False)
    if report.score_key:
        console.print(f"kept the highest score under {report.score_key}", highlight=False)
    write_json(json_out, report.as_dict())


SHOWN_CLUSTERS = 20
ONE_LINE: dict[str, Any] = {"highlight": False, "no_wrap": True, "overflow": "ellipsis"}


def _print_clusters(clusters: list[dict[str, Any]]) -> None:
    """The first :data:`SHOWN_CLUSTERS` clusters: the record kept (+) and the records removed (-), one line each."""
    for cluster in clusters[:SHOWN_CLUSTERS]:
        what = "copies of a test/calibration record" if cluster["status"] == "leak" else "duplicates"
        console.print(f"[bold]{cluster['kind']}[/] {what}:", highlight=False)
        kept = cluster["kept"]
        console.print(f"  [green]+ {kept['id'][:8]}[/] {escape(kept['preview'])}", **ONE_LINE)
        for gone in cluster["removed"]:
            console.print(f"  [red]- {gone['id'][:8]}[/] {escape(gone['preview'])}", **ONE_LINE)
    if len(clusters) > SHOWN_CLUSTERS:
        console.print(f"... and {len(clusters) - SHOWN_CLUSTERS:,} more cluster(s) in the report file")


def _undo(ws: Workspace, run: str | None, json_out: Path | None) -> None:
    from curate.filters.dedup_runs import dedup_runs, undo_dedup

    report = undo_dedup(ws, run)
    console.print(f"undid dedup run {report.run} ({report.method}): {report.restored:,} record(s) got their status "
                  "back (" + (", ".join(f"{s}: {n:,}" for s, n in sorted(report.by_status.items())) or "none") + ")",
                  highlight=False)
    if report.skipped:
        console.print(f"[yellow]{report.skipped:,} record(s) left as they are[/]: their status changed after the run "
                      f"(listed in {report.report_path})", highlight=False)
    left = [r for r in dedup_runs(ws) if not r.undone]
    if left:
        console.print(f"older run(s) still in effect: {', '.join(r.run for r in left[:3])}; `--undo` again undoes "
                      f"{left[0].run}", highlight=False)
    write_json(json_out, vars(report))


@filter_app.command("pii")
def pii_cmd(
    action: Annotated[str, typer.Option(help="redact (typed placeholders), drop (status pii) or flag.")] = "redact",
    types: Annotated[list[str] | None, typer.Option("--types", "--pii-types", help=PII_TYPES_HELP)] = None,
    min_score: Annotated[list[str] | None, typer.Option("--min-score", "--pii-min-score", help=PII_MIN_SCORE_HELP)]
    = None,
    allow: Annotated[list[str] | None, typer.Option("--allow", "--pii-allow", help=PII_ALLOW_HELP)] = None,
    allow_file: Annotated[list[Path] | None, typer.Option("--allow-file", "--pii-allow-file",
                                                          help=PII_ALLOW_FILE_HELP)] = None,
    key_file: KeyFileOpt = None,
    revise: Annotated[bool, typer.Option(help="Start again from the encrypted originals (needs --key-file): values "
                                              "the new settings no longer report are restored, new ones redacted; "
                                              "every split and status.")] = False,
    preview: Annotated[int | None, typer.Option(help="Change nothing: show N sample records with their redactions "
                                                     "highlighted, and the counts per type (of the first 1,000 "
                                                     "records).", min=0)] = None,
    warn_share: Annotated[float, typer.Option("--warn-share", help="Warn loudly when more than this share of the "
                                                                   "records is changed.")] = 0.2,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Find personal data and secrets in the stored pool and redact, drop or flag them; summary by type.

    To keep clear values out of the database from the start, ingest with ``--pii redact`` instead. With
    --key-file the originals of what is redacted are kept encrypted, so a later --revise can undo it.
    """
    from dataclasses import replace

    from curate.cli.options import pii_options
    from curate.cli.output import note_pii_reversibility, print_pii_preview, warn_pii_share
    from curate.errors import InputError
    from curate.filters.pii_vault import workspace_key_id
    from curate.runtime.engine import get_engine

    ws = Workspace.open(workspace, db, must_exist=True)
    options = pii_options(types=types, min_scores=min_score, allow=allow, allow_files=allow_file,
                          key_file=key_file, workspace_root=ws.root)
    if preview is not None:
        from curate.filters.pii_preview import preview_workspace

        with console.status("PII preview"):
            shown = preview_workspace(ws, action=action, options=options, revise=revise, samples=preview)
        print_pii_preview(shown, title=f"PII {action} preview" + (" (revised from the originals)" if revise else ""))
        warn_pii_share(shown.summary, warn_share, preview=True)
        write_json(json_out, shown.as_dict())
        return
    if revise and options.key is None:
        raise InputError("--revise decrypts the stored originals: pass the workspace's key with --key-file (or set "
                         "CURATE_PII_KEY_FILE).")
    with ws.store.read() as conn:
        note_pii_reversibility(options, action, workspace_key_id(conn))
    runner = get_engine(engine, address=address)  # ray: every stored text's PII detected on Ray
    with bar_progress() as progress:
        task = progress.add_task(f"PII ({action}{', revise' if revise else ''}) detection", total=None)
        report = runner.filter_pii(ws, action=action, allow_list=options.allow_list,
                                   options=replace(options, allow_list=()), revise=revise, actor=actor(),
                                   on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    table = Table("entity type", "records", "findings")
    for entity, n in sorted(report.summary["by_type"].items(), key=lambda kv: -kv[1]):
        table.add_row(entity, f"{report.summary['records_by_type'].get(entity, 0):,}", f"{n:,}")
    console.print(table)
    outcome = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.summary["records"].items()))
    console.print(f"{report.records:,} records ({outcome}); {report.summary['changed_share']:.1%} changed by the "
                  f"policy, {report.updated:,} updated in the store"
                  + (f"; {report.originals_stored:,} original text(s) stored encrypted" if options.key else "")
                  + f"; {report.seconds:.1f} s", highlight=False)
    warn_pii_share(report.summary, warn_share)
    write_json(json_out, vars(report))


def register(app: typer.Typer) -> None:
    """Add ``curate filter`` to ``app``."""
    app.add_typer(filter_app, name="filter")
