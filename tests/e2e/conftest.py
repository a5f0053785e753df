"""Fixtures for the browser tests: the app on a seeded SQLite workspace, and headless Chromium.

Skipped with a message when Debian's Chromium (/usr/bin/chromium) or the playwright package is missing; never
downloads a browser (no ``playwright install``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from curate.store.workspace import Workspace
from tests.annotation_setup import PASSWORD, Seeded, seed

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}
TIMEOUT_MS = 15_000


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_browser() -> None:
    """Skip (with the reason) when Debian's Chromium, playwright or gradio is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium); "
                    "they never download one")
    pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package (the [dev] extra)")
    pytest.importorskip("gradio", reason="the annotation app needs the [app] extra (gradio)")


@dataclass
class Served:
    """The app under test: its workspace, the seeded task ids and its URL."""

    ws: Workspace
    seeded: Seeded
    url: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A fresh seeded SQLite workspace served by the app for this module."""
    require_browser()
    from apps.annotate import launch_app

    tmp = tmp_path_factory.mktemp("e2e")
    ws = Workspace.open(tmp / "ws", f"sqlite:///{tmp / 'curate.db'}")
    seeded = seed(ws, tmp)
    demo, url = launch_app(ws, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield Served(ws, seeded, url)
    finally:
        demo.close()
        ws.store.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's build)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """``open_page()``: a new 1366x768 page in a fresh context; the last page opened is saved as
    ``tests/e2e/artifacts/<test name>.png`` when the test ends (passed or failed)."""
    contexts: list[Any] = []
    pages: list[Page] = []

    def new_page() -> Page:
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        pages.append(context.new_page())
        return pages[-1]

    yield new_page
    if pages:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            pages[-1].screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        except Exception as exc:  # noqa: BLE001  (a failed screenshot must not hide the test's own failure)
            print(f"could not save the screenshot: {exc}")
    for context in contexts:
        context.close()


def login(page: Page, url: str, name: str, password: str = PASSWORD) -> Page:
    """Log ``name`` in through the app's login form and wait for the app to greet them."""
    page.goto(url)
    page.fill("input[type=text]", name)
    page.fill("input[type=password]", password)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#whoami:has-text('signed in as {name}')")
    return page


def save_screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    """A README screenshot ``<name>.png`` (``full_page=False``: the viewport, as a person sees it): written to
    docs/screenshots when ``CURATE_SAVE_SCREENSHOTS=1`` (to refresh the README's), else to tests/e2e/artifacts."""
    folder = SCREENSHOTS if os.environ.get("CURATE_SAVE_SCREENSHOTS") == "1" else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page, animations="disabled")


__all__ = ["login", "save_screenshot"]
