"""Typer options generated from a configuration dataclass: one declaration gives the field, its help and its flag."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import typer
from typer.testing import CliRunner

from curate.cli.options import config_parameters, with_config_options
from curate.loop.state import LoopConfig
from curate.runtime.config import comma_tuple, config_key, field_help, opt
from curate.train.options import TrainOptions


@dataclasses.dataclass(frozen=True)
class Settings:
    name: str = opt(help="The run's name.", cli_default="run")
    size: int = opt(3, "How many.")
    tags: tuple[str, ...] = opt((), "Comma-separated tags.", cli_type=str | None, cli_default=None, parse=comma_tuple)
    rate: float | None = opt(None, "Learning rate.", flag="--lr")
    cutoff: float | None = opt(0.9, "Off at 1.", cli_type=float, parse=lambda v: None if v >= 1 else v)
    hidden: int = opt(7, "Not on the command line.", cli=False)


def _run(*args: str) -> tuple[int, Any, str]:
    seen: list[Settings] = []

    @with_config_options(Settings)
    def command(verbose: bool = False, **settings: Any) -> None:
        seen.append(Settings(**settings))
        if verbose:
            typer.echo("verbose")

    app = typer.Typer()
    app.command()(command)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["command", *args])
    return result.exit_code, seen[0] if seen else None, result.output


def test_options_come_from_the_fields_with_their_flags_types_and_defaults():
    code, settings, _ = _run()
    assert code == 0
    assert settings == Settings(name="run", size=3, tags=(), rate=None, cutoff=0.9, hidden=7)
    code, settings, out = _run("--name", "a", "--size", "5", "--tags", "x, y,,z", "--lr", "0.01", "--cutoff", "1",
                               "--verbose")
    assert code == 0 and "verbose" in out
    assert (settings.name, settings.size, settings.tags, settings.rate, settings.cutoff) == ("a", 5, ("x", "y", "z"),
                                                                                             0.01, None)


def test_a_field_without_a_cli_form_is_not_an_option_and_help_is_the_fields():
    code, _, out = _run("--hidden", "3")
    assert code != 0 and "No such option" in out
    _, _, help_text = _run("--help")
    assert "How many." in help_text and "--lr" in help_text and "--rate" not in help_text
    assert [p.name for p in config_parameters(Settings)] == ["name", "size", "tags", "rate", "cutoff"]


def test_train_and_loop_options_are_their_config_fields():
    train = {p.name for p in config_parameters(TrainOptions)}
    assert train == {f.name for f in dataclasses.fields(TrainOptions)} - {"logging_steps"}
    loop = {p.name for p in config_parameters(LoopConfig)}
    assert loop == {f.name for f in dataclasses.fields(LoopConfig)} - {"feedback_k"}
    assert field_help(TrainOptions, "rank") == "LoRA rank r."


@dataclasses.dataclass(frozen=True)
class Inner:
    name: ClassVar[str] = "inner"
    k: int = 2

    def key(self) -> str:
        return config_key(self)


@dataclasses.dataclass(frozen=True)
class Outer:
    name: ClassVar[str] = "outer"
    required: str
    size: int = 3
    rate: float = 0.5
    inner: Inner = dataclasses.field(default_factory=Inner)
    model: Any = dataclasses.field(default=None, compare=False)
    cache: str = "x"


def test_config_key_writes_only_what_differs_from_the_defaults():
    assert config_key(Outer("r")) == "outer(required=r)"
    key = config_key(Outer("r", size=4, rate=0.25, inner=Inner(k=5), model=object(), cache="y"), exclude={"cache"},
                     version="v1")
    assert key == "outer(required=r,size=4,rate=0.25,inner=inner(k=5))@v1"
