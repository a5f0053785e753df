"""Every command, option and default of the CLI stays as users know it (a snapshot taken before the re-layout).

The snapshot (``cli_surface.json``) lists each command's parameters: flags, kind, type, default, required,
multiple, flag or not. Python parameter names and help texts are not part of it (they are not what a user types).
A deliberate change to the CLI updates the snapshot in the same commit: ``python -m tests.unit.test_cli_surface``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

SNAPSHOT = Path(__file__).with_name("cli_surface.json")


def _default(value: Any) -> Any:
    if callable(value):
        return "<callable>"
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_default(v) for v in value]
    return repr(value)


def _params(command: Any) -> list[dict[str, Any]]:
    rows = []
    for p in command.params:
        rows.append({
            "kind": p.param_type_name, "opts": list(p.opts), "secondary": list(p.secondary_opts),
            "name": p.name if p.param_type_name == "argument" else None,
            "type": repr(p.type_descriptor.annotation), "required": bool(p.required), "default": _default(p.default),
            "multiple": bool(p.multiple), "nargs": p.nargs, "is_flag": bool(getattr(p, "is_flag", False)),
            "hidden": bool(getattr(p, "hidden", False)),
        })
    return sorted(rows, key=lambda r: (r["kind"], r["opts"]))


def _walk(command: Any, path: list[str], out: dict[str, Any]) -> None:
    out[" ".join(path) or "(root)"] = _params(command)
    for name in getattr(command, "commands", {}) and command.list_commands(None):
        _walk(command.get_command(None, name), [*path, name], out)


def cli_surface() -> dict[str, Any]:
    """``{"command path": [parameter, ...]}`` for every command and every shipped recipe (``run NAME``)."""
    from curate.cli.main import app
    from curate.runtime.recipes import discover, typer_command

    out: dict[str, Any] = {}
    _walk(typer.main.get_command(app), [], out)
    for name, info in sorted(discover().items()):
        sub = typer.Typer()
        sub.command(name=info.name)(typer_command(info.func))
        out[f"run {name}"] = _params(typer.main.get_command(sub))
    return out


def test_every_command_option_and_default_is_unchanged():
    expected = json.loads(SNAPSHOT.read_text())
    actual = cli_surface()
    assert sorted(actual) == sorted(expected), "commands added or removed"
    for command, params in expected.items():
        assert actual[command] == params, f"the options of `curate {command}` changed"


if __name__ == "__main__":  # rewrite the snapshot after a deliberate change
    SNAPSHOT.write_text(json.dumps(cli_surface(), indent=1, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {SNAPSHOT}\n")
