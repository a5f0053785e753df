"""Every `curate ...` line in the README's code blocks parses: its command exists, and so do its options and values.

A user copies these lines first; an option renamed or removed in the CLI must not leave them failing.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from curate.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"


def code_block_commands(text: str) -> list[str]:
    """The lines of fenced code blocks that start with ``curate ``."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside and line.strip().startswith("curate "):
            out.append(line.strip())
    return out


def parse_error(command: str) -> str | None:
    """Click's message when ``command`` does not parse (unknown command, option or value), else None."""
    cmd: Any = typer.main.get_command(app)
    args, path = shlex.split(command, comments=True)[1:], ["curate"]
    while hasattr(cmd, "commands") and args and args[0] in cmd.commands:
        path.append(args[0])
        cmd = cmd.commands[args.pop(0)]
    try:
        cmd.make_context(" ".join(path), args)
    except Exception as exc:  # click's (vendored by typer) usage errors; Exit is --help and the like
        if type(exc).__name__ == "Exit":
            return None
        message = getattr(exc, "format_message", None)
        return str(message()) if message else repr(exc)
    return None


COMMANDS = code_block_commands(README.read_text(encoding="utf-8"))


def test_the_readme_shows_commands_and_the_check_catches_a_bad_one():
    assert len(COMMANDS) >= 40
    assert "No such option: --no-such-option" in (parse_error("curate ingest a.jsonl --no-such-option 1") or "")
    assert "Missing option '--scorer'" in (parse_error("curate select -k 5") or "")
    assert parse_error("curate export --format dpo --out exports/prefs") is None


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command):
    assert parse_error(command) is None, f"README: {command!r}: {parse_error(command)}"


def test_readme_selection_table_is_the_one_the_benchmarks_wrote() -> None:
    """The README's selection table is ``benchmarks/results/selection.json``'s markdown, row for row: a rerun of
    ``make bench-selection`` that is not pasted back would leave the README reporting stale figures."""
    table = json.loads((README.parent / "benchmarks" / "results" / "selection.json").read_text())["markdown"]
    readme = README.read_text()
    missing = [row for row in table.splitlines() if row not in readme.splitlines()]
    assert not missing, f"README.md lacks these rows of selection.json's table (paste its 'markdown'): {missing}"


def test_selection_json_is_what_the_result_files_make_now() -> None:
    """``selection.json`` is regenerated from the result files it reads: a result added or rerun (say a new
    ``unseen_classify`` run) without rerunning ``benchmarks/selection_table.py`` would leave its rows stale."""
    import importlib.util

    path = README.parent / "benchmarks" / "selection_table.py"
    spec = importlib.util.spec_from_file_location("selection_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stored = json.loads((README.parent / "benchmarks" / "results" / "selection.json").read_text())
    assert module.markdown(module.rows()) == stored["markdown"], (
        "benchmarks/results/selection.json is stale: run .venv/bin/python benchmarks/selection_table.py and paste its "
        "table into the README")
