"""Fixtures for the reliability and security tests: the app served in-process, logged-in clients, raw calls."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from curate.store.workspace import Workspace
from tests.annotation_setup import PASSWORD

APP_EXTRA = "the annotation app needs the [app] extra (gradio, gradio_client)"


@dataclass
class Served:
    """One running app: its workspace, Blocks, URL, and the clients logged in to it (closed afterwards)."""

    ws: Workspace
    demo: Any
    url: str
    clients: list[Any] = field(default_factory=list)

    def login(self, name: str, password: str = PASSWORD) -> Any:
        """A new ``gradio_client`` session logged in as ``name`` (a new login token each time)."""
        from gradio_client import Client

        client = Client(self.url, auth=(name, password), verbose=False, download_files=False,
                        analytics_enabled=False, httpx_kwargs={"timeout": 120})  # a busy machine is slow
        self.clients.append(client)
        return client

    def fn_index(self, name: str) -> int:
        """The event index of the first UI handler called ``name`` (the browser calls these by index)."""
        return next(i for i, f in self.demo.fns.items() if f.fn is not None and f.fn.__name__ == name)


@pytest.fixture
def serve(workspace: Workspace) -> Iterator[Callable[..., Served]]:
    """``serve(**launch_app_kwargs)``: launch the app on the workspace (seed it first); closed afterwards."""
    pytest.importorskip("gradio", reason=APP_EXTRA)
    pytest.importorskip("gradio_client", reason=APP_EXTRA)
    from apps.annotate import launch_app
    from tests.app.conftest import free_port

    running: list[Served] = []

    def start(**kwargs: Any) -> Served:
        demo, url = launch_app(workspace, port=free_port(), prevent_thread_lock=True, quiet=True, **kwargs)
        running.append(Served(workspace, demo, url))
        return running[-1]

    try:
        yield start
    finally:
        for served in running:
            served.demo.close()  # first: a client closed while the server runs waits a second for its heartbeat
            for client in served.clients:
                client.close()


def ui_call(url: str, cookies: dict[str, str], fn_index: int, data: list[Any]) -> httpx.Response | dict[str, Any]:
    """Call a UI event handler the way the browser does (queue join + event stream).

    Returns the HTTP response when the join is refused, else the ``process_completed`` message.
    """
    session = uuid.uuid4().hex[:12]
    joined = httpx.post(f"{url}gradio_api/queue/join", cookies=cookies, timeout=20,
                        json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                              "trigger_id": None})
    if joined.status_code != 200:
        return joined
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}, cookies=cookies,
                      timeout=30) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return dict(message)
    raise AssertionError(f"no result for event {fn_index}")
