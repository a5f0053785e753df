"""``curate users``, ``schema``, ``assign``, ``round`` and ``agreement``: people and their queues."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli.options import DbOpt, JsonOpt, WorkspaceOpt
from curate.cli.output import actor, console, write_json
from curate.errors import InputError
from curate.store.workspace import Workspace

users_app = typer.Typer(help="Accounts for the annotation app (annotator, reviewer, admin).", no_args_is_help=True)
schema_app = typer.Typer(help="Label schemas: classes and guidelines, versioned.", no_args_is_help=True)
round_app = typer.Typer(help="Round settings.", no_args_is_help=True)

PASSWORD_ENV = "CURATE_PASSWORD"


def _read_password(name: str, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    elif sys.stdin.isatty():
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    else:
        raise InputError(f"no password for {name}: pass --password-stdin and pipe it in, or set {PASSWORD_ENV}")
    return password


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="annotator, reviewer or admin.")] = "annotator",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    replace: Annotated[bool, typer.Option(help="Reset the role and password of an existing user.")] = False,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
) -> None:
    """Add an account (the password is prompted for, read from stdin, or taken from $CURATE_PASSWORD)."""
    from curate.store.accounts import add_user, check_role

    check_role(role)
    password = _read_password(name, password_stdin)
    account = add_user(Workspace.open(workspace, db).store, name, role, password, actor=actor(), replace=replace)
    console.print(f"user {account.name} ({account.role}) {'updated' if replace else 'added'}")


@users_app.command("list")
def users_list(workspace: WorkspaceOpt = None, db: DbOpt = None, json_out: JsonOpt = None) -> None:
    """List accounts and roles."""
    from curate.store.accounts import list_users

    accounts = list_users(Workspace.open(workspace, db).store)
    table = Table("name", "role", "active")
    for a in accounts:
        table.add_row(a.name, a.role, "yes" if a.active else "no")
    console.print(table)
    write_json(json_out, [{"name": a.name, "role": a.role, "active": a.active} for a in accounts])


@users_app.command("disable")
def users_disable(name: str, workspace: WorkspaceOpt = None, db: DbOpt = None) -> None:
    """Disable an account (its annotations stay); the tasks it has not answered leave its queue."""
    from curate.annotate.queues import release_queue
    from curate.store.accounts import deactivate_user

    store = Workspace.open(workspace, db).store
    deactivate_user(store, name, actor=actor())
    released = release_queue(store, name, actor=actor())
    console.print(f"user {name} disabled")
    if released["released"]:
        console.print(f"{released['released']} unanswered task(s) left {name}'s queue: {released['now_final']} shared "
                      f"task(s) are now final on the others' answers; {released['unassigned']} have no annotator"
                      + (f": give them out with curate assign --round N --annotators NAME,... (rounds "
                         f"{', '.join(map(str, released['rounds']))})" if released["unassigned"] else ""),
                      highlight=False)


@users_app.command("unlock")
def users_unlock(name: str, workspace: WorkspaceOpt = None, db: DbOpt = None) -> None:
    """Lift a login lockout (after repeated failed logins) and clear the count of failures, at once."""
    from curate.store.login_guard import unlock

    before = unlock(Workspace.open(workspace, db).store, name, actor=actor())
    state = "was locked" if before.locked() else "was not locked"
    console.print(f"user {name} unlocked ({state}; {before.failures} failed login(s) cleared)")


@schema_app.command("add")
def schema_add(
    name: Annotated[str, typer.Argument(help="Schema name, e.g. intent.")],
    classes: Annotated[str, typer.Option(help="Comma-separated classes: a label schema, shown on label tasks. "
                                              "Leave empty for guidelines of rank and rewrite tasks.")] = "",
    guidelines: Annotated[str, typer.Option(help="Guidelines text, or @FILE to read them from a file.")] = "",
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
) -> None:
    """Store a new version of a label schema (older annotations keep their version)."""
    from curate.rounds.assignment import add_label_schema

    text = guidelines
    if guidelines.startswith("@"):
        path = Path(guidelines[1:])
        if not path.is_file():
            raise InputError(f"--guidelines {guidelines}: no such file {path}")
        text = path.read_text(encoding="utf-8")
    parts = [c for c in (x.strip() for x in classes.split(",")) if c]
    _, version = add_label_schema(Workspace.open(workspace, db).store, name, parts, text, actor=actor())
    console.print(f"label schema {name} v{version}: "
                  + (", ".join(parts) if parts else "(no classes: guidelines for rank and rewrite tasks)"))


@schema_app.command("migrate")
def schema_migrate(
    name: Annotated[str, typer.Argument(help="Schema whose older versions' annotations move to the latest.")],
    map_: Annotated[list[str] | None, typer.Option("--map", help="OLD=NEW class mapping (repeatable); classes "
                                                                  "with the same name map to themselves.")] = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Carry annotations to the latest schema version; answers that do not map go back to be relabelled."""
    from curate.annotate.relabel import migrate_schema

    mapping = {}
    for item in map_ or []:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InputError(f"--map {item!r}: expected OLD=NEW")
        mapping[old.strip()] = new.strip()
    report = migrate_schema(Workspace.open(workspace, db).store, name, mapping, actor=actor())
    console.print(f"{name} -> v{report['to_version']}: {report['migrated']} answer(s) carried over, "
                  f"{report['relabel']} sent back to be relabelled, over {report['tasks']} task(s)")
    write_json(json_out, report)


