"""Fixtures: a seeded workspace with the annotation app running in-process, and logged-in API clients."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the annotation app needs the [app] extra (gradio)")
pytest.importorskip("gradio_client", reason="the app tests need gradio_client")

from gradio_client import Client  # noqa: E402

from curate.store.workspace import Workspace  # noqa: E402
from tests.annotation_setup import PASSWORD, Seeded, seed  # noqa: E402


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningApp:
    """The app under test: its workspace, seeded task ids, URL, and a client factory."""

    ws: Workspace
    seeded: Seeded
    url: str
    login: Callable[[str], Client]


@pytest.fixture
def running_app(workspace: Workspace, tmp_path: Path) -> Iterator[RunningApp]:
    """The seeded workspace served by the app on a free loopback port (closed afterwards)."""
    from apps.annotate import launch_app

    seeded = seed(workspace, tmp_path)
    demo, url = launch_app(workspace, port=free_port(), prevent_thread_lock=True, quiet=True)
    clients: dict[str, Client] = {}

    def login(name: str) -> Client:
        if name not in clients:
            clients[name] = Client(url, auth=(name, PASSWORD), verbose=False, download_files=False,
                                   analytics_enabled=False)
        return clients[name]

    try:
        yield RunningApp(workspace, seeded, url, login)
    finally:
        demo.close()  # first: a client closed while the server runs waits a second for its heartbeat
        for client in clients.values():
            client.close()
