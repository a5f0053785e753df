"""The ``curate`` command line: the entry module that assembles the commands of ``curate/cli/*`` and runs them.

Every command that reports figures takes ``--json PATH`` and writes them there as well. A
:class:`~curate.errors.CurateError` is printed as a one-line message (exit code 2); any other error prints a
short notice, with the traceback only when ``CURATE_DEBUG=1``.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from typing import Annotated

import typer
from rich.markup import escape

from curate import __version__
from curate.cli import annotate, audit, bench, export, ingest, loop, models, pii, recipes, select, serve, train
from curate.cli import filter as filters
from curate.cli.output import console, err_console
from curate.cli.progress import QUIET_ENV, quiet_third_party, show_notices
from curate.errors import CurateError

app = typer.Typer(
    name="curate",
    help="Curate LLM fine-tuning and preference data with active learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"curate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, progress lines or step notices "
                                                               "(results and errors are still printed).")] = False,
    actor: Annotated[str | None, typer.Option(
        "--actor", help="Who runs this command, recorded in the audit log (default: $CURATE_ACTOR, else the OS "
                        "user name).")] = None,
) -> None:
    """Curate LLM fine-tuning and preference data with active learning."""
    if actor is not None:
        if not actor.strip():
            raise typer.BadParameter("--actor needs a name.", param_hint="--actor")
        os.environ["CURATE_ACTOR"] = actor.strip()
    if quiet:
        os.environ[QUIET_ENV] = "1"
    show_notices()


# The order of the flow: in, people, filters, selection, export and training, loops, benchmarks, recipes.
for module in (ingest, audit, models, annotate, serve, filters, pii, select, export, train, loop, bench, recipes):
    module.register(app)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run the way Ctrl-C does: finished work is committed first


def _interrupted(exc: BaseException) -> bool:
    """True when a ``KeyboardInterrupt`` is among the causes of ``exc``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _report_interrupt() -> None:
    """Say what an interrupted command kept and how to resume it."""
    from curate.runtime.checkpoint import kept

    done = kept()
    if done:
        saved = ", ".join(f"{n:,} {what}" for what, n in done.items())
        command = shlex.join(["curate", *sys.argv[1:]])
        err_console.print(f"[yellow]interrupted[/]: kept {escape(saved)}. Run the same command again to do only the "
                          f"rest:\n  {escape(command)}", highlight=False, soft_wrap=True)
    else:
        err_console.print("[yellow]interrupted[/]: nothing was finished, and nothing half-written was committed.",
                          highlight=False)


def main() -> None:
    """Console entry point: run the app, turning errors into messages instead of tracebacks."""
    signal.signal(signal.SIGTERM, _terminate)
    quiet_third_party()
    try:
        app()
    except CurateError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _report_interrupt()
        sys.exit(130)
    except SystemExit as exc:  # typer turns Ctrl-C into a silent exit 130
        if exc.code == 130 and _interrupted(exc):
            _report_interrupt()
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback reaches a user
        if os.environ.get("CURATE_DEBUG"):
            raise
        from curate.errors import environment_error, report_place

        known = environment_error(exc)  # a full disk, a forbidden path, ...: the machine's or the user's, not a bug
        if known is not None:
            err_console.print(f"[red]error:[/] {escape(known[0])}", highlight=False)
            sys.exit(known[1])
        err_console.print(f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
                          f"This is a bug in curate. Please report it at {escape(report_place())}, with the command "
                          "you ran and the traceback printed when you run it again with CURATE_DEBUG=1.",
                          highlight=False)
        sys.exit(70)


if __name__ == "__main__":
    main()