def assign_cmd(
    annotators: Annotated[str, typer.Option(help="Comma-separated account names.")],
    round_number: Annotated[int | None, typer.Option("--round", help="Round number (default: the latest).")] = None,
    overlap: Annotated[float, typer.Option(help="Fraction of tasks given to several annotators (agreement).")]
    = 0.0,
    copies: Annotated[int, typer.Option(help="Annotators per overlapping task.")] = 2,
    schema: Annotated[list[str] | None, typer.Option(
        help="Schema (latest version) for the round's tasks of its type, repeatable: NAME (one with classes goes "
             "to label tasks, one without classes to rank and rewrite tasks) or TYPE=NAME (TYPE: rank, rewrite, "
             "label), e.g. --schema topic --schema rank=rank-guide --schema rewrite=edit-guide.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed for which tasks overlap.")] = 0,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Fill the annotators' queues with a round's unassigned tasks, in selection order."""
    from curate.rounds.assignment import assign_round

    store = Workspace.open(workspace, db, must_exist=True).store
    names = [a.strip() for a in annotators.split(",") if a.strip()]
    report = assign_round(store, names, round_number=round_number, overlap=overlap, copies=copies, schema=schema,
                          seed=seed, actor=actor())
    console.print(f"round {report['round']}: {report['tasks']} task(s), {report['assignments']} assignment(s), "
                  f"{report['overlapping_tasks']} overlapping; per annotator: "
                  + ", ".join(f"{k} {v}" for k, v in report["per_annotator"].items()))
    if report["schemas"]:
        console.print("schemas: " + ", ".join(f"{t} tasks {n}" for t, n in report["schemas"].items())
                      + f"; {report['schema_changed']} task(s) now use it")
    if report["schema_kept_answered"]:
        console.print(f"{report['schema_kept_answered']} answered task(s) keep the schema version they were answered "
                      "under; move their answers with curate schema migrate NAME --map OLD=NEW", style="yellow",
                      markup=False)
    for name in report["unused_schemas"]:
        console.print(f"schema {name} fits no task of round {report['round']}: a schema with classes is for "
                      "label tasks, one without classes for rank and rewrite tasks", style="yellow", markup=False)
    write_json(json_out, report)


@round_app.command("suggestions")
def round_suggestions(
    hide: Annotated[bool, typer.Option("--hide/--show", help="Hide the model's suggestions (avoid anchoring).")],
    round_number: Annotated[int | None, typer.Option("--round", help="Round number (default: the latest).")] = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
) -> None:
    """Hide or show the model's suggestions in the app for one round."""
    from curate.rounds.assignment import set_hide_suggestions

    number = set_hide_suggestions(Workspace.open(workspace, db).store, hide, round_number=round_number,
                                  actor=actor())
    console.print(f"round {number}: suggestions {'hidden' if hide else 'shown'}")


def agreement_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON instead of tables.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the figures to this JSON file.")] = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
) -> None:
    """Cohen's kappa per annotator pair and Krippendorff's alpha per task type, with progress and throughput."""
    from curate.annotate.agreement import agreement_report

    report = agreement_report(Workspace.open(workspace, db, must_exist=True).store)
    if as_json:
        write_json(Path("-"), report)
    else:
        table = Table("task type", "pair", "shared items", "Cohen's kappa")
        for task_type, figures in report["agreement"].items():
            for p in figures["pairs"]:
                kappa = "n/a" if p["kappa"] is None else f"{p['kappa']:.3f}"
                table.add_row(task_type, f"{p['a']} / {p['b']}", str(p["items"]), kappa)
            alpha = figures["alpha"]
            table.add_row(task_type, "all (Krippendorff's alpha)", str(figures["items"]),
                          "n/a" if alpha is None else f"{alpha:.3f}")
        console.print(table)
        rewrites = report["rewrite_agreement"]
        if rewrites["items"]:
            console.print(f"rewrites: {rewrites['identical']} of {rewrites['items']} task(s) rewritten by several "
                          f"people were rewritten alike ({rewrites['share']:.0%}; the others go to review)")
        console.print("tasks by status: " + ", ".join(f"{k} {v}" for k, v in report["tasks_by_status"].items()))
    write_json(out, report)


def register(app: typer.Typer) -> None:
    """Add ``users``, ``schema``, ``round``, ``assign`` and ``agreement`` to ``app``."""
    app.add_typer(users_app, name="users")
    app.add_typer(schema_app, name="schema")
    app.add_typer(round_app, name="round")
    app.command("assign")(assign_cmd)
    app.command("agreement")(agreement_cmd)
