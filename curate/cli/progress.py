"""Progress of long work: a bar on a terminal, plain lines when output is piped, nothing with ``--quiet``.

Every command that can take more than a couple of seconds reports counted work through :func:`bar_progress`
(single long steps, such as loading a model, are announced by :mod:`curate.runtime.notices`). On a terminal the bar
shows done/total, the rate, the elapsed time and an ETA; piped (CI logs, ``| tee``), a line such as
``score ifd: 48/200 (24%) 3.1 records/s, ETA 49 s`` is printed at least every :data:`PLAIN_EVERY` seconds, also
while one slow batch is running, so a log shows the run is alive. ``curate --quiet`` (``$CURATE_QUIET=1``) prints
neither.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from curate.cli.output import err_console
from curate.runtime.notices import duration

QUIET_ENV = "CURATE_QUIET"
#: Seconds between two plain progress lines of one task (``$CURATE_PROGRESS_SECONDS`` overrides it).
PLAIN_EVERY = 3.0
PLAIN_EVERY_ENV = "CURATE_PROGRESS_SECONDS"


def plain_every() -> float:
    """Seconds between two plain progress lines: ``$CURATE_PROGRESS_SECONDS``, else :data:`PLAIN_EVERY`."""
    try:
        return max(float(os.environ.get(PLAIN_EVERY_ENV) or PLAIN_EVERY), 0.05)
    except ValueError:
        return PLAIN_EVERY


def quiet() -> bool:
    """True when progress is silenced (``curate --quiet`` or ``$CURATE_QUIET``)."""
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


class RateColumn(ProgressColumn):
    """Items per second (the task's ``unit`` field, default ``records``)."""

    def render(self, task: Task) -> Text:
        """``12.3 records/s``, or nothing before the first update."""
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "records")
        return Text("" if not speed else f"{speed:,.1f} {unit}/s", style="progress.data.speed")


@dataclass
class _Line:
    description: str
    total: float | None
    unit: str
    completed: float = 0.0
    started: float = field(default_factory=time.monotonic)
    printed: float = 0.0
    printed_completed: float = -1.0
    first: tuple[float, float] | None = None  # (time, count) of the first progress: the rate excludes set-up time

    def rate(self, now: float) -> float | None:
        """Items per second since the first progress (loading a model is not work done slowly)."""
        if self.first is None or now <= self.first[0] or self.completed <= self.first[1]:
            return None
        return (self.completed - self.first[1]) / (now - self.first[0])


class LineProgress:
    """The plain-line stand-in for :class:`rich.progress.Progress` (``add_task``, ``update``, ``advance``).

    A task prints its first line once it has run :attr:`every` seconds (work that ends sooner prints nothing), then
    at least every :attr:`every` seconds, and a last line when it ends.
    """

    def __init__(self, *, every: float | None = None, silent: bool = False) -> None:
        self.every = plain_every() if every is None else every
        self.silent = silent
        self._tasks: dict[TaskID, _Line] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> LineProgress:
        if not self.silent:
            self._ticker = threading.Thread(target=self._tick, name="curate-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1)
        with self._lock:
            for line in self._tasks.values():
                if line.printed and line.completed != line.printed_completed:
                    self._print(line)

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> TaskID:
        """Start a task; returns its id."""
        with self._lock:
            task_id = TaskID(len(self._tasks))
            self._tasks[task_id] = _Line(description, total, str(fields.get("unit", "records")))
            return task_id

    def update(self, task_id: TaskID, *, completed: float | None = None, total: float | None = None,
               advance: float | None = None, description: str | None = None, **_: Any) -> None:
        """Change a task's counts; prints a line when :attr:`every` seconds have passed since its last one."""
        with self._lock:
            line = self._tasks[task_id]
            if total is not None:
                line.total = total
            if description is not None:
                line.description = description
            if completed is not None:
                line.completed = completed
            if advance is not None:
                line.completed += advance
            if line.first is None and line.completed > 0:
                line.first = (time.monotonic(), line.completed)
            if self._due(line):
                self._print(line)

    def _due(self, line: _Line) -> bool:
        """A line is due ``every`` seconds after the task started, then ``every`` seconds after the last one."""
        now = time.monotonic()
        return now - (line.printed or line.started) >= self.every

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        """Add ``advance`` to a task's count."""
        self.update(task_id, advance=advance)

    def _tick(self) -> None:
        while not self._stop.wait(self.every / 2):
            with self._lock:
                for line in self._tasks.values():
                    finished = bool(line.total) and line.completed >= (line.total or 0)
                    if self._due(line) and not (finished and line.printed and line.printed_completed == line.completed):
                        self._print(line)  # a heartbeat while work goes on; a finished task is printed once

    def _print(self, line: _Line) -> None:
        now = time.monotonic()
        line.printed, line.printed_completed = now, line.completed
        if self.silent:
            return
        elapsed = now - line.started
        done = f"{line.completed:,.0f}"
        if line.total:
            done += f"/{line.total:,.0f} ({line.completed / line.total:.0%})"
        else:
            done += f" {line.unit}"
        parts = [f"{escape(line.description)}: {done}"]
        rate = line.rate(now)
        if rate:
            parts.append(f"{rate:,.1f} {line.unit}/s")
            if line.total and line.completed < line.total:
                parts.append(f"ETA {duration((line.total - line.completed) / rate)}")
        parts.append(f"elapsed {duration(elapsed)}")
        err_console.print(", ".join(parts), highlight=False, soft_wrap=True)


def bar_progress(*, unit: str = "records") -> Progress | LineProgress:
    """A progress display for counted work on stderr: a transient bar with rate and ETA on a terminal, plain
    lines when piped, silent with ``--quiet``. Pass ``unit=`` to ``add_task`` to name what is counted."""
    if quiet():
        return LineProgress(silent=True)
    if not err_console.is_terminal:
        return LineProgress()
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err_console,
                    transient=True)


class _NoticeHandler(logging.Handler):
    """Prints the ``curate`` logger's messages on stderr, dimmed, unless progress is silenced."""

    def emit(self, record: logging.LogRecord) -> None:
        if not quiet():
            err_console.print(f"[dim]{escape(record.getMessage())}[/]", highlight=False, soft_wrap=True)


def show_notices() -> None:
    """Show the library's step notices (:mod:`curate.runtime.notices`) on stderr; idempotent."""
    logger = logging.getLogger("curate")
    if not any(isinstance(h, _NoticeHandler) for h in logger.handlers):
        logger.addHandler(_NoticeHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


#: Warnings of libraries curate calls that say nothing a curate user can act on (deprecations inside the library).
KNOWN_WARNINGS = (
    (FutureWarning, r"(transformers|torch|trl|peft|accelerate|sentence_transformers|datasets)(\.|$)"),
    (DeprecationWarning, r"(transformers|torch|trl|peft|accelerate|sentence_transformers|datasets|spacy|"
                         r"presidio_analyzer|gradio)(\.|$)"),
    (UserWarning, r"torch\.nn\.modules|transformers\.generation|trl\."),
)


def quiet_third_party() -> None:
    """Filter the known third-party deprecation warnings (by category and emitting module; errors are untouched)
    and the transformers/datasets logging chatter below ERROR."""
    for category, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", category=category, module=module)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")
