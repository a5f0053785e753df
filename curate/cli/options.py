"""Options shared by many commands, and the typer options generated from a configuration dataclass."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from curate.runtime.config import SAME, CliForm

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (env CURATE_WORKSPACE; default ./curate-workspace)."),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Database URL, e.g. postgresql://user@host/curate (env CURATE_DB; default SQLite "
                              "in the workspace)."),
]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write the figures to this JSON file ('-': "
                                                          "print them to stdout).")]
EngineOpt = Annotated[str, typer.Option(help="Where the heavy pass runs: local (this process) or ray (ray.data "
                                             "actor pools; a local Ray cluster unless --address is given).")]
AddressOpt = Annotated[str | None, typer.Option(help="With --engine ray: an existing Ray cluster (auto on its head "
                                                     "node, HOST:6379, or ray://HOST:10001).")]


def config_parameters(cls: type) -> list[inspect.Parameter]:
    """One keyword parameter with a typer option per field of the dataclass ``cls`` that has a command-line form.

    The option's help is the field's ``help`` metadata; its flag, type and default are the field's unless its
    :class:`~curate.runtime.config.CliForm` says otherwise.
    """
    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        form: CliForm | None = f.metadata.get("cli")
        if form is None:
            continue
        annotation = form.type if form.type is not None else hints[f.name]
        default = form.default if form.default is not SAME else f.default
        option = typer.Option(*([form.flag] if form.flag else []), help=f.metadata["help"] + form.help_suffix)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[annotation, option]))
    return params


def config_values(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The generated options' ``values`` as keyword arguments of ``cls`` (each parsed by its ``CliForm.parse``)."""
    out = {}
    for f in dataclasses.fields(cls):
        form: CliForm | None = f.metadata.get("cli")
        if form is not None and f.name in values:
            out[f.name] = form.parse(values[f.name]) if form.parse else values[f.name]
    return out


def with_config_options(cls: type, *, before: str = "workspace") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command that takes ``**options``: typer sees the command's own parameters plus one option per
    field of ``cls`` (inserted before the parameter ``before``); the command receives the fields' values, parsed,
    in ``options``."""
    generated = config_parameters(cls)
    names = {p.name for p in generated}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]
        at = next((i for i, p in enumerate(own) if p.name == before), len(own))
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params = params[:at] + generated + params[at:]

        @functools.wraps(func)
        def command(**values: Any) -> Any:
            config = config_values(cls, {k: v for k, v in values.items() if k in names})
            return func(**{k: v for k, v in values.items() if k not in names}, **config)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer must read the generated signature, not the wrapped one
        return command

    return decorate
