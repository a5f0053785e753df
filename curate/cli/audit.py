"""``curate audit verify`` and ``curate audit log``: check the hash-chained audit log and read its latest events."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

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
    limit: Annotated[int, typer.Option(help="Show the last N matching events (0: all of them).", min=0)] = 20,
    action: Annotated[list[str] | None, typer.Option(
        "--action", help="Only events of this action (repeatable); a prefix before a dot counts, so 'filter' "
                         "shows filter.dedup and filter.pii.")] = None,
    actor: Annotated[list[str] | None, typer.Option(
        "--actor", help="Only events recorded for this person or account (repeatable).")] = None,
    full: Annotated[bool, typer.Option("--full/--short", help="Show whole payloads, wrapped (--short: one line "
                                                               "each, cut at 80 characters).")] = True,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Show the latest audit events: who did what, when, with which model version, and the ids and counts of it."""
    from curate.store.audit import recent_events

    store = Workspace.open(workspace, db, must_exist=True).store
    events = recent_events(store, limit, actions=action or [], actors=actor or [])
    write_json(json_out, {"events": [ev.as_dict() for ev in events],
                          "filters": {"action": action or [], "actor": actor or [], "limit": limit}})
    if json_out is not None and str(json_out) == "-":
        return  # stdout holds the JSON
    if not events:
        console.print("no audit events" + (" match the filters" if action or actor else " yet"))
        return
    if full:
        _print_blocks(events)
        return
    table = Table(*(Column(name, no_wrap=True) for name in ("seq", "time (UTC)", "actor", "action")),
                  Column("payload", overflow="ellipsis"), Column("hash", no_wrap=True))
    for ev in events:
        shown = payload_text(ev.payload)
        table.add_row(str(ev.seq), ev.ts[:19].replace("T", " "), escape(ev.actor), escape(ev.action),
                      Text(shown if len(shown) <= 80 else shown[:79] + "…", no_wrap=True, overflow="ellipsis"),
                      ev.hash[:12])
    console.print(table)


def _print_blocks(events: list[Any]) -> None:
    """Each event as a heading line (seq, time, actor, action, model version, hash) over its whole payload, one
    ``key: value`` line per field, long values wrapped under themselves."""
    for ev in events:
        version = f"  model {escape(ev.model_version)}" if ev.model_version else ""
        console.print(f"[bold]#{ev.seq}[/]  {ev.ts[:19].replace('T', ' ')} UTC  [cyan]{escape(ev.actor)}[/]  "
                      f"[bold]{escape(ev.action)}[/]{version}  [dim]{ev.hash[:12]}[/]", highlight=False)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=3)
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(ratio=1, overflow="fold")
        fields = sorted(ev.payload.items()) if isinstance(ev.payload, dict) else [("payload", ev.payload)]
        for key, value in fields:
            grid.add_row("", Text(f"{key}:"), Text(payload_text(value)))
        console.print(grid)


def payload_text(payload: Any) -> str:
    """A payload (or one of its values) as one line of JSON with spaces after separators, so it can wrap."""
    if isinstance(payload, str):
        return payload
    return json.dumps(payload, ensure_ascii=False, separators=(", ", ": "), sort_keys=True)


def register(app: typer.Typer) -> None:
    """Add ``curate audit`` to ``app``."""
    app.add_typer(audit_app, name="audit")
