"""What every command prints to: the consoles, JSON reports, progress bars and the acting user's name."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
err_console = Console(stderr=True)


def write_json(path: Path | None, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically; ``-`` prints it to stdout; None does nothing."""
    if path is None:
        return
    if str(path) == "-":
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str).decode()
                         + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str))
    os.replace(tmp, path)


def bar_progress() -> Progress:
    """A transient progress bar on stderr: description, bar, done/total, elapsed time."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=True)


def actor() -> str:
    """Who runs the command, for the audit log: ``$CURATE_ACTOR``, else ``$USER``, else ``cli``."""
    return os.environ.get("CURATE_ACTOR") or os.environ.get("USER") or "cli"
