"""``curate export``: final annotations as TRL datasets, with the held-out splits, provenance and a card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curate.cli.options import DbOpt, JsonOpt, PiiAllowFileOpt, PiiAllowOpt, WorkspaceOpt, read_allow
from curate.cli.output import actor, console, write_json
from curate.store.workspace import Workspace


def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="sft, dpo, reward, kto or classification.")],
    out: Annotated[Path, typer.Option(help="Output folder (written atomically).")],
    to: Annotated[str, typer.Option(help="hf (datasets.load_from_disk), jsonl or parquet.")] = "hf",
    ties: Annotated[str, typer.Option(help="Rank ties: drop, or keep (in the data's own order).")] = "drop",
    pairs: Annotated[str, typer.Option(help="An ordering of candidates becomes all pairs or best-worst.")] = "all",
    schema: Annotated[str | None, typer.Option(help="Only this label schema: NAME or NAME@VERSION.")] = None,
    license_: Annotated[str, typer.Option("--license", help="Licence named in the dataset card.")] = "unknown",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out folder.")] = False,
    pii_rewrites: Annotated[str, typer.Option(
        "--pii-rewrites", help="When the workspace has a PII policy: redact the PII found in what annotators wrote "
        "(rewrites, reviewer decisions) in the exported files, or keep it as written (counted either way; the "
        "stored answers never change).")] = "redact",
    pii_allow: PiiAllowOpt = None,
    pii_allow_file: PiiAllowFileOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Export final annotations in TRL's columns; test and calibration records go to their own splits."""
    from curate.export.rows import RowOptions
    from curate.export.writer import export

    ws = Workspace.open(workspace, db, must_exist=True)
    with console.status(f"exporting {fmt}"):
        report = export(ws, fmt, out, to=to, options=RowOptions(ties=ties, pairs=pairs), schema=schema,
                        license=license_, actor=actor(), overwrite=overwrite, rewrite_pii=pii_rewrites,
                        pii_allow=read_allow(pii_allow, pii_allow_file))
    table = Table("split", "rows")
    for split, n in report.counts.items():
        table.add_row(split, f"{n:,}")
    console.print(table)
    dropped = ", ".join(f"{k} {v}" for k, v in report.dropped.items() if v) or "none"
    console.print(f"{fmt} export in {out} ({to}); dropped: {dropped}; {report.content_hash}")
    if report.made_conversational:
        console.print(f"{report.made_conversational:,} plain-text row(s) written as one-message chats, because other "
                      "rows are chats: one format for every split, as TRL needs (the chats keep their roles and "
                      "system prompts)", highlight=False)
    _print_rewrite_pii(report.rewrite_pii)
    write_json(json_out, vars(report))


def _print_rewrite_pii(found: dict[str, Any]) -> None:
    """One line on the PII in annotator texts, and the option that changes what is done with it."""
    line = f"PII in annotator texts: {found['summary']}"
    if not found["checked"]:
        console.print(f"{line}; `curate filter pii` applies one", highlight=False)
    elif found["mode"] == "keep" and found["texts_with_pii"]:
        console.print(f"[bold red]WARNING:[/] {line}. --pii-rewrites redact (the default) replaces them with "
                      "placeholders", highlight=False)
    elif found["mode"] == "keep":
        console.print(f"{line} (--pii-rewrites keep: PII found would be exported as written)", highlight=False)
    else:
        console.print(f"{line} (PII found is redacted; --pii-rewrites keep exports it as written)", highlight=False)
    policy = found.get("policy") or {}
    if found["texts_with_pii"] and policy.get("allow_list_size") and not policy.get("allow_list_given"):
        console.print(f"The PII policy allowed {policy['allow_list_size']:,} string(s), which the workspace does not "
                      "keep: give the same --pii-allow / --pii-allow-file to export to leave them in the annotators' "
                      "texts.", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``curate export`` to ``app``."""
    app.command("export")(export_cmd)
