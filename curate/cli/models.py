"""``curate models``: the default models, where they load from, and a check that they load offline."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from curate.cli.options import DbOpt, JsonOpt, WorkspaceOpt
from curate.cli.output import console, write_json
from curate.store.workspace import Workspace


def models(
    load: Annotated[bool, typer.Option(help="Load each model and run it once (use --no-load to only list).")] = True,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Show the default models, where they load from, and (by default) check that they load offline."""
    from curate.runtime import models as m

    ws = Workspace.open(workspace, db)
    checks: dict[str, Any] = {}
    if load:
        with console.status("loading the causal LM (first time: converting the GGUF, ~30 s) and the embedder"):
            checks = m.self_check(ws.cache_dir)
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


def register(app: typer.Typer) -> None:
    """Add ``curate models`` to ``app``."""
    app.command()(models)
