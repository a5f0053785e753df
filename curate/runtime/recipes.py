"""Recipes: the jobs users run, one typed function per file (prodigy's recipes, as plain functions).

A recipe is a function decorated with :func:`recipe`, whose arguments are declared once, in its signature, as
``Annotated[type, "help text"]``; it returns a :class:`RecipeResult` with one :class:`Step` per stage. The
recipes shipped with curate live in the ``recipes`` folder (package) next to ``curate``; ``curate run NAME`` runs
one by name and ``curate run path/to/file.py`` runs your own. curate finds recipes by path, so its library never
depends on them.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from curate.errors import InputError

_MARK = "__curate_recipe__"


@dataclass
class Step:
    """One stage of a recipe: its name, what it did (JSON-ready figures) and how long it took."""

    name: str
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class RecipeResult:
    """What a recipe did: its steps in order, the workspace it worked in, and anything a user should know next."""

    recipe: str
    workspace: str
    steps: list[Step] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a stage; the yielded dict becomes its summary."""
        summary: dict[str, Any] = {}
        started = time.perf_counter()
        yield summary
        self.steps.append(Step(name, summary, round(time.perf_counter() - started, 2)))

    def summary_lines(self) -> list[str]:
        """One line per step: name, seconds and its scalar figures."""
        return [f"{s.name} ({s.seconds:.1f} s): " + ", ".join(f"{k} {v}" for k, v in s.summary.items()
                                                              if not isinstance(v, dict | list))
                for s in self.steps]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"recipe": self.recipe, "workspace": self.workspace, "next_steps": self.next_steps,
                "steps": [vars(s) for s in self.steps]}


@dataclass(frozen=True)
class RecipeInfo:
    """A discovered recipe: its name, function, one-line help and file."""

    name: str
    func: Callable[..., RecipeResult]
    help: str
    path: Path


def recipe(name: str) -> Callable[[Callable[..., RecipeResult]], Callable[..., RecipeResult]]:
    """Mark a function as the recipe ``name`` (what ``curate run NAME`` calls)."""
    def mark(func: Callable[..., RecipeResult]) -> Callable[..., RecipeResult]:
        setattr(func, _MARK, name)
        return func
    return mark


def recipes_dir() -> Path:
    """The folder of the recipes shipped with curate (the ``recipes`` package beside ``curate``)."""
    spec = importlib.util.find_spec("recipes")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "recipes"


def load_file(path: Path) -> list[RecipeInfo]:
    """The recipes defined in one Python file."""
    if not path.is_file() or path.suffix != ".py":
        raise InputError(f"recipe file {path} not found (expected a .py file with a function marked @recipe)")
    module_name = f"curate_recipe_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot import the recipe file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    found = []
    for value in vars(module).values():
        name = getattr(value, _MARK, None)
        if callable(value) and isinstance(name, str):
            doc = inspect.getdoc(value) or ""
            found.append(RecipeInfo(name, value, doc.split("\n")[0], path))
    return found


def discover(folder: Path | None = None) -> dict[str, RecipeInfo]:
    """``{name: recipe}`` for every recipe file in ``folder`` (default: the shipped recipes)."""
    out: dict[str, RecipeInfo] = {}
    for path in sorted((folder or recipes_dir()).glob("*.py")):
        if not path.name.startswith("_"):
            for info in load_file(path):
                out[info.name] = info
    return out


def find(name_or_path: str) -> RecipeInfo:
    """A recipe by name, or the single recipe in a ``.py`` file."""
    if name_or_path.endswith(".py"):
        found = load_file(Path(name_or_path))
        if len(found) != 1:
            raise InputError(f"{name_or_path} defines {len(found)} recipes; expected exactly one marked @recipe")
        return found[0]
    known = discover()
    if name_or_path not in known:
        raise InputError(f"no recipe called {name_or_path!r}; known: {', '.join(sorted(known)) or 'none'} "
                         "(curate recipes lists them), or give a path to a .py file")
    return known[name_or_path]


def typer_command(func: Callable[..., RecipeResult]) -> Callable[..., RecipeResult]:
    """``func`` with its ``Annotated[type, "help"]`` parameters turned into typer options (for ``curate run``)."""
    import typer

    hints = typing.get_type_hints(func, include_extras=True)
    params = []
    annotations: dict[str, Any] = {}
    for p in inspect.signature(func).parameters.values():
        hint = hints.get(p.name, p.annotation)
        help_text = None
        if get_origin(hint) is Annotated:
            base, *extras = get_args(hint)
            help_text = next((e for e in extras if isinstance(e, str)), None)
            hint = base
        flag = "--" + p.name.rstrip("_").replace("_", "-")
        if p.default is inspect.Parameter.empty or p.name == "files":  # FILES... are positional
            info: Any = typer.Argument(help=help_text, show_default=False)
        else:
            info = typer.Option(flag, help=help_text)
        annotated = Annotated[hint, info]  # type: ignore[valid-type]
        annotations[p.name] = annotated
        params.append(p.replace(annotation=annotated))

    def command(**kwargs: Any) -> RecipeResult:
        return func(**kwargs)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {**annotations, "return": RecipeResult}
    command.__doc__ = func.__doc__
    command.__name__ = func.__name__
    return command
