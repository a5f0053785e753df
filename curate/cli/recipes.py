"""``curate recipes`` and ``curate run``: list and run the jobs users come for."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from curate.cli.output import console, write_json


def recipes_cmd() -> None:
    """List the recipes shipped with curate (curate run NAME --help shows a recipe's options)."""
    from curate.runtime.recipes import discover

    table = Table("recipe", "what it does")
    for name, info in sorted(discover().items()):
        table.add_row(name, info.help)
    console.print(table)


def run_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Recipe name (see curate recipes) or a path to a .py recipe file.")],
) -> None:
    """Run a recipe; the options after NAME are the recipe's own (curate run NAME --help)."""
    from pathlib import Path

    from curate.runtime.recipes import RecipeResult, find, typer_command

    if name in ("--help", "-h"):  # --help is passed through to the recipe, so `curate run --help` lands here
        console.print(ctx.get_help())
        recipes_cmd()
        return
    info = find(name)
    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    sub.command(name=info.name, help=info.func.__doc__)(typer_command(info.func))
    result: Any = sub(list(ctx.args), standalone_mode=False, prog_name=f"curate run {info.name}")
    if not isinstance(result, RecipeResult):
        return  # --help, or the recipe printed its own output
    table = Table("step", "seconds", "what happened")
    for step in result.steps:
        what = ", ".join(f"{k} {v}" for k, v in step.summary.items() if not isinstance(v, dict | list))
        table.add_row(step.name, f"{step.seconds:.1f}", what)
    console.print(table)
    for line in result.next_steps:
        console.print(f"next: {line}")
    write_json(Path(result.workspace) / "reports" / f"recipe-{info.name}.json", result.as_dict())


def register(app: typer.Typer) -> None:
    """Add ``curate recipes`` and ``curate run`` to ``app``."""
    app.command("recipes")(recipes_cmd)
    app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                      "help_option_names": []})(run_cmd)
