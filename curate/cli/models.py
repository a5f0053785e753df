"""``curate models``: the default models, where they load from, and a check that they load offline.

The models are per user, not per workspace: the packaged SmolLM2 is converted once into the model cache
(``$CURATE_CACHE``, else the platform's user cache folder) and every workspace loads it from there.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from curate.cli.options import JsonOpt
from curate.cli.output import console, write_json


def models(
    load: Annotated[bool, typer.Option(help="Load each model and run it once (use --no-load to only list).")] = True,
    json_out: JsonOpt = None,
) -> None:
    """Show the default models, where they load from (the per-user model cache: $CURATE_CACHE, else the platform's
    user cache folder), and (by default) check that they load offline."""
    from curate.runtime import models as m

    checks: dict[str, Any] = {}
    if load:
        checks = m.self_check()
    infos = m.describe()
    table = Table("role", "name", "from", "loads from", "status")
    for info in infos:
        table.add_row(info.role, info.name, info.origin, info.load_path,
                      ("[green]ok[/] " if info.ready else "[red]missing[/] ") + info.note)
    console.print(table)
    console.print(f"model cache: {m.model_cache()} (set $CURATE_CACHE to move it)", highlight=False)
    if checks:
        console.print(f"causal LM: {checks['lm']['parameters']:,} parameters, perplexity of ' Paris.' after "
                      f"'The capital of France is' = {checks['lm']['perplexity_check']}, loaded in "
                      f"{checks['lm']['seconds']} s")
        console.print(f"embedder: {checks['embedder']['dimensions']} dimensions, loaded in "
                      f"{checks['embedder']['seconds']} s")
    write_json(json_out, {"models": [vars(i) for i in infos], "checks": checks, "model_cache": str(m.model_cache())})


def register(app: typer.Typer) -> None:
    """Add ``curate models`` to ``app``."""
    app.command()(models)
