"""Configuration declared once: dataclass fields with their help and CLI form, and the key that names a config.

A configuration class (``TrainOptions``, ``LoopConfig``) declares each field with :func:`opt`: its default and its
help text, and how it looks on the command line when that differs from the field (another flag, type or default,
and the function that turns the typed value into the field's). :mod:`curate.cli.options` generates the typer
options from these fields, so nothing is declared twice. Scorers and selectors are named by :func:`config_key`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import Any

MISSING: Any = dataclasses.MISSING
#: ``CliForm.default`` when the option's default is the field's.
SAME: Any = type("Same", (), {"__repr__": lambda self: "SAME"})()


@dataclasses.dataclass(frozen=True)
class CliForm:
    """How a configuration field appears on the command line.

    Attributes:
        flag: the option's flag (default ``--field-name``).
        type: the option's type when it differs from the field's (e.g. ``str | None`` for a tuple typed as
            comma-separated names).
        default: the option's default when it differs from the field's.
        parse: turns the option's value into the field's value (default: unchanged).
        help_suffix: text appended to the field's help on the command line only.
    """

    flag: str | None = None
    type: Any = None
    default: Any = SAME
    parse: Callable[[Any], Any] | None = None
    help_suffix: str = ""


def opt(default: Any = MISSING, help: str = "", *, cli: bool = True, flag: str | None = None,  # noqa: A002
        cli_type: Any = None, cli_default: Any = SAME, parse: Callable[[Any], Any] | None = None,
        help_suffix: str = "", default_factory: Any = MISSING) -> Any:
    """A dataclass field with its help text and, unless ``cli=False``, its command-line form (see :class:`CliForm`)."""
    form = CliForm(flag, cli_type, cli_default, parse, help_suffix) if cli else None
    metadata = {"help": help, "cli": form}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_help(cls: type, name: str) -> str:
    """The help text of field ``name`` of the dataclass ``cls``."""
    return str(next(f.metadata["help"] for f in dataclasses.fields(cls) if f.name == name))


def comma_tuple(value: str | None) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``; ``None`` or blank -> ``()``."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _key_value(value: Any) -> str:
    if hasattr(value, "key") and callable(value.key):
        return str(value.key())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    factory: Any = f.default_factory
    return factory() if factory is not MISSING else MISSING


def config_key(obj: Any, *, exclude: Collection[str] = (), version: str | None = None) -> str:
    """``name(param=value,...)@version``: the fields of the dataclass ``obj`` that differ from their defaults.

    Fields in ``exclude`` and fields with ``compare=False`` (models, caches held at run time) are left out; a
    field without a default is always written; a field holding a scorer or selector is written as its own key;
    floats as ``%g``. ``@version`` is added when ``version`` is given (the model behind the scores).
    """
    parts = []
    for f in dataclasses.fields(obj):
        if f.name in exclude or not f.compare:
            continue
        value, default = getattr(obj, f.name), _default(f)
        if default is MISSING or value != default:
            parts.append(f"{f.name}={_key_value(value)}")
    key = f"{obj.name}({','.join(parts)})"
    return f"{key}@{version}" if version else key
