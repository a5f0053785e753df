"""``curate app``: serve the annotation app, found through the ``curate.apps`` entry point (the library never
imports ``apps``)."""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
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


def _bind(host: str, port: int) -> None:
    """Bind a socket to ``(host, port)`` and let it go again, as the server will; raises the :class:`OSError`."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name != "nt":  # as uvicorn does: a port left in TIME_WAIT by a stopped app is free
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)


def free_port(host: str, after: int) -> int | None:
    """The first port above ``after`` (up to 100 further) that ``host`` can listen on, or ``None``."""
    for port in range(after + 1, min(after + 101, 65536)):
        try:
            _bind(host, port)
        except OSError:
            continue
        return port
    return None


def check_port(host: str, port: int | None) -> None:
    """Raise :class:`InputError` saying what to do when the app could not listen on ``host``:``port``.

    ``port=None`` (the first free one from 7860) only checks the host.
    """
    if port is not None and not 1 <= port <= 65535:
        raise InputError(f"--port must be a port number from 1 to 65535; got {port}.")
    try:
        _bind(host, port or 0)
    except socket.gaierror as exc:
        raise InputError(f"--host {host!r} is not a name or address this machine knows ({exc.strerror}). Use "
                         "127.0.0.1 (this machine only) or 0.0.0.0 (every network interface).") from None
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            raise InputError(f"--host {host} is not an address of this machine, so the app cannot listen on it. "
                             "Use 127.0.0.1 (this machine only) or 0.0.0.0 (every network interface).") from None
        other = free_port(host, max(port or 0, 1023))
        instead = f", e.g. --port {other}" if other else ""
        if isinstance(exc, PermissionError):
            raise InputError(f"port {port} needs administrator rights on this machine. Pass --port N with a port "
                             f"above 1023{instead}.") from None
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} on {host} is already in use (another curate app, or another "
                             "program, listens there). Stop that program, or pass --port N with a free port"
                             f"{instead}.") from None
        raise


def app_cmd(
    host: Annotated[str, typer.Option(help="Interface to bind; anything but loopback needs accounts.")]
    = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: the first free one from 7860).")] = None,
    session_ttl: Annotated[float, typer.Option("--session-ttl", help="Seconds a login lasts before the person "
                                                                     "must log in again (default: 12 hours).")]
    = 12 * 3600.0,
    min_read_seconds: Annotated[float, typer.Option(
        "--min-read-seconds", help="Seconds per 1,000 characters a rewrite must be on screen before 'accept as is' "
                                   "is taken (0: no guard).")] = 6.0,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
) -> None:
    """Start the annotation app (log in with an account from curate users add)."""
    if importlib.util.find_spec("gradio") is None:
        raise MissingDependencyError("gradio", "app", "the annotation app")
    if not session_ttl > 0:
        raise InputError(f"--session-ttl must be a positive number of seconds; got {session_ttl}")
    if not 0 <= min_read_seconds <= 600:
        raise InputError(f"--min-read-seconds must be between 0 and 600 seconds per 1,000 characters; "
                         f"got {min_read_seconds}")
    check_port(host, port)  # before anything loads: a taken port is the commonest reason an app does not start
    launch_app = find_app("annotate")
    ws = Workspace.open(workspace, db)
    _, url = launch_app(ws, host=host, port=port, prevent_thread_lock=True, session_ttl=session_ttl,
                        min_read_seconds=min_read_seconds)
    console.print(f"annotation app on {url} (Ctrl+C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        err_console.print("stopped; every submitted annotation is stored.")


def register(app: typer.Typer) -> None:
    """Add ``curate app`` to ``app``."""
    app.command("app")(app_cmd)
