"""``curate audit verify`` and ``curate audit log``: check the hash-chained audit log and read its latest events."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from curate.cli.options import DbOpt, JsonOpt, WorkspaceOpt
from curate.cli.output import console, err_console, write_json
from curate.store.workspace import Workspace

audit_app = typer.Typer(help="Check the hash-chained audit log.", no_args_is_help=True)


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

    ws = Workspace.open(workspace, db, must_exist=True)
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
    from curate.store.audit import recent_events

    events = recent_events(Workspace.open(workspace, db, must_exist=True).store, limit)
    table = Table("seq", "time", "actor", "action", "payload", "hash")
    for ev in events:
        table.add_row(str(ev.seq), ev.ts[:19], ev.actor, ev.action, ev.payload[:80], ev.hash[:12])
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``curate audit`` to ``app``."""
    app.add_typer(audit_app, name="audit")
