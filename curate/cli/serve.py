"""``curate app``: serve the annotation app, found through the ``curate.apps`` entry point (the library never
imports ``apps``)."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer

from curate.cli.options import DbOpt, WorkspaceOpt
from curate.cli.output import console, err_console
from curate.errors import InputError, MissingDependencyError
from curate.store.workspace import Workspace

APP_GROUP = "curate.apps"


def find_app(name: str = "annotate") -> Callable[..., Any]:
    """The launcher registered as entry point ``name`` in the group ``curate.apps`` (``launch_app(ws, ...)``)."""
    found = [ep for ep in entry_points(group=APP_GROUP) if ep.name == name]
    if not found:
        raise InputError(f"no annotation app is installed (no {name!r} entry point in {APP_GROUP}): install curate "
                         "with its app, e.g. `pip install -e '.[app]'` in the curate folder, or `make install`.")
    launch: Callable[..., Any] = found[0].load()
    return launch


def app_cmd(
    host: Annotated[str, typer.Option(help="Interface to bind; anything but loopback needs accounts.")]
    = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: the first free one from 7860).")] = None,
    session_ttl: Annotated[float, typer.Option("--session-ttl", help="Seconds a login lasts before the person "
                                                                     "must log in again (default: 12 hours).")]
    = 12 * 3600.0,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
) -> None:
    """Start the annotation app (log in with an account from curate users add)."""
    if importlib.util.find_spec("gradio") is None:
        raise MissingDependencyError("gradio", "app", "the annotation app")
    if not session_ttl > 0:
        raise InputError(f"--session-ttl must be a positive number of seconds; got {session_ttl}")
    launch_app = find_app("annotate")
    ws = Workspace.open(workspace, db)
    _, url = launch_app(ws, host=host, port=port, prevent_thread_lock=True, session_ttl=session_ttl)
    console.print(f"annotation app on {url} (Ctrl+C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        err_console.print("stopped; every submitted annotation is stored.")


def register(app: typer.Typer) -> None:
    """Add ``curate app`` to ``app``."""
    app.command("app")(app_cmd)
